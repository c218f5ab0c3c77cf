//! The log lines LangMem writes, one per operation, read from a test's captured output.
//! Formats (`→` is U+2192):
//! - `Deduplication complete: {input} → {output} (exact={e}, semantic={s}) in {seconds:.3f}s`
//! - `TTL cleanup complete: deleted {n} entries from {m} namespaces in {seconds:.2f}s`
//! - `LangMemDedup initialized with threshold={t}, cache_size={c}`
//!
//! A line that starts like one of these but does not parse is counted as malformed, never
//! guessed at.

const DEDUP: &str = "Deduplication complete: ";
const CLEANUP: &str = "TTL cleanup complete: ";
const INIT: &str = "LangMemDedup initialized with ";

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Dedup {
    pub input: u64,
    pub output: u64,
    pub exact: u64,
    pub semantic: u64,
    pub seconds: f64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cleanup {
    pub deleted: u64,
    pub namespaces: u64,
    pub seconds: f64,
}

/// Everything read from a run's output.
#[derive(Debug, Default)]
pub struct Log {
    pub dedups: Vec<Dedup>,
    pub cleanups: Vec<Cleanup>,
    /// The cache size of the last `LangMemDedup initialized` line.
    pub configured_cache_size: Option<u64>,
    pub malformed_dedup: Vec<String>,
    pub malformed_cleanup: Vec<String>,
    pub malformed_init: Vec<String>,
}

impl Log {
    /// Reads every line of `text` (log prefixes such as `INFO langmem:file.py:12` are fine).
    pub fn read(&mut self, text: &str) {
        for line in text.lines() {
            if let Some(at) = line.find(DEDUP) {
                let rest = &line[at + DEDUP.len()..];
                match parse_dedup(rest) {
                    Some(dedup) => self.dedups.push(dedup),
                    None => self.malformed_dedup.push(line.trim().to_owned()),
                }
            } else if let Some(at) = line.find(CLEANUP) {
                let rest = &line[at + CLEANUP.len()..];
                match parse_cleanup(rest) {
                    Some(cleanup) => self.cleanups.push(cleanup),
                    None => self.malformed_cleanup.push(line.trim().to_owned()),
                }
            } else if let Some(at) = line.find(INIT) {
                let rest = &line[at + INIT.len()..];
                match parse_init(rest) {
                    Some(size) => self.configured_cache_size = Some(size),
                    None => self.malformed_init.push(line.trim().to_owned()),
                }
            }
        }
    }
}

/// `{input} → {output} (exact={e}, semantic={s}) in {seconds}s`
fn parse_dedup(rest: &str) -> Option<Dedup> {
    let (input, rest) = rest.split_once(" \u{2192} ")?;
    let (output, rest) = rest.split_once(" (exact=")?;
    let (exact, rest) = rest.split_once(", semantic=")?;
    let (semantic, rest) = rest.split_once(") in ")?;
    let dedup = Dedup {
        input: input.trim().parse().ok()?,
        output: output.trim().parse().ok()?,
        exact: exact.parse().ok()?,
        semantic: semantic.parse().ok()?,
        seconds: seconds(rest)?,
    };
    // The counts must add up: every input entry is kept or removed as a duplicate.
    (dedup.output + dedup.exact + dedup.semantic == dedup.input).then_some(dedup)
}

/// `deleted {n} entries from {m} namespaces in {seconds}s`
fn parse_cleanup(rest: &str) -> Option<Cleanup> {
    let rest = rest.strip_prefix("deleted ")?;
    let (deleted, rest) = rest.split_once(" entries from ")?;
    let (namespaces, rest) = rest.split_once(" namespaces in ")?;
    Some(Cleanup {
        deleted: deleted.parse().ok()?,
        namespaces: namespaces.parse().ok()?,
        seconds: seconds(rest)?,
    })
}

/// `threshold={t}, cache_size={c}`
fn parse_init(rest: &str) -> Option<u64> {
    let rest = rest.strip_prefix("threshold=")?;
    let (threshold, rest) = rest.split_once(", cache_size=")?;
    threshold.parse::<f64>().ok()?;
    rest.trim().parse().ok()
}

/// `0.123s`, the whole rest of the line.
fn seconds(rest: &str) -> Option<f64> {
    let value: f64 = rest.trim().strip_suffix('s')?.parse().ok()?;
    (value.is_finite() && value >= 0.0).then_some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_three_formats_behind_log_prefixes() {
        let mut log = Log::default();
        log.read(
            "INFO     langmem:langmem_store.py:95 Deduplication complete: 10 \u{2192} 7 (exact=2, semantic=1) in 0.004s\n\
             INFO     langmem:langmem_store.py:127 TTL cleanup complete: deleted 3 entries from 2 namespaces in 0.00s\n\
             LangMemDedup initialized with threshold=0.8, cache_size=256\n",
        );
        assert_eq!(
            log.dedups,
            vec![Dedup {
                input: 10,
                output: 7,
                exact: 2,
                semantic: 1,
                seconds: 0.004
            }]
        );
        assert_eq!(log.cleanups.len(), 1);
        assert_eq!(log.configured_cache_size, Some(256));
    }

    #[test]
    fn malformed_lines_are_kept_apart() {
        let mut log = Log::default();
        log.read("Deduplication complete: 10 -> 7 (exact=2, semantic=1) in 0.004s\n");
        log.read("Deduplication complete: 10 \u{2192} 7 (exact=5, semantic=1) in 0.004s\n");
        assert!(log.dedups.is_empty());
        assert_eq!(log.malformed_dedup.len(), 2);
    }
}
