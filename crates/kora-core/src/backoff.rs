//! Exponential backoff, the one policy for every retry in Kora: the client's reconnections
//! and transactions, the engine's effect retries, and a networked store's retries of an
//! unreachable database. Pure: the caller passes the random
//! fraction for jitter (`fastrand::f64()` in production, fixed values in tests).

use std::time::Duration;

/// Pauses that double from `min` with each attempt, up to `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub min: Duration,
    pub max: Duration,
}

/// Attempts past this double no further (2^20 × any sensible `min` is past any `max`).
const MAX_DOUBLINGS: u32 = 20;

impl Backoff {
    pub const fn new(min: Duration, max: Duration) -> Self {
        Backoff { min, max }
    }

    /// The pause after `attempt` failures (0: `min`): `min · 2^attempt`, at most `max`.
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let factor = 1u32 << attempt.min(MAX_DOUBLINGS);
        self.min.saturating_mul(factor).min(self.max)
    }

    /// "Full jitter": anywhere from zero to [`Backoff::ceiling`], `random` in `[0, 1)`. For
    /// writers contending on the same data, which should spread out as much as possible.
    pub fn full_jitter(&self, attempt: u32, random: f64) -> Duration {
        self.ceiling(attempt).mul_f64(random.clamp(0.0, 1.0))
    }

    /// Jitter in the upper half of [`Backoff::ceiling`], `random` in `[0, 1)`: waits keep
    /// growing while clients cut off together do not return together.
    pub fn half_jitter(&self, attempt: u32, random: f64) -> Duration {
        let half = self.ceiling(attempt) / 2;
        half + half.mul_f64(random.clamp(0.0, 1.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_double_up_to_the_cap() {
        let backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
        let pauses: Vec<u128> = (0..6).map(|a| backoff.ceiling(a).as_millis()).collect();
        assert_eq!(pauses, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(backoff.ceiling(u32::MAX), Duration::from_secs(1));
    }

    #[test]
    fn jitter_stays_within_its_range() {
        let backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
        assert_eq!(backoff.full_jitter(1, 0.0), Duration::ZERO);
        assert_eq!(backoff.full_jitter(1, 0.5), Duration::from_millis(100));
        assert_eq!(backoff.half_jitter(1, 0.0), Duration::from_millis(100));
        assert_eq!(backoff.half_jitter(1, 0.99), Duration::from_micros(199_000));
    }
}
