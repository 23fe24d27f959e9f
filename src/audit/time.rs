//! Times in the audit trail: Unix seconds in, RFC 3339 UTC out, and the
//! forms `--since` / `--until` accept. Hand-written civil-date arithmetic
//! (Howard Hinnant's `days_from_civil`), because git gives seconds and
//! offsets and nothing here needs a calendar crate.

/// Seconds since the Unix epoch, UTC.
pub type Seconds = i64;

/// A bound the user typed: a full time, or a calendar day.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeBound {
    /// The first second the bound names.
    pub start: Seconds,
    /// `true` for `YYYY-MM-DD` alone, which names a whole (UTC) day.
    pub whole_day: bool,
}

impl TimeBound {
    /// `--since`: commits at or after this.
    pub fn since(&self) -> Seconds {
        self.start
    }

    /// `--until`: commits strictly before this; a day alone includes
    /// that whole day.
    pub fn until(&self) -> Seconds {
        if self.whole_day {
            self.start + 86_400
        } else {
            self.start
        }
    }
}

/// Parses `YYYY-MM-DD` or an RFC 3339 time, `YYYY-MM-DDTHH:MM[:SS[.frac]]`
/// followed by `Z` or `±HH:MM` (a space may replace the `T`; without an
/// offset the time is UTC). Fractions of a second are dropped.
pub fn parse_time(text: &str) -> Result<TimeBound, String> {
    let fail = || {
        format!(
            "{text:?} is not a time; write YYYY-MM-DD or an RFC 3339 time such as 2024-05-01T12:00:00Z"
        )
    };
    let text = text.trim();
    let (date, rest) = match text.find(['T', 't', ' ']) {
        Some(i) => (&text[..i], Some(&text[i + 1..])),
        None => (text, None),
    };
    let mut parts = date.split('-');
    let (Some(y), Some(m), Some(d), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(fail());
    };
    let year = digits(y, 4).ok_or_else(fail)?;
    let month = digits(m, 2).ok_or_else(fail)?;
    let day = digits(d, 2).ok_or_else(fail)?;
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return Err(fail());
    }
    let midnight = days_from_civil(year, month, day) * 86_400;
    let Some(rest) = rest else {
        return Ok(TimeBound {
            start: midnight,
            whole_day: true,
        });
    };
    let (clock, offset) = match rest.find(['Z', 'z', '+', '-']) {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let clock = clock.split('.').next().unwrap_or(clock);
    let mut fields = clock.split(':');
    let hour = fields.next().and_then(|h| digits(h, 2)).ok_or_else(fail)?;
    let minute = fields.next().and_then(|m| digits(m, 2)).ok_or_else(fail)?;
    let second = match fields.next() {
        Some(s) => digits(s, 2).ok_or_else(fail)?,
        None => 0,
    };
    if fields.next().is_some() || hour > 23 || minute > 59 || second > 60 {
        return Err(fail());
    }
    let offset = match offset {
        "" | "Z" | "z" => 0,
        signed => {
            let sign = if signed.starts_with('-') { -1 } else { 1 };
            let (h, m) = signed[1..].split_once(':').ok_or_else(fail)?;
            let (h, m) = (
                digits(h, 2).ok_or_else(fail)?,
                digits(m, 2).ok_or_else(fail)?,
            );
            if h > 23 || m > 59 {
                return Err(fail());
            }
            sign * (h * 3600 + m * 60)
        }
    };
    Ok(TimeBound {
        start: midnight + hour * 3600 + minute * 60 + second - offset,
        whole_day: false,
    })
}

/// `2024-05-01T12:00:00Z`.
pub fn format_time(seconds: Seconds) -> String {
    let days = seconds.div_euclid(86_400);
    let of_day = seconds.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        of_day / 3600,
        of_day / 60 % 60,
        of_day % 60
    )
}

fn digits(text: &str, len: usize) -> Option<i64> {
    if text.len() != len || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_in_every_accepted_form() {
        let cases = [
            ("1970-01-01", 0, true),
            ("2024-05-01", 1_714_521_600, true),
            ("2024-05-01T12:00:00Z", 1_714_564_800, false),
            ("2024-05-01t12:00:00z", 1_714_564_800, false),
            ("2024-05-01 12:00:00", 1_714_564_800, false),
            ("2024-05-01T12:00Z", 1_714_564_800, false),
            ("2024-05-01T12:00:00.123456Z", 1_714_564_800, false),
            ("2024-05-01T14:00:00+02:00", 1_714_564_800, false),
            ("2024-05-01T07:30:00-04:30", 1_714_564_800, false),
            ("2024-02-29", 1_709_164_800, true),
            ("1969-12-31T23:59:59Z", -1, false),
        ];
        for (text, want, whole_day) in cases {
            let bound = parse_time(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(bound.start, want, "{text}");
            assert_eq!(bound.whole_day, whole_day, "{text}");
        }
    }

    #[test]
    fn nonsense_times_are_refused_with_the_accepted_forms() {
        for text in [
            "",
            "yesterday",
            "2024-5-1",
            "2023-02-29",
            "2024-13-01",
            "2024-04-31",
            "2024-05-01T25:00:00Z",
            "2024-05-01T12",
            "2024-05-01T12:00:00+0200",
            "2024-05-01-02",
        ] {
            let err = parse_time(text).expect_err(text);
            assert!(err.contains("YYYY-MM-DD"), "{err}");
        }
    }

    #[test]
    fn a_day_alone_as_until_includes_that_day() {
        let day = parse_time("2024-05-01").unwrap();
        assert_eq!(day.since(), 1_714_521_600);
        assert_eq!(day.until(), 1_714_521_600 + 86_400);
        let instant = parse_time("2024-05-01T00:00:00Z").unwrap();
        assert_eq!(instant.until(), 1_714_521_600);
    }

    #[test]
    fn formatting_round_trips_over_four_centuries() {
        let mut seconds = -2_208_988_800; // 1900-01-01
        while seconds < 10_413_792_000 {
            // 2300-01-01
            let text = format_time(seconds);
            assert_eq!(parse_time(&text).unwrap().start, seconds, "{text}");
            seconds += 86_400 * 37 + 3_671;
        }
        assert_eq!(format_time(1_714_564_800), "2024-05-01T12:00:00Z");
        assert_eq!(format_time(-1), "1969-12-31T23:59:59Z");
    }
}
