//! `spec.window`: the times a policy's changes may be committed.
//!
//! A window is a list of spans, each `days` (default every day), `from`
//! and `to` (`HH:MM` or `HH:MM:SS`, 24 h) in `timeZone` (an IANA name, default UTC). The
//! window is open when any span is: from `from` (inclusive) to `to`
//! (exclusive) on each of its days. A span whose `to` is earlier than its
//! `from` crosses midnight and belongs to the day it starts on (`Fri
//! 22:00–02:00` is open until Saturday 02:00). Local times come from the
//! tz database bundled into the binary (`jiff`), DST included. The window
//! follows the wall clock: it is open whenever the local time reads inside
//! a span, so a `from` that a spring-forward gap skips opens at the jump
//! (02:30 opens at 03:00 when 02:00 jumps to 03:00), a `from` that an
//! autumn fold repeats opens at its first occurrence, and a fold that turns
//! the clock back into a span opens it again.

use std::fmt;

use jiff::Timestamp;
use jiff::civil::{Date, Time, Weekday};
use jiff::tz::TimeZone;

/// The spans of a policy's window; open when any span is.
#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    pub spans: Vec<Span>,
}

/// One entry of `spec.window`.
#[derive(Debug, Clone, PartialEq)]
pub struct Span {
    /// Monday first.
    pub days: [bool; 7],
    pub from: Time,
    pub to: Time,
    pub zone: TimeZone,
    /// The IANA name as written.
    pub zone_name: String,
}

const DAY_NAMES: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

/// Monday = 0.
fn index(day: Weekday) -> usize {
    usize::try_from(day.to_monday_zero_offset()).unwrap_or(0)
}

/// A day name (`Mon`, `monday`, ...) as Monday = 0.
pub fn parse_day(text: &str) -> Option<usize> {
    let lower = text.trim().to_ascii_lowercase();
    let full = [
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
    ];
    (0..7).find(|&i| lower == DAY_NAMES[i].to_ascii_lowercase() || lower == full[i])
}

/// `HH:MM` (or `HH:MM:SS`) in 24 hours.
pub fn parse_time(text: &str) -> Option<Time> {
    let mut parts = text.trim().split(':');
    let (h, m, sec) = (parts.next()?, parts.next()?, parts.next().unwrap_or("00"));
    if parts.next().is_some()
        || h.is_empty()
        || h.len() > 2
        || m.len() != 2
        || sec.len() != 2
        || !(h.bytes().chain(m.bytes()).chain(sec.bytes())).all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let (h, m, sec): (i8, i8, i8) = (h.parse().ok()?, m.parse().ok()?, sec.parse().ok()?);
    Time::new(h, m, sec, 0).ok()
}

impl Span {
    fn crosses_midnight(&self) -> bool {
        self.to < self.from
    }

    fn open_at(&self, at: Timestamp) -> bool {
        let local = at.to_zoned(self.zone.clone());
        let (day, time) = (index(local.weekday()), local.time());
        if self.crosses_midnight() {
            (self.days[day] && time >= self.from) || (self.days[(day + 6) % 7] && time < self.to)
        } else {
            self.days[day] && time >= self.from && time < self.to
        }
    }

    /// The first opening of this span after `at` (strictly): the first
    /// instant the wall clock reads `from` on one of the days, or a DST
    /// transition that moves the wall clock into the span (a gap skipping
    /// `from` opens at its end; a fold can reopen a span it reaches back
    /// into). Every candidate is checked with [`Span::open_at`], so the
    /// two never disagree.
    fn next_opening(&self, at: Timestamp) -> Option<Timestamp> {
        const HORIZON_DAYS: i64 = 9;
        let start: Date = at.to_zoned(self.zone.clone()).date();
        let readings = (0..HORIZON_DAYS)
            .filter_map(|offset| start.checked_add(jiff::Span::new().days(offset)).ok())
            .filter(|date| self.days[index(date.weekday())])
            .flat_map(|date| {
                let ambiguous = self
                    .zone
                    .to_ambiguous_timestamp(date.to_datetime(self.from));
                [ambiguous.earlier().ok(), ambiguous.later().ok()]
            })
            .flatten();
        let horizon = at
            .checked_add(jiff::SignedDuration::from_hours(24 * HORIZON_DAYS))
            .unwrap_or(Timestamp::MAX);
        let transitions = self
            .zone
            .following(at)
            .map(|transition| transition.timestamp())
            .take_while(|t| *t <= horizon);
        readings
            .chain(transitions)
            .filter(|candidate| *candidate > at && self.open_at(*candidate))
            .min()
    }
}

impl Window {
    /// Whether changes may be committed at `at`.
    pub fn is_open(&self, at: Timestamp) -> bool {
        self.spans.iter().any(|s| s.open_at(at))
    }

    /// When the window next opens: `at` itself when it is open, else the
    /// earliest opening of any span.
    pub fn next_opening(&self, at: Timestamp) -> Option<Timestamp> {
        if self.is_open(at) {
            return Some(at);
        }
        self.spans.iter().filter_map(|s| s.next_opening(at)).min()
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let days: Vec<&str> = (0..7)
            .filter(|&i| self.days[i])
            .map(|i| DAY_NAMES[i])
            .collect();
        let days = if days.len() == 7 {
            "every day".to_owned()
        } else {
            days.join(",")
        };
        write!(
            f,
            "{days} {}-{} {}",
            clock(self.from),
            clock(self.to),
            self.zone_name
        )
    }
}

/// `HH:MM`, or `HH:MM:SS` when the seconds are not zero.
fn clock(time: Time) -> String {
    if time.second() == 0 {
        time.strftime("%H:%M").to_string()
    } else {
        time.strftime("%H:%M:%S").to_string()
    }
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let spans: Vec<String> = self.spans.iter().map(|s| s.to_string()).collect();
        write!(f, "{}", spans.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(days: &[usize], from: &str, to: &str, zone: &str) -> Span {
        let mut set = [false; 7];
        for &d in days {
            set[d] = true;
        }
        Span {
            days: set,
            from: parse_time(from).unwrap(),
            to: parse_time(to).unwrap(),
            zone: TimeZone::get(zone).unwrap(),
            zone_name: zone.to_owned(),
        }
    }

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn office_hours_in_berlin_open_from_inclusive_to_exclusive() {
        // Mon-Thu 09:00-16:00 Europe/Berlin; 2026-12-07 is a Monday (UTC+1).
        let w = Window {
            spans: vec![span(&[0, 1, 2, 3], "09:00", "16:00", "Europe/Berlin")],
        };
        assert!(!w.is_open(at("2026-12-07T07:59:59Z")));
        assert!(w.is_open(at("2026-12-07T08:00:00Z")));
        assert!(w.is_open(at("2026-12-07T14:59:59Z")));
        assert!(!w.is_open(at("2026-12-07T15:00:00Z")));
        // Friday is not a day of the window: next opening is Monday 09:00.
        assert!(!w.is_open(at("2026-12-11T10:00:00Z")));
        assert_eq!(
            w.next_opening(at("2026-12-11T10:00:00Z")),
            Some(at("2026-12-14T08:00:00Z"))
        );
        assert_eq!(
            w.next_opening(at("2026-12-07T09:00:00Z")),
            Some(at("2026-12-07T09:00:00Z")),
            "open now"
        );
        assert_eq!(w.to_string(), "Mon,Tue,Wed,Thu 09:00-16:00 Europe/Berlin");
    }

    #[test]
    fn a_span_crossing_midnight_belongs_to_the_day_it_starts_on() {
        // Fri 22:00-02:00 UTC; 2026-12-11 is a Friday.
        let w = Window {
            spans: vec![span(&[4], "22:00", "02:00", "UTC")],
        };
        assert!(w.is_open(at("2026-12-11T23:30:00Z")));
        assert!(w.is_open(at("2026-12-12T01:59:00Z")), "Saturday early");
        assert!(!w.is_open(at("2026-12-12T02:00:00Z")));
        assert!(
            !w.is_open(at("2026-12-11T01:00:00Z")),
            "Friday early belongs to Thursday"
        );
        assert_eq!(
            w.next_opening(at("2026-12-12T03:00:00Z")),
            Some(at("2026-12-18T22:00:00Z"))
        );
    }

    #[test]
    fn daylight_saving_moves_the_opening_in_utc() {
        // New York 09:00 is 14:00 UTC in winter, 13:00 UTC in summer; the
        // 2027 change is on Sunday 14 March.
        let w = Window {
            spans: vec![span(
                &[0, 1, 2, 3, 4, 5, 6],
                "09:00",
                "10:00",
                "America/New_York",
            )],
        };
        assert!(w.is_open(at("2027-03-13T14:30:00Z")));
        assert!(w.is_open(at("2027-03-14T13:30:00Z")));
        assert!(!w.is_open(at("2027-03-14T14:30:00Z")));
        // 02:30 does not exist on that day: the wall clock jumps from
        // 02:00 EST to 03:00 EDT, past `from`, so the span opens at the jump.
        let gap = Window {
            spans: vec![span(&[6], "02:30", "04:00", "America/New_York")],
        };
        assert_eq!(
            gap.next_opening(at("2027-03-14T00:00:00Z")),
            Some(at("2027-03-14T07:00:00Z")),
            "03:00 EDT"
        );
        assert!(gap.is_open(at("2027-03-14T07:00:00Z")));
        assert!(!gap.is_open(at("2027-03-14T06:59:59Z")));
        // Berlin's autumn fold: 02:30 happens twice on 2026-10-25; the
        // span opens at the first (00:30 UTC).
        let fold = Window {
            spans: vec![span(&[6], "02:30", "02:45", "Europe/Berlin")],
        };
        assert_eq!(
            fold.next_opening(at("2026-10-24T12:00:00Z")),
            Some(at("2026-10-25T00:30:00Z"))
        );
    }

    #[test]
    fn an_autumn_fold_reopens_a_span_the_clock_falls_back_into() {
        // Berlin, Sunday 2026-10-25: 03:00 CEST falls back to 02:00 CET at
        // 01:00Z. 01:00-02:30 is open until 02:30 CEST (00:30Z), and again
        // from the fold (02:00 CET) until 02:30 CET (01:30Z).
        let w = Window {
            spans: vec![span(&[6], "01:00", "02:30", "Europe/Berlin")],
        };
        assert!(w.is_open(at("2026-10-25T00:29:59Z")));
        assert!(!w.is_open(at("2026-10-25T00:30:00Z")));
        assert_eq!(
            w.next_opening(at("2026-10-25T00:30:00Z")),
            Some(at("2026-10-25T01:00:00Z"))
        );
        assert!(w.is_open(at("2026-10-25T01:29:59Z")));
        assert!(!w.is_open(at("2026-10-25T01:30:00Z")));
    }

    /// Zones with one-hour, half-hour and midnight transitions, and none.
    const ZONES: [&str; 8] = [
        "UTC",
        "Europe/Berlin",
        "America/New_York",
        "Australia/Lord_Howe",
        "America/Santiago",
        "Pacific/Chatham",
        "Asia/Kolkata",
        "America/Havana",
    ];

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        /// `next_opening` is the first minute the window is open, found by
        /// walking the clock minute by minute from an instant near one of
        /// the zone's DST transitions (spans and transitions fall on whole
        /// minutes, so the walk misses nothing).
        #[test]
        fn next_opening_is_the_first_open_minute(
            zone in proptest::sample::select(&ZONES[..]),
            days in 1u8..128,
            from in 0i64..1440,
            to in 0i64..1440,
            transition in 0usize..4,
            offset in -2880i64..2880,
        ) {
            let clock = |m: i64| format!("{:02}:{:02}", m / 60, m % 60);
            let tz = TimeZone::get(zone).unwrap();
            let base = tz
                .following(at("2026-01-01T00:00:00Z"))
                .nth(transition)
                .map(|t| t.timestamp())
                .unwrap_or(at("2026-06-01T00:00:00Z"));
            let start = base
                .checked_add(jiff::SignedDuration::from_mins(offset))
                .unwrap();
            let days: Vec<usize> = (0..7).filter(|d| days & (1 << d) != 0).collect();
            let w = Window {
                spans: vec![span(&days, &clock(from), &clock(to), zone)],
            };
            let walked = (0..8 * 1440)
                .map(|m| start.checked_add(jiff::SignedDuration::from_mins(m)).unwrap())
                .find(|t| w.is_open(*t));
            let next = w.next_opening(start);
            if let Some(next) = next {
                proptest::prop_assert!(w.is_open(next), "{w}: {next} is not open");
            }
            proptest::prop_assert_eq!(next, walked, "{} from {}", w, start);
        }
    }

    #[test]
    fn several_spans_open_when_any_does() {
        let w = Window {
            spans: vec![
                span(&[0], "09:00", "10:00", "UTC"),
                span(&[2], "09:00", "10:00", "UTC"),
            ],
        };
        assert_eq!(
            w.next_opening(at("2026-12-07T11:00:00Z")),
            Some(at("2026-12-09T09:00:00Z"))
        );
    }

    #[test]
    fn days_and_times_parse_strictly() {
        assert_eq!(parse_day("Mon"), Some(0));
        assert_eq!(parse_day("sunday"), Some(6));
        assert_eq!(parse_day("Mo"), None);
        assert!(parse_time("09:00").is_some());
        assert!(parse_time("9:05").is_some());
        assert!(parse_time("24:00").is_none());
        assert!(parse_time("09:0").is_none());
        assert!(parse_time("noon").is_none());
        assert_eq!(parse_time("12:34:56").unwrap().second(), 56);
        assert!(parse_time("12:34:5").is_none());
        assert!(parse_time("+9:00").is_none());
    }
}
