//! The compact byte layouts the history store keeps a run's results and a suite's tracks in, so
//! that recording a run of 100,000 cases writes a few blobs instead of 100,000 rows. Each blob
//! starts with a format byte; integers are LEB128 varints, ids little-endian `i64`. Decoding
//! never panics: a blob that does not parse is [`Malformed`].

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, Hasher};
use std::sync::OnceLock;
use std::time::Duration;

use super::classify::{State, Track};
use crate::model::{CaseResult, Outcome};

/// The first byte of a chunk of results.
const RESULTS_FORMAT: u8 = 1;
/// The first byte of a shard of tracks.
const TRACKS_FORMAT: u8 = 1;
/// A run's state byte for a result that is not counted: the test was reported earlier in
/// the same run.
pub const DUPLICATE: u8 = u8::MAX;

const FLAKY: u8 = 1 << 2;
const HAS_DURATION: u8 = 1 << 3;
const HAS_MESSAGE: u8 = 1 << 4;
const NO_OUTCOME: u8 = u8::MAX;

/// A blob that does not parse as what it should be.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a stored {what} does not parse at byte {at}")]
pub struct Malformed {
    pub what: &'static str,
    pub at: usize,
}

pub fn outcome_code(outcome: Outcome) -> u8 {
    match outcome {
        Outcome::Passed => 0,
        Outcome::Failed => 1,
        Outcome::Errored => 2,
        Outcome::Skipped => 3,
    }
}

pub fn outcome_of(code: u8) -> Outcome {
    match code {
        1 => Outcome::Failed,
        2 => Outcome::Errored,
        3 => Outcome::Skipped,
        _ => Outcome::Passed,
    }
}

/// The shard of a suite's tracks a test's track is kept in: the top byte of its id, so the
/// shards in order hold the ids in (unsigned) order.
pub fn shard_of(id: i64) -> u8 {
    (id as u64 >> 56) as u8
}

/// Groups of shards a run's results are written and classified by, so finishing a run holds
/// one group's results at a time (a sixteenth of the run), never the whole run.
pub const GROUPS: usize = 16;

/// The group of a test's results: the top four bits of its id.
pub fn group_of(id: i64) -> usize {
    usize::from(shard_of(id) >> 4)
}

/// The group a shard belongs to.
pub fn group_of_shard(shard: u8) -> usize {
    usize::from(shard >> 4)
}

/// The order tests are classified and kept in.
pub fn id_order(id: i64) -> u64 {
    id as u64
}

/// Sets and maps keyed by test id. Ids are already uniform (SHA-256), so one keyed folded
/// multiply hashes them; the keys are random per process, so names ground to collide in a
/// table's low bits do not.
pub type IdSet = HashSet<i64, IdHash>;
pub type IdMap<V> = HashMap<i64, V, IdHash>;

#[derive(Debug, Clone, Copy)]
pub struct IdHash {
    keys: (u64, u64),
}

impl Default for IdHash {
    fn default() -> Self {
        static KEYS: OnceLock<(u64, u64)> = OnceLock::new();
        let keys = *KEYS.get_or_init(|| {
            let random = std::collections::hash_map::RandomState::new();
            (random.hash_one(1u8), random.hash_one(2u8) | 1)
        });
        IdHash { keys }
    }
}

impl BuildHasher for IdHash {
    type Hasher = IdHasher;

    fn build_hasher(&self) -> IdHasher {
        IdHasher {
            keys: self.keys,
            state: 0,
        }
    }
}

pub struct IdHasher {
    keys: (u64, u64),
    state: u64,
}

impl Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
    }

    fn write_u64(&mut self, value: u64) {
        let product = u128::from(self.state ^ value ^ self.keys.0) * u128::from(self.keys.1);
        self.state = (product as u64) ^ ((product >> 64) as u64);
    }

    fn write_i64(&mut self, value: i64) {
        self.write_u64(value as u64);
    }

    fn finish(&self) -> u64 {
        self.state
    }
}

fn push_varint(buf: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        buf.push((value as u8) | 0x80);
        value >>= 7;
    }
    buf.push(value as u8);
}

fn push_text(buf: &mut Vec<u8>, text: &str) {
    push_varint(buf, text.len() as u64);
    buf.extend_from_slice(text.as_bytes());
}

/// A cursor over a blob.
struct Reader<'a> {
    data: &'a [u8],
    at: usize,
    what: &'static str,
}

impl<'a> Reader<'a> {
    fn new(data: &'a [u8], what: &'static str, format: u8) -> Result<Self, Malformed> {
        let mut reader = Reader { data, at: 0, what };
        reader.format(format)?;
        Ok(reader)
    }

    /// Reads the format byte, which must be `format`.
    fn format(&mut self, format: u8) -> Result<(), Malformed> {
        if self.data.first() != Some(&format) {
            return Err(self.malformed());
        }
        self.at = 1;
        Ok(())
    }

    fn malformed(&self) -> Malformed {
        Malformed {
            what: self.what,
            at: self.at,
        }
    }

    fn done(&self) -> bool {
        self.at >= self.data.len()
    }

    fn bytes(&mut self, n: usize) -> Result<&'a [u8], Malformed> {
        let end = self.at.checked_add(n).filter(|&end| end <= self.data.len());
        let Some(end) = end else {
            return Err(self.malformed());
        };
        let bytes = &self.data[self.at..end];
        self.at = end;
        Ok(bytes)
    }

    fn byte(&mut self) -> Result<u8, Malformed> {
        Ok(self.bytes(1)?[0])
    }

    fn id(&mut self) -> Result<i64, Malformed> {
        let bytes = self.bytes(8)?;
        let mut id = [0; 8];
        id.copy_from_slice(bytes);
        Ok(i64::from_le_bytes(id))
    }

    fn varint(&mut self) -> Result<u64, Malformed> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.byte()?;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(self.malformed())
    }

    fn text(&mut self) -> Result<&'a str, Malformed> {
        let len = usize::try_from(self.varint()?).map_err(|_| self.malformed())?;
        let bytes = self.bytes(len)?;
        std::str::from_utf8(bytes).map_err(|_| self.malformed())
    }
}

/// A chunk of a run's results being written, in the order the report gave them.
#[derive(Debug)]
pub struct ResultsChunk {
    buf: Vec<u8>,
    len: usize,
}

impl Default for ResultsChunk {
    fn default() -> Self {
        ResultsChunk {
            buf: vec![RESULTS_FORMAT],
            len: 0,
        }
    }
}

impl ResultsChunk {
    pub fn push(&mut self, result: &StoredResult<'_>) {
        let buf = &mut self.buf;
        buf.extend_from_slice(&result.id.to_le_bytes());
        let mut flags = outcome_code(result.outcome);
        if result.flaky {
            flags |= FLAKY;
        }
        if result.duration.is_some() {
            flags |= HAS_DURATION;
        }
        if result.message.is_some() {
            flags |= HAS_MESSAGE;
        }
        buf.push(flags);
        push_varint(buf, u64::from(result.attempts));
        if let Some(duration) = result.duration {
            push_varint(buf, u64::try_from(duration.as_micros()).unwrap_or(u64::MAX));
        }
        if let Some(message) = result.message {
            push_text(buf, message);
        }
        self.len += 1;
    }

    /// Results in the chunk.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes it takes.
    pub fn bytes(&self) -> usize {
        self.buf.len()
    }

    /// The blob, leaving the chunk empty.
    pub fn take(&mut self) -> Vec<u8> {
        self.len = 0;
        std::mem::replace(&mut self.buf, vec![RESULTS_FORMAT])
    }
}

/// One stored result, borrowed from its chunk.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredResult<'a> {
    pub id: i64,
    pub outcome: Outcome,
    pub flaky: bool,
    pub attempts: u32,
    pub duration: Option<Duration>,
    pub message: Option<&'a str>,
}

impl<'a> StoredResult<'a> {
    /// What is kept of `case`, the test `id`.
    pub fn of(id: i64, case: &'a CaseResult) -> Self {
        StoredResult {
            id,
            outcome: case.outcome,
            flaky: case.flaky,
            attempts: case.attempts,
            duration: case.duration,
            message: case.message.as_deref(),
        }
    }
}

/// The results of a chunk, in order; after a malformed one, none.
pub fn results(chunk: &[u8]) -> Results<'_> {
    Results {
        reader: Reader {
            data: chunk,
            at: 0,
            what: "chunk of results",
        },
        started: false,
    }
}

/// See [`results`].
pub struct Results<'a> {
    reader: Reader<'a>,
    started: bool,
}

impl<'a> Results<'a> {
    fn next_result(&mut self) -> Result<StoredResult<'a>, Malformed> {
        let reader = &mut self.reader;
        let id = reader.id()?;
        let flags = reader.byte()?;
        let attempts = u32::try_from(reader.varint()?).unwrap_or(u32::MAX);
        let duration = if flags & HAS_DURATION != 0 {
            Some(Duration::from_micros(reader.varint()?))
        } else {
            None
        };
        let message = if flags & HAS_MESSAGE != 0 {
            Some(reader.text()?)
        } else {
            None
        };
        Ok(StoredResult {
            id,
            outcome: outcome_of(flags & 0b11),
            flaky: flags & FLAKY != 0,
            attempts,
            duration,
            message,
        })
    }
}

impl<'a> Iterator for Results<'a> {
    type Item = Result<StoredResult<'a>, Malformed>;

    fn next(&mut self) -> Option<Self::Item> {
        let result = if self.started {
            if self.reader.done() {
                return None;
            }
            self.next_result()
        } else {
            self.started = true;
            match self.reader.format(RESULTS_FORMAT) {
                Ok(()) if self.reader.done() => return None,
                Ok(()) => self.next_result(),
                Err(malformed) => Err(malformed),
            }
        };
        if result.is_err() {
            // Nothing after a malformed entry can be trusted.
            self.reader.at = self.reader.data.len();
        }
        Some(result)
    }
}

/// A test's track as a shard keeps it: its rolling state, the state it was last given, and
/// the run it was last in (so tests gone from a suite are let go with its runs).
#[derive(Debug, Clone, PartialEq)]
pub struct TrackEntry {
    pub id: i64,
    pub last_run: i64,
    pub state: State,
    pub flips: u64,
    pub track: Track,
    pub last_failure: Option<String>,
}

/// A shard of tracks, in id order.
pub fn encode_tracks(tracks: &[TrackEntry]) -> Vec<u8> {
    let mut buf = Vec::with_capacity(1 + tracks.len() * 64);
    buf.push(TRACKS_FORMAT);
    for entry in tracks {
        buf.extend_from_slice(&entry.id.to_le_bytes());
        push_varint(&mut buf, u64::try_from(entry.last_run).unwrap_or(0));
        buf.push(u8::try_from(entry.state.code()).unwrap_or(0));
        push_varint(&mut buf, entry.flips);
        let track = &entry.track;
        push_varint(&mut buf, track.runs);
        buf.push(track.last.map_or(NO_OUTCOME, outcome_code));
        push_varint(&mut buf, track.fail_streak);
        push_varint(&mut buf, track.recent.len() as u64);
        buf.extend(track.recent.iter().map(|&o| outcome_code(o)));
        push_varint(&mut buf, track.durations.len() as u64);
        for &seconds in &track.durations {
            // In microseconds: a varint of two or three bytes for most tests.
            push_varint(&mut buf, (f64::from(seconds) * 1e6).round() as u64);
        }
        match &entry.last_failure {
            Some(message) => {
                buf.push(1);
                push_text(&mut buf, message);
            }
            None => buf.push(0),
        }
    }
    buf
}

/// The tracks of a shard, in id order.
pub fn decode_tracks(data: &[u8]) -> Result<Vec<TrackEntry>, Malformed> {
    let mut reader = Reader::new(data, "shard of tracks", TRACKS_FORMAT)?;
    let mut tracks = Vec::new();
    while !reader.done() {
        let id = reader.id()?;
        let last_run = i64::try_from(reader.varint()?).map_err(|_| reader.malformed())?;
        let state = State::from_code(i64::from(reader.byte()?)).ok_or(reader.malformed())?;
        let flips = reader.varint()?;
        let runs = reader.varint()?;
        let last = match reader.byte()? {
            NO_OUTCOME => None,
            code => Some(outcome_of(code)),
        };
        let fail_streak = reader.varint()?;
        let recent_len = usize::try_from(reader.varint()?).map_err(|_| reader.malformed())?;
        // With room for the next run's, which the rules push before dropping the oldest.
        let mut recent = Vec::with_capacity(recent_len + 1);
        recent.extend(
            reader
                .bytes(recent_len)?
                .iter()
                .map(|&code| outcome_of(code)),
        );
        let durations_len = usize::try_from(reader.varint()?).map_err(|_| reader.malformed())?;
        // Bounded by the bytes left, so a corrupt length allocates nothing large.
        let mut durations =
            Vec::with_capacity(durations_len.min(reader.data.len() - reader.at) + 1);
        for _ in 0..durations_len {
            durations.push((reader.varint()? as f64 / 1e6) as f32);
        }
        let last_failure = match reader.byte()? {
            0 => None,
            _ => Some(reader.text()?.to_owned()),
        };
        tracks.push(TrackEntry {
            id,
            last_run,
            state,
            flips,
            track: Track {
                runs,
                last,
                fail_streak,
                recent,
                durations,
            },
            last_failure,
        });
    }
    Ok(tracks)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn case(name: &str, outcome: Outcome, message: Option<&str>) -> CaseResult {
        CaseResult {
            report_suite: "pytest".into(),
            classname: "c".into(),
            name: name.into(),
            outcome,
            attempts: 3,
            flaky: outcome == Outcome::Passed,
            duration: (outcome != Outcome::Skipped).then(|| Duration::from_micros(1_234_567)),
            message: message.map(str::to_owned),
            kind: None,
            started: None,
        }
    }

    #[test]
    fn results_round_trip_in_order() {
        let mut chunk = ResultsChunk::default();
        let cases = [
            case("a", Outcome::Passed, None),
            case("b", Outcome::Errored, Some("boom: ünïcode")),
            case("c", Outcome::Skipped, Some("")),
        ];
        for (id, case) in [-5, i64::MAX, 0].into_iter().zip(&cases) {
            chunk.push(&StoredResult::of(id, case));
        }
        assert_eq!(chunk.len(), 3);
        let blob = chunk.take();
        assert!(chunk.is_empty());
        let read: Vec<StoredResult<'_>> = results(&blob).collect::<Result<_, _>>().expect("ok");
        let expected = [
            StoredResult {
                id: -5,
                outcome: Outcome::Passed,
                flaky: true,
                attempts: 3,
                duration: Some(Duration::from_micros(1_234_567)),
                message: None,
            },
            StoredResult {
                id: i64::MAX,
                outcome: Outcome::Errored,
                flaky: false,
                attempts: 3,
                duration: Some(Duration::from_micros(1_234_567)),
                message: Some("boom: ünïcode"),
            },
            StoredResult {
                id: 0,
                outcome: Outcome::Skipped,
                flaky: false,
                attempts: 3,
                duration: None,
                message: Some(""),
            },
        ];
        assert_eq!(read, expected);
    }

    #[test]
    fn tracks_round_trip() {
        let tracks = vec![
            TrackEntry {
                id: 1,
                last_run: 7,
                state: State::Flaky,
                flips: 4,
                track: Track {
                    runs: 300,
                    last: Some(Outcome::Failed),
                    fail_streak: 2,
                    recent: vec![Outcome::Passed, Outcome::Failed, Outcome::Errored],
                    durations: vec![0.5, 1.25],
                },
                last_failure: Some("assert 1 == 2".into()),
            },
            TrackEntry {
                id: -1,
                last_run: 8,
                state: State::Passed,
                flips: 0,
                track: Track::default(),
                last_failure: None,
            },
        ];
        assert_eq!(decode_tracks(&encode_tracks(&tracks)), Ok(tracks));
    }

    #[test]
    fn a_truncated_or_foreign_blob_is_malformed_not_a_panic() {
        let mut chunk = ResultsChunk::default();
        let failed = case("a", Outcome::Failed, Some("long enough message"));
        chunk.push(&StoredResult::of(9, &failed));
        let blob = chunk.take();
        assert_eq!(results(&blob[..1]).count(), 0, "an empty chunk");
        for cut in 2..blob.len() {
            let read: Vec<_> = results(&blob[..cut]).collect();
            assert!(
                read.last().is_some_and(Result::is_err),
                "cut at {cut}: {read:?}"
            );
        }
        assert_eq!(
            results(&[9, 9]).collect::<Vec<_>>(),
            [Err(Malformed {
                what: "chunk of results",
                at: 0
            })]
        );
        let tracks = encode_tracks(&[TrackEntry {
            id: 1,
            last_run: 1,
            state: State::Passed,
            flips: 0,
            track: Track::default(),
            last_failure: Some("x".into()),
        }]);
        assert_eq!(
            decode_tracks(&tracks[..1]),
            Ok(Vec::new()),
            "an empty shard"
        );
        for cut in 2..tracks.len() {
            assert!(decode_tracks(&tracks[..cut]).is_err(), "cut at {cut}");
        }
        assert!(decode_tracks(&[]).is_err());
    }

    #[test]
    fn shards_follow_the_unsigned_id_order() {
        assert_eq!(shard_of(0), 0);
        assert_eq!(shard_of(i64::MAX), 127);
        assert_eq!(shard_of(-1), 255);
        assert!(id_order(i64::MAX) < id_order(i64::MIN));
        assert_eq!(group_of(-1), GROUPS - 1);
        assert_eq!(group_of(0x0fff_ffff_ffff_ffff), 0);
        assert_eq!(group_of_shard(shard_of(0x1000_0000_0000_0000)), 1);
    }
}
