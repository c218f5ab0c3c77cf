//! The log lines LangMem writes, one per operation, read from a test's captured output.
//! Formats (`→` is U+2192):
//! - `Deduplication complete: {input} → {output} (exact={e}, semantic={s}) in {seconds:.3f}s`
//! - `TTL cleanup complete: deleted {n} entries from {m} namespaces in {seconds:.2f}s`
//!
//! A line that starts like one of these but does not parse is counted as malformed, never
//! guessed at. A case's output is read from one place only (`Output::read_once`): the same
//! record copied to pytest's log capture and to a stream handler is one operation.

const DEDUP: &str = "Deduplication complete: ";
const CLEANUP: &str = "TTL cleanup complete: ";

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
    pub malformed_dedup: Vec<String>,
    pub malformed_cleanup: Vec<String>,
}

impl Log {
    /// The operation lines of one text, or `None` when it has none (well formed or not).
    pub fn of(text: &str) -> Option<Log> {
        let mut log = Log::default();
        log.read(text);
        let found = !(log.dedups.is_empty()
            && log.cleanups.is_empty()
            && log.malformed_dedup.is_empty()
            && log.malformed_cleanup.is_empty());
        found.then_some(log)
    }

    /// Adds what another text said, after what this one said.
    pub fn append(&mut self, mut other: Log) {
        self.dedups.append(&mut other.dedups);
        self.cleanups.append(&mut other.cleanups);
        self.malformed_dedup.append(&mut other.malformed_dedup);
        self.malformed_cleanup.append(&mut other.malformed_cleanup);
    }

    /// Reads every line of `text` (log prefixes such as `INFO langmem:file.py:12` are fine).
    fn read(&mut self, text: &str) {
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

/// `0.123s`, the whole rest of the line.
fn seconds(rest: &str) -> Option<f64> {
    let value: f64 = rest.trim().strip_suffix('s')?.parse().ok()?;
    (value.is_finite() && value >= 0.0).then_some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_both_formats_behind_log_prefixes() {
        let log = Log::of(
            "INFO     langmem:langmem_store.py:95 Deduplication complete: 10 \u{2192} 7 (exact=2, semantic=1) in 0.004s\n\
             INFO     langmem:langmem_store.py:127 TTL cleanup complete: deleted 3 entries from 2 namespaces in 0.00s\n\
             LangMemDedup initialized with threshold=0.8, cache_size=256\n",
        )
        .expect("has operations");
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
    }

    #[test]
    fn text_without_operation_lines_is_none() {
        assert!(Log::of(
            "INFO something else\nLangMemDedup initialized with threshold=0.8, cache_size=256\n"
        )
        .is_none());
        assert!(Log::of("Deduplication complete: garbage\n").is_some());
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
