//! Time-sortable unique ids: 48 bits of milliseconds and 80 random bits, written as 26
//! Crockford base32 characters (the ULID layout). Text order is creation order: within one
//! process, ids made in the same millisecond (or while the wall clock steps back) increment the
//! previous id instead of drawing new random bits, so they still sort in the order they were
//! made. Across processes, ids in the same millisecond are unordered but distinct with
//! overwhelming probability.
//!
//! The random bits come from the standard library's randomly seeded SipHash keys: unique
//! enough for ids, not a secret — do not use ids as tokens.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::Mutex;

use crate::base32;
use crate::stamp::{wall_millis, MAX_MILLIS};

static LAST: Mutex<u128> = Mutex::new(0);

/// A new id, newer than every id this process made before.
pub fn new() -> String {
    base32::encode(next(wall_millis()))
}

fn next(millis: u64) -> u128 {
    let fresh = (u128::from(millis.min(MAX_MILLIS)) << 80) | random_80();
    let mut last = LAST.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let id = if fresh >> 80 > *last >> 80 {
        fresh
    } else {
        *last + 1
    };
    *last = id;
    id
}

fn random_80() -> u128 {
    let draw = || {
        let mut hasher = RandomState::new().build_hasher();
        hasher.write_u64(wall_millis());
        hasher.finish()
    };
    let high = u128::from(draw() & 0xffff) << 64;
    high | u128::from(draw())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_26_characters_and_sort_in_creation_order() {
        let ids: Vec<String> = (0..10_000).map(|_| new()).collect();
        assert!(ids.iter().all(|id| id.len() == 26));
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn ids_stay_ordered_when_the_clock_steps_back() {
        let a = next(2_000_000);
        let b = next(1_000_000);
        assert!(b > a);
    }

    #[test]
    fn ids_are_valid_path_segments() {
        assert!(crate::path::Path::from_segments([new()]).is_ok());
    }
}
