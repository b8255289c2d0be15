//! Push ids as the SDKs generate them (JS `NextPushId.ts`): 8 characters of millisecond
//! timestamp and 12 random ones, over an alphabet in ASCII order so that ids sort by creation
//! time both as strings and under Firebase's key order. The server only makes them for REST
//! `POST`.

use rand::Rng;

/// Base64url's characters, ordered by ASCII.
const PUSH_CHARS: &[u8; 64] = b"-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz";

/// What the previous id was made from, so that ids made in the same millisecond still increase.
#[derive(Debug, Clone, Default)]
pub struct PushIdState {
    last_time: Option<u64>,
    last_random: [u8; 12],
}

/// The next push id. Within one millisecond the random part of the previous id is incremented
/// by one instead of drawn afresh. A clock that goes back is treated as still at the last time,
/// so ids from one state never decrease.
pub fn push_id(now_ms: u64, last: &mut PushIdState) -> String {
    let now = last.last_time.map_or(now_ms, |t| now_ms.max(t));
    if last.last_time == Some(now) {
        increment(&mut last.last_random);
    } else {
        let mut rng = rand::rng();
        for digit in &mut last.last_random {
            *digit = rng.random_range(0..64);
        }
    }
    last.last_time = Some(now);

    let mut id = String::with_capacity(20);
    for shift in (0..8).rev() {
        // 8 × 6 bits: timestamps below 2^48 ms (the year 10889) keep their order.
        id.push(push_char((now >> (shift * 6)) as u8));
    }
    id.extend(last.last_random.iter().map(|&d| push_char(d)));
    id
}

fn push_char(digit: u8) -> char {
    char::from(PUSH_CHARS[usize::from(digit & 63)])
}

/// Adds one to a base-64 number, most significant digit first. All 63s wrap to zeros, which
/// would take 2^72 ids in one millisecond.
fn increment(digits: &mut [u8; 12]) {
    for digit in digits.iter_mut().rev() {
        if *digit == 63 {
            *digit = 0;
        } else {
            *digit += 1;
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shape_and_timestamp_prefix() {
        let mut state = PushIdState::default();
        let id = push_id(1_763_912_350_000, &mut state);
        assert_eq!(id.len(), 20);
        assert!(id.bytes().all(|b| PUSH_CHARS.contains(&b)));
        // 1763912350000 in base 64 with the push alphabet.
        assert_eq!(&id[..8], "-OelMbZk");
        assert_eq!(&push_id(0, &mut PushIdState::default())[..8], "--------");
    }

    #[test]
    fn monotonic_within_a_millisecond_and_across() {
        let mut state = PushIdState::default();
        let mut ids = vec![push_id(1000, &mut state)];
        for now in [1000, 1000, 1001, 1001, 999, 2000] {
            ids.push(push_id(now, &mut state));
        }
        for pair in ids.windows(2) {
            assert!(pair[0] < pair[1], "{} !< {}", pair[0], pair[1]);
            assert_eq!(
                crate::order::name_compare(&pair[0], &pair[1]),
                std::cmp::Ordering::Less
            );
        }
    }

    #[test]
    fn increment_carries() {
        let mut digits = [0u8; 12];
        digits[11] = 63;
        digits[10] = 63;
        increment(&mut digits);
        assert_eq!(digits[9..], [1, 0, 0]);
        let mut full = [63u8; 12];
        increment(&mut full);
        assert_eq!(full, [0u8; 12]);
    }
}
