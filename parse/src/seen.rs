//! Which tests a streamed read has already handed on, in memory that stops growing: a Bloom
//! filter over the tests' keys, whose "maybe" answers are kept as suspects and settled
//! exactly by one more pass over the report, only when there are any.
//!
//! A test that appears again far from its first place (a rerun written after every other
//! test) must be noticed to be folded. An exact set of every key seen costs one slot per
//! test (about 18 MiB at 1,000,000 tests); this filter costs 32 to 64 bits per expected test
//! and at most [`MAX_BYTES`] whatever the report's size. A key the filter has not seen is
//! certainly new. A key it may have seen is a suspect: either a real repeat or a false
//! positive (none in 1,000,000 tests at 64 bits a test, 7 at 32). The suspects, a handful,
//! are counted in one more pass (`Count`), and only those that occur more than once are
//! refolded.

/// The most the filter takes: 8 MiB, 64 bits per test at 1,000,000 tests.
pub(crate) const MAX_BYTES: usize = 8 << 20;

/// The least it takes, for small reports.
const MIN_BYTES: usize = 4 << 10;

/// Bits set per key, within one 512-bit block.
const BITS_PER_KEY: u32 = 12;

/// A blocked Bloom filter of test keys, with the keys it may have seen before.
pub(crate) struct Seen {
    /// Blocks of 512 bits (one cache line each).
    blocks: Vec<[u64; 8]>,
    /// Keys inserted when the filter said it may have them already.
    suspects: foldhash::HashSet<u64>,
}

impl Seen {
    /// A filter sized for about `expected` tests: 32 to 64 bits each, within the bounds.
    pub(crate) fn new(expected: usize) -> Self {
        let bytes = expected
            .saturating_mul(4)
            .clamp(MIN_BYTES, MAX_BYTES)
            .next_power_of_two();
        Seen {
            blocks: vec![[0; 8]; bytes / 64],
            suspects: foldhash::HashSet::default(),
        }
    }

    /// Records `key`. Returns false when the key is certainly new, true when it may have been
    /// recorded before: it is then a suspect, to be settled by [`Count`].
    pub(crate) fn insert(&mut self, key: u64) -> bool {
        // The key is already a good 64-bit hash: its low bits pick the block; the bits
        // within it come nine at a time from two products of the key, whose high bits mix
        // all of its bits.
        let block = (key as usize) & (self.blocks.len() - 1);
        let block = &mut self.blocks[block];
        let first = key.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let second = key.wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
        let mut present = true;
        for index in 0..BITS_PER_KEY {
            let bit = if index < 7 {
                (first >> (1 + 9 * index)) & 511
            } else {
                (second >> (1 + 9 * (index - 7))) & 511
            } as usize;
            let (word, mask) = (bit / 64, 1u64 << (bit % 64));
            present &= block[word] & mask != 0;
            block[word] |= mask;
        }
        if present {
            self.suspects.insert(key);
        }
        present
    }

    /// The keys that may occur more than once. Empty when every key was certainly new.
    pub(crate) fn into_suspects(self) -> foldhash::HashSet<u64> {
        self.suspects
    }
}

/// How often each suspect occurs in the report: a pass that settles the filter's suspects.
pub(crate) struct Count {
    counts: foldhash::HashMap<u64, u32>,
}

impl Count {
    pub(crate) fn new(suspects: foldhash::HashSet<u64>) -> Self {
        Count {
            counts: suspects.into_iter().map(|key| (key, 0)).collect(),
        }
    }

    /// Counts one occurrence of `key`, when it is a suspect.
    pub(crate) fn add(&mut self, key: u64) {
        if let Some(count) = self.counts.get_mut(&key) {
            *count += 1;
        }
    }

    /// The suspects that really occur more than once.
    pub(crate) fn repeated(self) -> foldhash::HashSet<u64> {
        self.counts
            .into_iter()
            .filter(|(_, count)| *count > 1)
            .map(|(key, _)| key)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::hash::BuildHasher;

    use super::*;

    #[test]
    fn a_key_seen_again_is_a_suspect_and_new_keys_mostly_are_not() {
        let hasher = foldhash::fast::FixedState::default();
        let mut seen = Seen::new(2_000_000);
        let mut false_positives = 0;
        for i in 0..1_000_000u64 {
            if seen.insert(hasher.hash_one(i)) {
                false_positives += 1;
            }
        }
        assert!(seen.insert(hasher.hash_one(17u64)));
        // 64 bits a key, 12 of them set: none in a million here (7 at 32 bits a key).
        assert!(false_positives < 3, "{false_positives} false positives");
        let suspects = seen.into_suspects();
        assert!(suspects.contains(&hasher.hash_one(17u64)));
        let mut count = Count::new(suspects);
        for i in 0..1_000_000u64 {
            count.add(hasher.hash_one(i));
        }
        count.add(hasher.hash_one(17u64));
        let repeated = count.repeated();
        assert_eq!(repeated.len(), 1);
        assert!(repeated.contains(&hasher.hash_one(17u64)));
    }

    #[test]
    fn the_filter_stops_growing() {
        assert_eq!(Seen::new(10).blocks.len() * 64, MIN_BYTES);
        assert_eq!(Seen::new(100_000_000).blocks.len() * 64, MAX_BYTES);
    }
}
