//! Scanning the short strings of a report (names, attribute values) for control characters,
//! a few other bytes, or a quote, eight bytes at a time: a scan byte by byte was a fifth of a
//! streamed read's instructions (callgrind), for strings of a few dozen bytes.

const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);

/// Whether a byte of `word` is below `limit` (at most 0x80).
fn below(word: u64, limit: u8) -> bool {
    marks_below(word, limit) != 0
}

/// The high bit of each byte of `word` that is below `limit` (at most 0x80); a byte above
/// one that is may be marked too, never one below the lowest.
fn marks_below(word: u64, limit: u8) -> u64 {
    word.wrapping_sub(ONES * u64::from(limit)) & !word & HIGHS
}

/// Whether a byte of `word` is `byte`.
fn has(word: u64, byte: u8) -> bool {
    below(word ^ (ONES * u64::from(byte)), 1)
}

/// Where the first `needle` in `haystack` is, looked for eight bytes at a time.
pub(crate) fn find(needle: u8, haystack: &[u8]) -> Option<usize> {
    let words = haystack.chunks_exact(8);
    let rest = words.remainder();
    let mut word = [0u8; 8];
    for (index, chunk) in words.enumerate() {
        word.copy_from_slice(chunk);
        // Little-endian, so the first byte in memory is the lowest: the lowest mark is exact.
        let marks = marks_below(u64::from_le_bytes(word) ^ (ONES * u64::from(needle)), 1);
        if marks != 0 {
            return Some(index * 8 + (marks.trailing_zeros() / 8) as usize);
        }
    }
    let at = haystack.len() - rest.len();
    rest.iter().position(|&byte| byte == needle).map(|i| at + i)
}

fn flagged(word: u64, also: &[u8]) -> bool {
    below(word, 0x20) || also.iter().any(|&byte| has(word, byte))
}

/// Whether any byte of `bytes` is a control character (below 0x20) or one of `also`.
pub(crate) fn any_control_or(bytes: &[u8], also: &[u8]) -> bool {
    let words = bytes.chunks_exact(8);
    let rest = words.remainder();
    let mut word = [0u8; 8];
    for chunk in words {
        word.copy_from_slice(chunk);
        if flagged(u64::from_ne_bytes(word), also) {
            return true;
        }
    }
    rest.iter().any(|byte| *byte < 0x20 || also.contains(byte))
}

#[cfg(test)]
mod tests {
    use super::{any_control_or, find};

    #[test]
    fn finds_the_first_needle() {
        for len in 0..40 {
            for first in 0..=len {
                for second in first..=len {
                    let mut text = vec![b'a'; len];
                    for at in [first, second] {
                        if at < len {
                            text[at] = b'"';
                        }
                    }
                    let expected = text.iter().position(|&b| b == b'"');
                    assert_eq!(find(b'"', &text), expected, "{len} {first} {second}");
                }
            }
        }
        // Bytes just above and below the needle, and the high bit set, are not it.
        assert_eq!(find(b'"', b"!#\xa2\xa2!#!#x\""), Some(9));
    }

    #[test]
    fn finds_every_control_and_every_listed_byte_anywhere() {
        let also = [b'&', 0x7f, 0xc2];
        for len in 1..40 {
            for at in 0..len {
                for byte in 0..=255u8 {
                    let mut text = vec![b'a'; len];
                    text[at] = byte;
                    let expected = byte < 0x20 || also.contains(&byte);
                    assert_eq!(any_control_or(&text, &also), expected, "{len} {at} {byte}");
                }
            }
        }
        assert!(!any_control_or(b"", &also));
    }
}
