//! The adaptive request rate of one registry host: unlimited until the
//! registry says "too many requests", then half the rate crowsnest was
//! actually sending, recovering by 5% a second until it is comfortably
//! above the rate that was refused, when the limit is lifted again.
//! `Retry-After` pauses every request to the host, not just the one that
//! got it. The arithmetic takes `now` as an argument so it is tested
//! without sleeping.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Recovery per second of a lowered limit.
const RECOVERY_PER_SECOND: f64 = 1.05;
/// Window over which the sending rate is measured.
const WINDOW: Duration = Duration::from_secs(2);

#[derive(Debug)]
struct State {
    /// Requests per second, or `None` for no limit.
    limit: Option<f64>,
    /// The limit is lifted once it recovers to this.
    ceiling: f64,
    /// Earliest start of the next request.
    next: Instant,
    /// No request starts before this (`Retry-After`).
    paused_until: Instant,
    last_adjusted: Instant,
    /// Starts within the last [`WINDOW`].
    starts: VecDeque<Instant>,
}

#[derive(Debug)]
pub(crate) struct AdaptiveRate {
    state: Mutex<State>,
    min_rate: f64,
}

impl AdaptiveRate {
    pub(crate) fn new(min_rate: f64, now: Instant) -> Self {
        Self {
            state: Mutex::new(State {
                limit: None,
                ceiling: f64::INFINITY,
                next: now,
                paused_until: now,
                last_adjusted: now,
                starts: VecDeque::new(),
            }),
            min_rate: min_rate.max(0.01),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding this lock leaves plain numbers behind; they
        // are still usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reserves the start time of one request and returns it.
    pub(crate) fn reserve(&self, now: Instant) -> Instant {
        let mut s = self.lock();
        recover(&mut s, now);
        let mut at = now.max(s.paused_until);
        if let Some(limit) = s.limit {
            at = at.max(s.next);
            s.next = at + Duration::from_secs_f64(1.0 / limit);
        }
        while s.starts.front().is_some_and(|t| *t + WINDOW < now) {
            s.starts.pop_front();
        }
        s.starts.push_back(at);
        at
    }

    /// Whether a pause began after `reserved` was handed out and covers it.
    pub(crate) fn paused_past(&self, reserved: Instant) -> Option<Instant> {
        let s = self.lock();
        (s.paused_until > reserved).then_some(s.paused_until)
    }

    /// A 429 (or a 503 with `Retry-After`): halve and pause for `wait`.
    pub(crate) fn throttled(&self, now: Instant, wait: Duration) {
        let mut s = self.lock();
        recover(&mut s, now);
        while s.starts.front().is_some_and(|t| *t + WINDOW < now) {
            s.starts.pop_front();
        }
        let sending = s.starts.len() as f64 / WINDOW.as_secs_f64();
        let current = s
            .limit
            .map_or(sending, |l| l.min(sending.max(self.min_rate)));
        let halved = (current / 2.0).max(self.min_rate);
        if s.limit.is_none() {
            s.ceiling = (current * 2.0).max(self.min_rate * 4.0);
        }
        s.limit = Some(halved);
        s.last_adjusted = now;
        s.paused_until = s.paused_until.max(now + wait);
        s.next = s.next.max(s.paused_until);
    }

    /// The current limit in requests per second (`None`: unlimited).
    pub(crate) fn limit(&self, now: Instant) -> Option<f64> {
        let mut s = self.lock();
        recover(&mut s, now);
        s.limit
    }
}

fn recover(s: &mut State, now: Instant) {
    let Some(limit) = s.limit else { return };
    let elapsed = now.saturating_duration_since(s.last_adjusted).as_secs_f64();
    if elapsed <= 0.0 {
        return;
    }
    let raised = limit * RECOVERY_PER_SECOND.powf(elapsed);
    s.last_adjusted = now;
    if raised >= s.ceiling {
        s.limit = None;
        s.ceiling = f64::INFINITY;
    } else {
        s.limit = Some(raised);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unlimited_until_throttled_then_half_the_sending_rate() {
        let t0 = Instant::now();
        let rate = AdaptiveRate::new(0.5, t0);
        // 40 requests in the last two seconds: 20 per second.
        for i in 0..40 {
            let at = t0 + Duration::from_millis(50 * i);
            assert_eq!(rate.reserve(at), at, "no limit yet");
        }
        let t1 = t0 + Duration::from_secs(2);
        rate.throttled(t1, Duration::from_secs(3));
        let limit = rate.limit(t1).unwrap();
        assert!((limit - 10.0).abs() < 1.5, "{limit}");
        // Nothing starts before Retry-After has passed, then 1/limit apart.
        let first = rate.reserve(t1);
        assert_eq!(first, t1 + Duration::from_secs(3));
        let second = rate.reserve(t1);
        let gap = (second - first).as_secs_f64();
        assert!((gap - 1.0 / limit).abs() < 0.01, "{gap}");
    }

    #[test]
    fn a_second_429_halves_again_and_recovery_is_slow_then_lifts() {
        let t0 = Instant::now();
        let rate = AdaptiveRate::new(0.5, t0);
        for i in 0..40 {
            rate.reserve(t0 + Duration::from_millis(50 * i));
        }
        let t1 = t0 + Duration::from_secs(2);
        rate.throttled(t1, Duration::ZERO);
        let first = rate.limit(t1).unwrap();
        rate.throttled(t1, Duration::ZERO);
        let second = rate.limit(t1).unwrap();
        assert!((second - first / 2.0).abs() < 0.01, "{first} -> {second}");
        // Ten seconds later: up by about 63%, still limited.
        let later = rate.limit(t1 + Duration::from_secs(10)).unwrap();
        assert!(later > second * 1.5 && later < second * 1.75, "{later}");
        // A minute later the limit is gone.
        assert_eq!(rate.limit(t1 + Duration::from_secs(70)), None);
    }

    #[test]
    fn the_rate_never_drops_below_the_floor() {
        let t0 = Instant::now();
        let rate = AdaptiveRate::new(0.5, t0);
        for _ in 0..20 {
            rate.throttled(t0, Duration::ZERO);
        }
        assert_eq!(rate.limit(t0), Some(0.5));
    }
}
