//! Crockford base32 for 128-bit values: 26 characters whose byte order equals numeric order,
//! so stamps and ids sort the same as text and as numbers.

const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// Encodes a 128-bit value as 26 characters (the first carries the top 3 bits).
pub(crate) fn encode(value: u128) -> String {
    let mut out = [0u8; 26];
    for (i, slot) in out.iter_mut().enumerate() {
        let shift = 5 * (25 - i);
        *slot = ALPHABET[((value >> shift) & 0x1f) as usize];
    }
    out.iter().map(|&b| b as char).collect()
}

/// Decodes 26 characters (case-insensitive; `I`/`L` read as 1, `O` as 0, as Crockford says).
pub(crate) fn decode(text: &str) -> Option<u128> {
    let bytes = text.as_bytes();
    if bytes.len() != 26 || digit(bytes[0])? > 7 {
        return None;
    }
    bytes
        .iter()
        .try_fold(0u128, |acc, &b| Some((acc << 5) | u128::from(digit(b)?)))
}

fn digit(byte: u8) -> Option<u8> {
    let upper = byte.to_ascii_uppercase();
    match upper {
        b'O' => Some(0),
        b'I' | b'L' => Some(1),
        _ => ALPHABET.iter().position(|&c| c == upper).map(|p| p as u8),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_extremes() {
        for v in [0u128, 1, u128::MAX, 1 << 127, 0x0123_4567_89ab_cdef] {
            assert_eq!(decode(&encode(v)), Some(v));
        }
    }

    #[test]
    fn text_order_equals_numeric_order() {
        let values = [0u128, 31, 32, 1 << 64, (1 << 64) + 1, u128::MAX];
        for pair in values.windows(2) {
            assert!(encode(pair[0]) < encode(pair[1]));
        }
    }

    #[test]
    fn rejects_wrong_length_and_overflow() {
        assert_eq!(decode("ABC"), None);
        assert_eq!(decode(&"Z".repeat(26)), None);
    }
}
