//! Stamps and the hybrid logical clock that issues them (docs/design.md §4).
//!
//! A [`Stamp`] is 48 bits of milliseconds since the Unix epoch, a 16-bit counter, and the
//! 64-bit id of the origin (node or client) that issued it; stamps compare in that order, so
//! the order is total and two origins never issue equal stamps. The clock packs milliseconds
//! and counter into one `u64`, which makes the HLC rules one `max` each:
//!
//! - local event: `next = max(physical << 16, last + 1)`
//! - receive:     `last = max(last, remote)` — the next local stamp is then newer than it.
//!
//! A counter that overflows carries into the milliseconds, running logical time slightly
//! ahead of the wall clock rather than ever repeating a stamp.

use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::base32;

/// Largest millisecond value a stamp can hold (48 bits: until the year 10889).
pub const MAX_MILLIS: u64 = (1 << 48) - 1;

/// How far ahead of the local clock a remote stamp may be before it is refused
/// (default 60 s): enough for real clock drift, too little for a client to write "forever".
pub const DEFAULT_MAX_SKEW_MS: u64 = 60_000;

/// A point in hybrid logical time, with the origin that made it. Totally ordered.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Stamp {
    hlc: u64,
    origin: u64,
}

impl Stamp {
    /// The oldest possible stamp.
    pub const ZERO: Stamp = Stamp { hlc: 0, origin: 0 };

    /// A stamp from its parts. `millis` above [`MAX_MILLIS`] is clamped.
    pub fn new(millis: u64, counter: u16, origin: u64) -> Self {
        Stamp {
            hlc: (millis.min(MAX_MILLIS) << 16) | u64::from(counter),
            origin,
        }
    }

    /// A stamp from the packed clock value (`millis << 16 | counter`) and origin.
    pub fn from_packed(hlc: u64, origin: u64) -> Self {
        Stamp { hlc, origin }
    }

    /// `millis << 16 | counter`.
    pub fn packed(&self) -> u64 {
        self.hlc
    }

    pub fn millis(&self) -> u64 {
        self.hlc >> 16
    }

    pub fn counter(&self) -> u16 {
        (self.hlc & 0xffff) as u16
    }

    pub fn origin(&self) -> u64 {
        self.origin
    }

    /// 16 bytes, big-endian, so that byte order equals stamp order.
    pub fn to_bytes(&self) -> [u8; 16] {
        let mut out = [0u8; 16];
        out[..8].copy_from_slice(&self.hlc.to_be_bytes());
        out[8..].copy_from_slice(&self.origin.to_be_bytes());
        out
    }

    pub fn from_bytes(bytes: [u8; 16]) -> Self {
        let mut hlc = [0u8; 8];
        let mut origin = [0u8; 8];
        hlc.copy_from_slice(&bytes[..8]);
        origin.copy_from_slice(&bytes[8..]);
        Stamp {
            hlc: u64::from_be_bytes(hlc),
            origin: u64::from_be_bytes(origin),
        }
    }

    fn as_u128(&self) -> u128 {
        (u128::from(self.hlc) << 64) | u128::from(self.origin)
    }
}

/// The text form: 26 Crockford base32 characters, sorting as the stamps do.
impl fmt::Display for Stamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&base32::encode(self.as_u128()))
    }
}

impl fmt::Debug for Stamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Stamp({}ms+{} @{:x})",
            self.millis(),
            self.counter(),
            self.origin
        )
    }
}

/// A stamp's text form could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid stamp {0:?}: expected 26 Crockford base32 characters")]
pub struct StampParseError(pub String);

impl FromStr for Stamp {
    type Err = StampParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let value = base32::decode(s).ok_or_else(|| StampParseError(s.to_string()))?;
        Ok(Stamp {
            hlc: (value >> 64) as u64,
            origin: value as u64,
        })
    }
}

impl Serialize for Stamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Stamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// A remote stamp was too far in the future to absorb.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("stamp is {ahead_ms} ms ahead of this clock; at most {max_skew_ms} ms is allowed")]
pub struct SkewError {
    pub ahead_ms: u64,
    pub max_skew_ms: u64,
}

/// Milliseconds since the Unix epoch, as the clock sees them.
pub type TimeSource = Box<dyn Fn() -> u64 + Send + Sync>;

/// Wall-clock milliseconds since the Unix epoch.
pub fn wall_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A hybrid logical clock for one origin. Shared by reference between threads.
pub struct Clock {
    origin: u64,
    last: AtomicU64,
    max_skew_ms: u64,
    time: TimeSource,
}

impl Clock {
    /// A clock on the wall time with the default skew allowance.
    pub fn new(origin: u64) -> Self {
        Self::with_time_source(origin, Box::new(wall_millis))
    }

    /// A clock reading time from `time` (tests use a fake one).
    pub fn with_time_source(origin: u64, time: TimeSource) -> Self {
        Clock {
            origin,
            last: AtomicU64::new(0),
            max_skew_ms: DEFAULT_MAX_SKEW_MS,
            time,
        }
    }

    /// Sets how far ahead a remote stamp may be (see [`DEFAULT_MAX_SKEW_MS`]).
    pub fn with_max_skew_ms(mut self, max_skew_ms: u64) -> Self {
        self.max_skew_ms = max_skew_ms;
        self
    }

    pub fn origin(&self) -> u64 {
        self.origin
    }

    pub fn max_skew_ms(&self) -> u64 {
        self.max_skew_ms
    }

    /// Issues a stamp newer than every stamp issued or observed before.
    pub fn now(&self) -> Stamp {
        let physical = (self.time)().min(MAX_MILLIS) << 16;
        let mut last = self.last.load(Ordering::Relaxed);
        loop {
            let next = physical.max(last + 1);
            match self
                .last
                .compare_exchange_weak(last, next, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => return Stamp::from_packed(next, self.origin),
                Err(actual) => last = actual,
            }
        }
    }

    /// Absorbs a remote stamp so that later local stamps are newer (the HLC receive rule).
    /// A stamp more than the allowed skew ahead of the wall clock is refused and not absorbed.
    pub fn observe(&self, remote: Stamp) -> Result<(), SkewError> {
        self.check_skew(remote)?;
        self.last.fetch_max(remote.packed(), Ordering::AcqRel);
        Ok(())
    }

    /// Refuses a stamp more than the allowed skew ahead of the wall clock.
    pub fn check_skew(&self, remote: Stamp) -> Result<(), SkewError> {
        let now = (self.time)();
        let ahead_ms = remote.millis().saturating_sub(now);
        if ahead_ms > self.max_skew_ms {
            return Err(SkewError {
                ahead_ms,
                max_skew_ms: self.max_skew_ms,
            });
        }
        Ok(())
    }
}

impl fmt::Debug for Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Clock")
            .field("origin", &self.origin)
            .field(
                "last",
                &Stamp::from_packed(self.last.load(Ordering::Relaxed), self.origin),
            )
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicU64;
    use std::sync::Arc;

    use super::*;

    fn fake_clock(origin: u64) -> (Clock, Arc<AtomicU64>) {
        let time = Arc::new(AtomicU64::new(1_000));
        let source = time.clone();
        let clock =
            Clock::with_time_source(origin, Box::new(move || source.load(Ordering::SeqCst)));
        (clock, time)
    }

    #[test]
    fn stamps_increase_while_the_wall_clock_stands_still() {
        let (clock, _) = fake_clock(7);
        let a = clock.now();
        let b = clock.now();
        assert!(b > a);
        assert_eq!((a.millis(), a.counter()), (1_000, 0));
        assert_eq!((b.millis(), b.counter()), (1_000, 1));
    }

    #[test]
    fn stamps_increase_when_the_wall_clock_goes_backwards() {
        let (clock, time) = fake_clock(1);
        let a = clock.now();
        time.store(500, Ordering::SeqCst);
        assert!(clock.now() > a);
    }

    #[test]
    fn observing_a_remote_stamp_makes_the_next_local_one_newer() {
        let (clock, _) = fake_clock(1);
        let remote = Stamp::new(1_050, 9, 2);
        clock.observe(remote).unwrap();
        let next = clock.now();
        assert!(next > remote);
        assert_eq!((next.millis(), next.counter()), (1_050, 10));
    }

    #[test]
    fn remote_stamp_beyond_the_skew_is_refused() {
        let (clock, _) = fake_clock(1);
        let far = Stamp::new(1_000 + DEFAULT_MAX_SKEW_MS + 1, 0, 2);
        assert!(clock.observe(far).is_err());
        assert!(clock.now() < far);
    }

    #[test]
    fn counter_overflow_carries_into_the_milliseconds() {
        let (clock, _) = fake_clock(1);
        clock.observe(Stamp::new(1_000, u16::MAX, 2)).unwrap();
        let next = clock.now();
        assert_eq!((next.millis(), next.counter()), (1_001, 0));
    }

    #[test]
    fn origin_breaks_ties_so_the_order_is_total() {
        assert!(Stamp::new(5, 0, 1) < Stamp::new(5, 0, 2));
        assert!(Stamp::new(5, 0, 9) < Stamp::new(5, 1, 1));
    }

    #[test]
    fn text_and_bytes_round_trip_and_sort_like_stamps() {
        let a = Stamp::new(1_700_000_000_000, 3, 42);
        let b = Stamp::new(1_700_000_000_000, 4, 1);
        assert_eq!(a.to_string().parse::<Stamp>().unwrap(), a);
        assert_eq!(Stamp::from_bytes(a.to_bytes()), a);
        assert!(a.to_string() < b.to_string());
        assert!(a.to_bytes() < b.to_bytes());
        assert!("not a stamp".parse::<Stamp>().is_err());
    }
}
