//! Spaces requests so that their spans (or traces) add up to a target rate.
//!
//! Each request is scheduled when the previous ones have been "paid for" at the target
//! rate. A sender that fell behind (a full concurrency limit, a slow server) may catch
//! up, but only by a bounded burst: a stalled run does not turn into a flood.

use std::time::Duration;

#[derive(Clone, Debug)]
pub struct Pacer {
    units_per_second: Option<f64>,
    /// When, measured from the start, the next request is due.
    next: Duration,
    /// The largest backlog that may be caught up at once.
    burst: Duration,
}

impl Pacer {
    /// `None` for no limit.
    pub fn new(units_per_second: Option<f64>, burst: Duration) -> Self {
        Self {
            units_per_second: units_per_second.filter(|rate| *rate > 0.0),
            next: Duration::ZERO,
            burst,
        }
    }

    /// How long to wait, at `elapsed` since the start, before the next request may go.
    pub fn delay(&mut self, elapsed: Duration) -> Duration {
        if self.units_per_second.is_none() {
            return Duration::ZERO;
        }
        let earliest = elapsed.saturating_sub(self.burst);
        if self.next < earliest {
            self.next = earliest;
        }
        self.next.saturating_sub(elapsed)
    }

    /// Accounts for a request of `units` just sent: the next one is due that much later.
    pub fn charge(&mut self, units: u64) {
        if let Some(rate) = self.units_per_second {
            self.next += Duration::from_secs_f64(units as f64 / rate);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sends requests of `units` as soon as the pacer allows, on a simulated clock,
    /// from `from` until `until`; returns the units sent.
    fn drive(pacer: &mut Pacer, from: Duration, until: Duration, units: u64) -> u64 {
        let mut now = from;
        let mut sent = 0;
        loop {
            now += pacer.delay(now);
            if now >= until {
                return sent;
            }
            pacer.charge(units);
            sent += units;
        }
    }

    #[test]
    fn holds_the_target_rate() {
        let mut pacer = Pacer::new(Some(5_000.0), Duration::from_millis(100));
        let sent = drive(&mut pacer, Duration::ZERO, Duration::from_secs(10), 200);
        assert_eq!(sent, 50_000);

        let mut odd = Pacer::new(Some(333.0), Duration::from_millis(100));
        let sent = drive(&mut odd, Duration::ZERO, Duration::from_secs(30), 7);
        assert!((sent as f64 - 333.0 * 30.0).abs() <= 7.0, "{sent}");
    }

    #[test]
    fn spaces_requests_evenly() {
        let mut pacer = Pacer::new(Some(1_000.0), Duration::ZERO);
        assert_eq!(pacer.delay(Duration::ZERO), Duration::ZERO);
        pacer.charge(100);
        assert_eq!(pacer.delay(Duration::ZERO), Duration::from_millis(100));
        assert_eq!(
            pacer.delay(Duration::from_millis(40)),
            Duration::from_millis(60)
        );
    }

    #[test]
    fn catches_up_a_stall_only_by_the_burst() {
        let mut pacer = Pacer::new(Some(1_000.0), Duration::from_millis(100));
        drive(&mut pacer, Duration::ZERO, Duration::from_secs(1), 10);
        // The sender stalls for 5 s; afterwards only 100 ms of backlog goes at once,
        // on top of the request that is due now.
        let resume = Duration::from_secs(6);
        let mut immediate = 0;
        while pacer.delay(resume).is_zero() {
            pacer.charge(10);
            immediate += 10;
        }
        assert_eq!(immediate, 100 + 10);
        // Then the rate is back to normal.
        let sent = drive(&mut pacer, resume, resume + Duration::from_secs(2), 10);
        assert!((1_990..=2_010).contains(&sent), "{sent}");
    }

    #[test]
    fn no_limit_never_waits() {
        let mut pacer = Pacer::new(None, Duration::ZERO);
        for _ in 0..1_000 {
            pacer.charge(1_000_000);
            assert_eq!(pacer.delay(Duration::ZERO), Duration::ZERO);
        }
        let mut zero = Pacer::new(Some(0.0), Duration::ZERO);
        zero.charge(5);
        assert_eq!(zero.delay(Duration::ZERO), Duration::ZERO);
    }
}
