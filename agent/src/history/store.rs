//! The history store: one SQLite file in WAL mode, its schema versioned with `user_version` and
//! migrated on open. A run's results are kept as compact chunks (`codec.rs`), written as the
//! report is read under a run row marked incomplete. Finishing the run classifies each test
//! against its track, rewrites the suite's tracks (kept in 256 shards by test id), and marks the
//! run whole, in one transaction: recording 100,000 cases writes a few blobs, not 100,000 rows.
//! Readers only see whole runs, and a run an agent was killed in the middle of is deleted on
//! the next open.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use rusqlite::{params, Connection, OpenFlags, OptionalExtension, TransactionBehavior};
use sha2::Digest;

use super::classify::{classify, Rules, State, Track};
use super::codec::{
    self, IdMap, IdSet, Malformed, ResultsChunk, StoredResult, TrackEntry, DUPLICATE,
};
use super::error::at;
pub use super::error::HistoryError;
use super::migrate;
use crate::model::{CaseResult, Outcome};

/// The schema this build writes; older stores are migrated on open.
pub const SCHEMA_VERSION: i64 = 2;

/// Bytes of a run's results buffered before they are written, a chunk per group.
const CHUNK_BYTES: usize = 256 << 10;

/// Bytes of new tests' names buffered before they are written: a suite's first run of a
/// million tests names them in a few sorted batches.
const NEW_TESTS_BYTES: usize = 8 << 20;

/// Cases of a run whose tests are looked up one by one before the suite's ids are read whole.
const ASK_TESTS: usize = 4096;

/// How long a writer waits for another process's write to finish.
const BUSY_TIMEOUT: Duration = Duration::from_secs(2);
/// The page cache of a writing connection, in KiB (SQLite's default is 2,000). Recording reads
/// and writes whole chunks and shards once per run, so a bigger cache buys no speed: a 100k or
/// 1M-case ingest takes as long with 128 KiB, and the daemon, which keeps its connection open
/// between runs, stays 0.5 MiB smaller through a soak (docs/performance.md).
const WRITER_CACHE_KIB: i64 = 128;

/// A run being recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunId(i64);

/// A run being recorded, with its results not yet written.
#[derive(Debug)]
pub struct Recording {
    run: RunId,
    suite: String,
    /// The ids of the suite's tests the store names, sorted (8 bytes a test), so only new
    /// ones are written (a test new and reported twice is written once: the insert ignores
    /// the second).
    known: Known,
    /// Each new test's id and where its classname and name are in `new_names`.
    new_tests: Vec<(i64, usize, usize, usize)>,
    new_names: String,
    /// Results not yet written, one chunk per group of shards.
    chunks: Vec<ResultsChunk>,
    buffered: usize,
    seq: i64,
}

impl Recording {
    pub fn run(&self) -> RunId {
        self.run
    }
}

/// What a recording knows of its suite's tests.
#[derive(Debug)]
enum Known {
    /// Looked up one by one so far, this many.
    Asking(usize),
    /// The suite's test ids, sorted (8 bytes a test).
    Read(Vec<i64>),
}

/// How long a suite's runs are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// The newest runs kept, the one being recorded included.
    pub keep_runs: usize,
    /// And none older than this.
    pub keep_for: Duration,
}

/// What is kept of a run beside its cases.
#[derive(Debug, Clone)]
pub struct RunEntry<'a> {
    pub suite: &'a str,
    pub system: &'a str,
    pub started: SystemTime,
    pub duration: Duration,
    /// `passed`, `failed`, `partial`, or why it did not run.
    pub result: &'a str,
    pub tests: u64,
    pub failed: u64,
    pub errored: u64,
    pub skipped: u64,
    pub flaky: u64,
    /// From the CI environment, when it names them.
    pub commit: Option<String>,
    pub branch: Option<String>,
}

/// A recorded run's verdicts: how many tests are in each state, and the tests of the states
/// worth a look (all but passed and skipped), at most `listed` of each.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunVerdicts {
    pub counts: BTreeMap<State, u64>,
    pub notable: Vec<TestVerdict>,
    /// Results of tests reported earlier in the same run: only the first is kept.
    pub duplicates: u64,
}

/// One test's verdict on a run.
#[derive(Debug, Clone, PartialEq)]
pub struct TestVerdict {
    pub classname: String,
    pub name: String,
    pub state: State,
    pub fail_streak: u64,
    pub message: Option<String>,
}

/// A recorded run, as `testmeter history` lists it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RunRow {
    pub id: i64,
    pub started_unix_ms: i64,
    pub duration_ms: i64,
    pub result: String,
    pub tests: i64,
    pub failed: i64,
    pub errored: i64,
    pub skipped: i64,
    pub flaky: i64,
    pub new_failures: i64,
    pub commit: Option<String>,
    pub branch: Option<String>,
}

/// A test's outcomes over recent runs, newest last.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Timeline {
    pub classname: String,
    pub name: String,
    /// (run id, outcome, state) per run it was in.
    pub runs: Vec<(i64, String, String)>,
}

/// A flaky test, as `testmeter flaky` lists it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct FlakyTest {
    pub suite: String,
    pub classname: String,
    pub name: String,
    /// Flips between passing and failing per run, over its recent runs.
    pub flip_rate: f64,
    pub runs: u64,
    pub last_failure: Option<String>,
}

/// A test worth a look in a suite's latest whole run, with its recent outcomes.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct NotableTest {
    pub classname: String,
    pub name: String,
    pub state: State,
    pub fail_streak: u64,
    /// Its message in the latest run, else the last failure's.
    pub message: Option<String>,
    /// Its outcome in each of the suite's recent runs, oldest first; `None` where it was not
    /// in the run.
    pub strip: Vec<Option<Outcome>>,
}

/// What a suite's page shows: its recent runs, newest first, and the tests of its latest run
/// that are not simply passing or skipped.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SuitePage {
    pub runs: Vec<RunRow>,
    pub tests: Vec<NotableTest>,
}

/// A quarantined test, as `testmeter quarantine list` shows it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct QuarantineRow {
    pub suite: String,
    pub classname: String,
    pub name: String,
    pub reason: String,
    pub until_unix_ms: i64,
}

/// A result of the run being finished.
struct Pending {
    id: i64,
    /// Its place among its group's results (by chunk, then within the chunk).
    index: usize,
    outcome: Outcome,
    flaky: bool,
    duration: Option<Duration>,
    /// Kept for failures and flaky passes only.
    message: Option<String>,
}

/// An open history store.
#[derive(Debug)]
pub struct Store {
    conn: Connection,
    path: PathBuf,
}

/// The stable id of a test: the first 8 bytes of SHA-256 over its suite, classname and name.
pub fn test_id(suite: &str, classname: &str, name: &str) -> i64 {
    let mut hash = sha2::Sha256::new();
    for part in [suite, classname, name] {
        hash.update(part.as_bytes());
        hash.update([0]);
    }
    let digest = hash.finalize();
    let mut bytes = [0; 8];
    bytes.copy_from_slice(&digest[..8]);
    i64::from_le_bytes(bytes)
}

fn unix_ms(time: SystemTime) -> i64 {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// Whether process `pid` is alive on this machine.
fn alive(pid: i64) -> bool {
    Path::new("/proc").join(pid.to_string()).exists()
}

/// Writes the names of the tests a run being recorded has that the store did not.
fn write_new_tests(conn: &Connection, recording: &mut Recording) -> rusqlite::Result<()> {
    let mut test = conn.prepare_cached(
        "INSERT OR IGNORE INTO tests (id, suite, classname, name) VALUES (?1, ?2, ?3, ?4)",
    )?;
    // In id order, many at a time: neighbours in the table's B-tree, not a page each.
    recording.new_tests.sort_unstable_by_key(|(id, ..)| *id);
    let names = &recording.new_names;
    for &(id, start, classname, name) in &recording.new_tests {
        let (classname, name) = names[start..start + classname + name].split_at(classname);
        test.execute(params![id, recording.suite, classname, name])?;
    }
    recording.new_tests.clear();
    recording.new_names.clear();
    Ok(())
}

/// Writes the results buffered of a run being recorded.
fn write_chunks(conn: &Connection, recording: &mut Recording) -> rusqlite::Result<()> {
    let mut insert = conn.prepare_cached(
        "INSERT INTO result_chunks (run, grp, seq, data) VALUES (?1, ?2, ?3, ?4)",
    )?;
    for (group, chunk) in recording.chunks.iter_mut().enumerate() {
        if !chunk.is_empty() {
            insert.execute(params![
                recording.run.0,
                group as u32,
                recording.seq,
                chunk.take()
            ])?;
            recording.seq += 1;
        }
    }
    recording.buffered = 0;
    Ok(())
}

/// Ends the suite's expired quarantines (saying so) and returns the tests still quarantined.
fn quarantines(conn: &Connection, suite: &str, now_ms: i64) -> rusqlite::Result<IdSet> {
    // From the quarantine side: it holds a few tests, a suite may hold 100,000.
    let mut expired = conn.prepare(
        "DELETE FROM quarantine
         WHERE until_ms <= ?2 AND (SELECT suite FROM tests WHERE id = quarantine.test) = ?1
         RETURNING (SELECT classname FROM tests WHERE id = test),
                   (SELECT name FROM tests WHERE id = test)",
    )?;
    let mut rows = expired.query(params![suite, now_ms])?;
    while let Some(row) = rows.next()? {
        let (classname, name): (String, String) = (row.get(0)?, row.get(1)?);
        tracing::info!(
            suite,
            classname,
            name,
            "quarantine expired; the test counts again"
        );
    }
    let mut active = conn.prepare(
        "SELECT test FROM quarantine WHERE (SELECT suite FROM tests WHERE id = quarantine.test) = ?1",
    )?;
    let ids = active.query_map([suite], |row| row.get(0))?;
    ids.collect()
}

/// Deletes the suite's whole runs past `retention` (counting `run`, being finished), and
/// returns the oldest run kept.
fn prune(
    conn: &Connection,
    suite: &str,
    run: i64,
    retention: Retention,
    now_ms: i64,
) -> rusqlite::Result<i64> {
    let oldest = now_ms - millis(retention.keep_for);
    let others = i64::try_from(retention.keep_runs.saturating_sub(1)).unwrap_or(i64::MAX);
    conn.execute(
        "DELETE FROM runs WHERE suite = ?1 AND complete = 1 AND (started_ms < ?2 OR id NOT IN
             (SELECT id FROM runs WHERE suite = ?1 AND complete = 1 ORDER BY id DESC LIMIT ?3))",
        params![suite, oldest, others],
    )?;
    conn.query_row(
        "SELECT coalesce(min(id), ?2) FROM runs WHERE suite = ?1 AND complete = 1",
        params![suite, run],
        |row| row.get(0),
    )
}

/// Each result of a run (or of one group of it), by group then chunk, to `each` with its
/// place in that order.
fn each_result(
    conn: &Connection,
    run: i64,
    group: Option<usize>,
    mut each: impl FnMut(usize, StoredResult<'_>),
) -> rusqlite::Result<Result<(), Malformed>> {
    let mut statement = conn.prepare_cached(
        "SELECT data FROM result_chunks WHERE run = ?1 AND (?2 IS NULL OR grp = ?2)
         ORDER BY grp, seq",
    )?;
    let group = group.map(|g| i64::try_from(g).unwrap_or(i64::MAX));
    let mut rows = statement.query(params![run, group])?;
    let mut index = 0;
    while let Some(row) = rows.next()? {
        for result in codec::results(row.get_ref(0)?.as_blob()?) {
            match result {
                Ok(result) => each(index, result),
                Err(malformed) => return Ok(Err(malformed)),
            }
            index += 1;
        }
    }
    Ok(Ok(()))
}

/// The results of one group of the run being finished, in the order written.
fn pending(
    conn: &Connection,
    run: i64,
    group: usize,
) -> rusqlite::Result<Result<Vec<Pending>, Malformed>> {
    let mut cases = Vec::new();
    let read = each_result(conn, run, Some(group), |index, result| {
        let keep_message = result.outcome.is_failure() || result.flaky;
        cases.push(Pending {
            id: result.id,
            index,
            outcome: result.outcome,
            flaky: result.flaky,
            duration: result.duration,
            message: result.message.filter(|_| keep_message).map(str::to_owned),
        });
    })?;
    Ok(read.map(|()| cases))
}

impl Store {
    /// Opens (creating it and its directory when missing) and migrates the store at `path`,
    /// and deletes the incomplete runs of writers that are gone.
    pub fn open(path: &Path) -> Result<Self, HistoryError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| HistoryError::Dir {
                path: path.to_path_buf(),
                source,
            })?;
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let sqlite = at(path);
        let conn = Connection::open_with_flags(path, flags).map_err(sqlite)?;
        let mut store = Store {
            conn,
            path: path.to_path_buf(),
        };
        store.setup().map_err(sqlite)?;
        store.migrate()?;
        store.sweep().map_err(sqlite)?;
        Ok(store)
    }

    /// Opens an existing store to read it; never creates one. A store of an older schema is
    /// migrated first (which needs it to be writable), as the agent would on its next run.
    pub fn open_read_only(path: &Path) -> Result<Self, HistoryError> {
        let sqlite = at(path);
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(sqlite)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(sqlite)?;
        let found: i64 = conn
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .map_err(sqlite)?;
        if found > SCHEMA_VERSION {
            return Err(HistoryError::Newer {
                path: path.to_path_buf(),
                found,
                knows: SCHEMA_VERSION,
            });
        }
        if found < SCHEMA_VERSION {
            drop(conn);
            drop(Store::open(path)?);
            return Store::open_read_only(path);
        }
        Ok(Store {
            conn,
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn error(&self, source: rusqlite::Error) -> HistoryError {
        at(&self.path)(source)
    }

    fn setup(&mut self) -> rusqlite::Result<()> {
        self.conn.busy_timeout(BUSY_TIMEOUT)?;
        let _mode: String =
            self.conn
                .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
        self.conn.pragma_update(None, "synchronous", "NORMAL")?;
        self.conn.pragma_update(None, "foreign_keys", "ON")?;
        self.conn
            .pragma_update(None, "cache_size", -WRITER_CACHE_KIB)?;
        Ok(())
    }

    /// Brings an older schema up to [`SCHEMA_VERSION`], one version at a time, each in its own
    /// transaction (which holds the write lock, so two agents opening one store at once
    /// migrate it once).
    fn migrate(&mut self) -> Result<(), HistoryError> {
        let sqlite = at(&self.path);
        let mut created = None;
        loop {
            let tx = self
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(sqlite)?;
            let found: i64 = tx
                .pragma_query_value(None, "user_version", |row| row.get(0))
                .map_err(sqlite)?;
            if found > SCHEMA_VERSION {
                return Err(HistoryError::Newer {
                    path: self.path.clone(),
                    found,
                    knows: SCHEMA_VERSION,
                });
            }
            if found == SCHEMA_VERSION {
                return Ok(());
            }
            let created = *created.get_or_insert(found == 0);
            let version = found + 1;
            migrate::step(&tx, &self.path, version)?;
            tx.pragma_update(None, "user_version", version)
                .map_err(sqlite)?;
            tx.commit().map_err(sqlite)?;
            if !created {
                tracing::info!(path = %self.path.display(), version, "history store migrated");
            }
        }
    }

    /// Deletes the incomplete runs whose writer is gone (an agent killed while recording).
    fn sweep(&mut self) -> rusqlite::Result<()> {
        let writers: Vec<(i64, i64)> = {
            let mut statement = self
                .conn
                .prepare("SELECT id, writer FROM runs WHERE complete = 0")?;
            let rows = statement.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        let own = i64::from(std::process::id());
        for (id, writer) in writers {
            if writer == own || !alive(writer) {
                self.conn.execute("DELETE FROM runs WHERE id = ?1", [id])?;
            }
        }
        Ok(())
    }

    /// Starts recording a run of `suite`: a run row no reader sees until it is finished.
    pub fn begin(
        &mut self,
        suite: &str,
        system: &str,
        started: SystemTime,
    ) -> Result<Recording, HistoryError> {
        let sqlite = at(&self.path);
        self.conn
            .execute(
                "INSERT INTO runs (suite, system, started_ms, writer) VALUES (?1, ?2, ?3, ?4)",
                params![
                    suite,
                    system,
                    unix_ms(started),
                    i64::from(std::process::id())
                ],
            )
            .map_err(sqlite)?;
        let run = RunId(self.conn.last_insert_rowid());
        Ok(Recording {
            run,
            suite: suite.to_owned(),
            known: Known::Asking(0),
            new_tests: Vec::new(),
            new_names: String::new(),
            chunks: (0..codec::GROUPS)
                .map(|_| ResultsChunk::default())
                .collect(),
            buffered: 0,
            seq: 0,
        })
    }

    /// Whether the store names test `id` of the recording's suite: asked one by one for the
    /// first cases of a run, then from the suite's ids, read once, so a run of a few tests
    /// does not read a suite's million.
    fn known(&self, recording: &mut Recording, id: i64) -> Result<bool, HistoryError> {
        let sqlite = at(&self.path);
        if let Known::Asking(asked) = recording.known {
            if asked < ASK_TESTS {
                recording.known = Known::Asking(asked + 1);
                let mut statement = self
                    .conn
                    .prepare_cached("SELECT 1 FROM tests WHERE id = ?1")
                    .map_err(sqlite)?;
                return statement.exists([id]).map_err(sqlite);
            }
            let mut statement = self
                .conn
                .prepare("SELECT id FROM tests WHERE suite = ?1 ORDER BY id")
                .map_err(sqlite)?;
            let ids = statement
                .query_map([&recording.suite], |row| row.get(0))
                .map_err(sqlite)?;
            let mut ids: Vec<i64> = ids.collect::<rusqlite::Result<_>>().map_err(sqlite)?;
            ids.shrink_to_fit();
            recording.known = Known::Read(ids);
        }
        match &recording.known {
            Known::Read(ids) => Ok(ids.binary_search(&id).is_ok()),
            Known::Asking(_) => Ok(false),
        }
    }

    /// Takes cases of a run being recorded; they are written a chunk at a time, each in one
    /// short transaction.
    pub fn add(
        &mut self,
        recording: &mut Recording,
        cases: &[CaseResult],
    ) -> Result<(), HistoryError> {
        for case in cases {
            let id = test_id(&recording.suite, &case.classname, &case.name);
            if !self.known(recording, id)? {
                let start = recording.new_names.len();
                recording.new_names.push_str(&case.classname);
                recording.new_names.push_str(&case.name);
                recording
                    .new_tests
                    .push((id, start, case.classname.len(), case.name.len()));
            }
            let chunk = &mut recording.chunks[codec::group_of(id)];
            let before = chunk.bytes();
            chunk.push(&StoredResult::of(id, case));
            recording.buffered += chunk.bytes() - before;
            let names =
                recording.new_names.len() + 32 * recording.new_tests.len() >= NEW_TESTS_BYTES;
            if recording.buffered >= CHUNK_BYTES || names {
                let sqlite = at(&self.path);
                let tx = self.conn.transaction().map_err(sqlite)?;
                write_chunks(&tx, recording).map_err(sqlite)?;
                if names {
                    write_new_tests(&tx, recording).map_err(sqlite)?;
                }
                tx.commit().map_err(sqlite)?;
            }
        }
        Ok(())
    }

    /// Forgets the cases taken so far for a run (its report is being read again).
    pub fn restart(&mut self, recording: &mut Recording) -> Result<(), HistoryError> {
        for chunk in &mut recording.chunks {
            chunk.take();
        }
        recording.buffered = 0;
        self.conn
            .execute(
                "DELETE FROM result_chunks WHERE run = ?1",
                [recording.run.0],
            )
            .map_err(|e| self.error(e))?;
        Ok(())
    }

    /// Drops a run being recorded (its report could not be read).
    pub fn abandon(&mut self, run: RunId) -> Result<(), HistoryError> {
        self.conn
            .execute("DELETE FROM runs WHERE id = ?1", [run.0])
            .map_err(|e| self.error(e))?;
        Ok(())
    }

    /// In one transaction: ends expired quarantines, deletes the suite's runs past
    /// `retention`, classifies every test of the run against its track, rewrites the suite's
    /// tracks (letting go of tests in none of the runs kept), writes the run's states and
    /// totals, and marks it whole.
    pub fn finish(
        &mut self,
        mut recording: Recording,
        entry: &RunEntry<'_>,
        rules: &Rules,
        listed: usize,
        retention: Retention,
        now: SystemTime,
    ) -> Result<RunVerdicts, HistoryError> {
        let path = self.path.clone();
        let sqlite = at(&path);
        let malformed = |source| HistoryError::Malformed {
            path: path.clone(),
            source,
        };
        let run = recording.run.0;
        let now_ms = unix_ms(now);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sqlite)?;
        write_chunks(&tx, &mut recording).map_err(sqlite)?;
        write_new_tests(&tx, &mut recording).map_err(sqlite)?;
        let quarantined = quarantines(&tx, entry.suite, now_ms).map_err(sqlite)?;
        let oldest_kept = prune(&tx, entry.suite, run, retention, now_ms).map_err(sqlite)?;
        // One byte per result, in the order of group, then chunk, as the readers read them.
        let mut states: Vec<u8> = Vec::new();
        let mut verdicts = RunVerdicts::default();
        let mut notable: Vec<(i64, TestVerdict)> = Vec::new();
        let mut gone: Vec<i64> = Vec::new();
        {
            let stored: BTreeSet<u8> = {
                let mut statement = tx
                    .prepare("SELECT shard FROM track_shards WHERE suite = ?1")
                    .map_err(sqlite)?;
                let shards = statement
                    .query_map([entry.suite], |row| row.get(0))
                    .map_err(sqlite)?;
                shards.collect::<rusqlite::Result<_>>().map_err(sqlite)?
            };
            let mut read = tx
                .prepare("SELECT data FROM track_shards WHERE suite = ?1 AND shard = ?2")
                .map_err(sqlite)?;
            let mut write = tx
                .prepare(
                    "INSERT OR REPLACE INTO track_shards (suite, shard, data) VALUES (?1, ?2, ?3)",
                )
                .map_err(sqlite)?;
            for group in 0..codec::GROUPS {
                let mut cases = pending(&tx, run, group)
                    .map_err(sqlite)?
                    .map_err(malformed)?;
                // A test reported twice keeps its first result.
                cases.sort_unstable_by_key(|case| (codec::id_order(case.id), case.index));
                let mut group_states = vec![DUPLICATE; cases.len()];
                // The shards this run has tests in, and, so a run of a few tests costs little
                // however many the suite has had, the other shards of one group in turn (tests
                // gone from a suite are let go within 16 runs of leaving those kept).
                let sweep = usize::try_from(run.rem_euclid(codec::GROUPS as i64)) == Ok(group);
                let shards: BTreeSet<u8> = stored
                    .iter()
                    .copied()
                    .filter(|&shard| sweep && codec::group_of_shard(shard) == group)
                    .chain(cases.iter().map(|case| codec::shard_of(case.id)))
                    .collect();
                let mut rest = &cases[..];
                for shard in shards {
                    let here = rest
                        .iter()
                        .take_while(|case| codec::shard_of(case.id) == shard)
                        .count();
                    let (mine, tail) = rest.split_at(here);
                    rest = tail;
                    let before = if stored.contains(&shard) {
                        let data: Vec<u8> = read
                            .query_row(params![entry.suite, shard], |row| row.get(0))
                            .map_err(sqlite)?;
                        codec::decode_tracks(&data).map_err(malformed)?
                    } else {
                        Vec::new()
                    };
                    let mut before = before.into_iter().peekable();
                    let mut after = Vec::with_capacity(before.len() + mine.len());
                    let mut keep = |track: TrackEntry, after: &mut Vec<TrackEntry>| {
                        if track.last_run >= oldest_kept || quarantined.contains(&track.id) {
                            after.push(track);
                        } else {
                            gone.push(track.id);
                        }
                    };
                    let mut cases = mine.iter().peekable();
                    while let Some(case) = cases.next() {
                        while let Some(track) =
                            before.next_if(|t| codec::id_order(t.id) < codec::id_order(case.id))
                        {
                            keep(track, &mut after);
                        }
                        let (track, last_failure) = before
                            .next_if(|t| t.id == case.id)
                            .map_or((Track::default(), None), |t| (t.track, t.last_failure));
                        while cases.next_if(|next| next.id == case.id).is_some() {
                            verdicts.duplicates += 1;
                        }
                        let verdict = classify(
                            rules,
                            track,
                            case.outcome,
                            case.flaky,
                            case.duration,
                            quarantined.contains(&case.id),
                        );
                        group_states[case.index] = u8::try_from(verdict.state.code()).unwrap_or(0);
                        let count = verdicts.counts.entry(verdict.state).or_default();
                        let shown = usize::try_from(*count).unwrap_or(usize::MAX);
                        *count += 1;
                        let worth_a_look = !matches!(verdict.state, State::Passed | State::Skipped);
                        if worth_a_look && shown < listed {
                            notable.push((
                                case.id,
                                TestVerdict {
                                    classname: String::new(),
                                    name: String::new(),
                                    state: verdict.state,
                                    fail_streak: verdict.fail_streak,
                                    message: case.message.clone(),
                                },
                            ));
                        }
                        let last_failure = if case.outcome.is_failure() {
                            case.message.clone()
                        } else {
                            last_failure
                        };
                        after.push(TrackEntry {
                            id: case.id,
                            last_run: run,
                            state: verdict.state,
                            flips: verdict.flips as u64,
                            track: verdict.track,
                            last_failure,
                        });
                    }
                    for track in before {
                        keep(track, &mut after);
                    }
                    if after.is_empty() {
                        tx.execute(
                            "DELETE FROM track_shards WHERE suite = ?1 AND shard = ?2",
                            params![entry.suite, shard],
                        )
                        .map_err(sqlite)?;
                    } else {
                        write
                            .execute(params![entry.suite, shard, codec::encode_tracks(&after)])
                            .map_err(sqlite)?;
                    }
                }
                states.extend_from_slice(&group_states);
            }
            let mut forget = tx
                .prepare("DELETE FROM tests WHERE id = ?1")
                .map_err(sqlite)?;
            for id in &gone {
                forget.execute([id]).map_err(sqlite)?;
            }
            let mut named = tx
                .prepare("SELECT classname, name FROM tests WHERE id = ?1")
                .map_err(sqlite)?;
            for (id, verdict) in &mut notable {
                if let Some((classname, name)) = named
                    .query_row([*id], |row| Ok((row.get(0)?, row.get(1)?)))
                    .optional()
                    .map_err(sqlite)?
                {
                    verdict.classname = classname;
                    verdict.name = name;
                }
            }
        }
        if !gone.is_empty() {
            tracing::debug!(
                suite = entry.suite,
                tests = gone.len(),
                "tests in none of the runs kept are let go"
            );
        }
        verdicts.notable = notable.into_iter().map(|(_, verdict)| verdict).collect();
        let new_failures = verdicts
            .counts
            .get(&State::NewFailure)
            .copied()
            .unwrap_or(0);
        let count = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        tx.execute(
            "UPDATE runs SET duration_ms = ?2, result = ?3, tests = ?4, failed = ?5, errored = ?6,
                 skipped = ?7, flaky = ?8, new_failures = ?9, commit_sha = ?10, branch = ?11,
                 started_ms = ?12, states = ?13, complete = 1
             WHERE id = ?1",
            params![
                run,
                millis(entry.duration),
                entry.result,
                count(entry.tests),
                count(entry.failed),
                count(entry.errored),
                count(entry.skipped),
                count(entry.flaky),
                count(new_failures),
                entry.commit,
                entry.branch,
                unix_ms(entry.started),
                states,
            ],
        )
        .map_err(sqlite)?;
        tx.commit().map_err(sqlite)?;
        Ok(verdicts)
    }

    /// A suite's newest `limit` whole runs, newest first.
    pub fn runs(&self, suite: &str, limit: usize) -> Result<Vec<RunRow>, HistoryError> {
        let query = || -> rusqlite::Result<Vec<RunRow>> {
            let mut statement = self.conn.prepare(
                "SELECT id, started_ms, duration_ms, result, tests, failed, errored, skipped, flaky,
                        new_failures, commit_sha, branch
                 FROM runs WHERE suite = ?1 AND complete = 1 ORDER BY id DESC LIMIT ?2",
            )?;
            let rows = statement.query_map(
                params![suite, i64::try_from(limit).unwrap_or(i64::MAX)],
                |row| {
                    Ok(RunRow {
                        id: row.get(0)?,
                        started_unix_ms: row.get(1)?,
                        duration_ms: row.get(2)?,
                        result: row.get(3)?,
                        tests: row.get(4)?,
                        failed: row.get(5)?,
                        errored: row.get(6)?,
                        skipped: row.get(7)?,
                        flaky: row.get(8)?,
                        new_failures: row.get(9)?,
                        commit: row.get(10)?,
                        branch: row.get(11)?,
                    })
                },
            )?;
            rows.collect()
        };
        query().map_err(|e| self.error(e))
    }

    /// The outcomes of a suite's tests whose `classname::name` contains `pattern`, over its
    /// newest `limit` whole runs, oldest first.
    pub fn timelines(
        &self,
        suite: &str,
        pattern: &str,
        limit: usize,
    ) -> Result<Vec<Timeline>, HistoryError> {
        let sqlite = at(&self.path);
        let mut timelines: Vec<Timeline> = Vec::new();
        let mut tests: IdMap<usize> = IdMap::default();
        {
            let mut statement = self
                .conn
                .prepare(
                    "SELECT id, classname, name FROM tests
                     WHERE suite = ?1 AND instr(classname || '::' || name, ?2) > 0
                     ORDER BY classname, name",
                )
                .map_err(sqlite)?;
            let mut rows = statement.query(params![suite, pattern]).map_err(sqlite)?;
            while let Some(row) = rows.next().map_err(sqlite)? {
                tests.insert(row.get(0).map_err(sqlite)?, timelines.len());
                timelines.push(Timeline {
                    classname: row.get(1).map_err(sqlite)?,
                    name: row.get(2).map_err(sqlite)?,
                    runs: Vec::new(),
                });
            }
        }
        if tests.is_empty() {
            return Ok(timelines);
        }
        for (run, states) in self.recent_runs(suite, limit)? {
            self.each_result(run, |index, result| {
                let state = states.get(index).copied().unwrap_or(DUPLICATE);
                if let (Some(&at), false) = (tests.get(&result.id), state == DUPLICATE) {
                    timelines[at].runs.push((
                        run,
                        result.outcome.as_str().to_owned(),
                        State::from_code(i64::from(state))
                            .map_or("", State::as_str)
                            .to_owned(),
                    ));
                }
            })?;
        }
        timelines.retain(|timeline| !timeline.runs.is_empty());
        Ok(timelines)
    }

    /// A suite's newest `limit` whole runs, oldest first, with the state of each result.
    fn recent_runs(&self, suite: &str, limit: usize) -> Result<Vec<(i64, Vec<u8>)>, HistoryError> {
        let query = || -> rusqlite::Result<Vec<(i64, Vec<u8>)>> {
            let mut statement = self.conn.prepare_cached(
                "SELECT id, coalesce(states, x'') FROM runs WHERE suite = ?1 AND complete = 1
                 ORDER BY id DESC LIMIT ?2",
            )?;
            let rows = statement.query_map(
                params![suite, i64::try_from(limit).unwrap_or(i64::MAX)],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )?;
            let mut runs: Vec<(i64, Vec<u8>)> = rows.collect::<rusqlite::Result<_>>()?;
            runs.reverse();
            Ok(runs)
        };
        query().map_err(|e| self.error(e))
    }

    fn each_result(
        &self,
        run: i64,
        each: impl FnMut(usize, StoredResult<'_>),
    ) -> Result<(), HistoryError> {
        each_result(&self.conn, run, None, each)
            .map_err(|e| self.error(e))?
            .map_err(|source| HistoryError::Malformed {
                path: self.path.clone(),
                source,
            })
    }

    /// The tracks of a suite's tests, or of every suite's, with their suite; of the shards in
    /// `only`, when it is given (the others are not read).
    fn tracks(
        &self,
        suite: Option<&str>,
        only: Option<&BTreeSet<u8>>,
        mut each: impl FnMut(&str, TrackEntry),
    ) -> Result<(), HistoryError> {
        let sqlite = at(&self.path);
        let mut statement = self
            .conn
            .prepare("SELECT suite, shard, data FROM track_shards WHERE ?1 IS NULL OR suite = ?1")
            .map_err(sqlite)?;
        let mut rows = statement.query([suite]).map_err(sqlite)?;
        while let Some(row) = rows.next().map_err(sqlite)? {
            let shard: u8 = row.get(1).map_err(sqlite)?;
            if only.is_some_and(|only| !only.contains(&shard)) {
                continue;
            }
            let suite: String = row.get(0).map_err(sqlite)?;
            let data = row
                .get_ref(2)
                .and_then(|v| Ok(v.as_blob()?))
                .map_err(sqlite)?;
            let tracks = codec::decode_tracks(data).map_err(|source| HistoryError::Malformed {
                path: self.path.clone(),
                source,
            })?;
            for track in tracks {
                each(&suite, track);
            }
        }
        Ok(())
    }

    /// The suite, classname and name of a test.
    fn name_of(&self, id: i64) -> Result<Option<(String, String, String)>, HistoryError> {
        self.conn
            .prepare_cached("SELECT suite, classname, name FROM tests WHERE id = ?1")
            .and_then(|mut statement| {
                statement
                    .query_row([id], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
                    .optional()
            })
            .map_err(|e| self.error(e))
    }

    /// Tests whose latest state is flaky, most flips first.
    pub fn flaky(&self, suite: Option<&str>) -> Result<Vec<FlakyTest>, HistoryError> {
        let mut flaky: Vec<(i64, u64, FlakyTest)> = Vec::new();
        self.tracks(suite, None, |suite, track| {
            if track.state != State::Flaky {
                return;
            }
            let window = track.track.recent.len();
            flaky.push((
                track.id,
                track.flips,
                FlakyTest {
                    suite: suite.to_owned(),
                    classname: String::new(),
                    name: String::new(),
                    flip_rate: if window > 1 {
                        track.flips as f64 / (window - 1) as f64
                    } else {
                        0.0
                    },
                    runs: track.track.runs,
                    last_failure: track.last_failure,
                },
            ));
        })?;
        for (id, _, test) in &mut flaky {
            if let Some((_, classname, name)) = self.name_of(*id)? {
                test.classname = classname;
                test.name = name;
            }
        }
        flaky.sort_by(|(_, a_flips, a), (_, b_flips, b)| {
            b_flips.cmp(a_flips).then_with(|| {
                (&a.suite, &a.classname, &a.name).cmp(&(&b.suite, &b.classname, &b.name))
            })
        });
        Ok(flaky.into_iter().map(|(_, _, test)| test).collect())
    }

    /// The recorded tests of `suite` whose `classname::name`, or name, is `test`.
    fn tests_named(&self, suite: &str, test: &str) -> Result<Vec<i64>, HistoryError> {
        let query = || -> rusqlite::Result<Vec<i64>> {
            let mut statement = self.conn.prepare(
                "SELECT id FROM tests WHERE suite = ?1
                     AND (classname || '::' || name = ?2 OR (classname = '' AND name = ?2))",
            )?;
            let rows = statement.query_map(params![suite, test], |row| row.get(0))?;
            rows.collect()
        };
        query().map_err(|e| self.error(e))
    }

    /// Quarantines the recorded test of `suite` named `test` (`classname::name`, as `history`
    /// lists it) until `until`. Returns how many tests matched: 0 when none is recorded.
    pub fn quarantine(
        &mut self,
        suite: &str,
        test: &str,
        reason: &str,
        until: SystemTime,
    ) -> Result<usize, HistoryError> {
        let ids = self.tests_named(suite, test)?;
        for id in &ids {
            self.conn
                .execute(
                    "INSERT OR REPLACE INTO quarantine (test, reason, until_ms) VALUES (?1, ?2, ?3)",
                    params![id, reason, unix_ms(until)],
                )
                .map_err(|e| self.error(e))?;
        }
        Ok(ids.len())
    }

    /// Ends the quarantine of the test of `suite` named `test`. Returns how many ended.
    pub fn release(&mut self, suite: &str, test: &str) -> Result<usize, HistoryError> {
        let mut released = 0;
        for id in self.tests_named(suite, test)? {
            released += self
                .conn
                .execute("DELETE FROM quarantine WHERE test = ?1", [id])
                .map_err(|e| self.error(e))?;
        }
        Ok(released)
    }

    /// The quarantined tests, of one suite or all, soonest to expire first.
    pub fn quarantined(&self, suite: Option<&str>) -> Result<Vec<QuarantineRow>, HistoryError> {
        let query = || -> rusqlite::Result<Vec<QuarantineRow>> {
            let mut statement = self.conn.prepare(
                "SELECT t.suite, t.classname, t.name, q.reason, q.until_ms
                 FROM quarantine q JOIN tests t ON t.id = q.test
                 WHERE ?1 IS NULL OR t.suite = ?1
                 ORDER BY q.until_ms, t.suite, t.classname, t.name",
            )?;
            let rows = statement.query_map(params![suite], |row| {
                Ok(QuarantineRow {
                    suite: row.get(0)?,
                    classname: row.get(1)?,
                    name: row.get(2)?,
                    reason: row.get(3)?,
                    until_unix_ms: row.get(4)?,
                })
            })?;
            rows.collect()
        };
        query().map_err(|e| self.error(e))
    }

    /// A suite's newest `runs` whole runs and the notable tests of the latest, at most `listed`
    /// of each state, with each one's outcomes over those runs.
    pub fn suite_page(
        &self,
        suite: &str,
        runs: usize,
        listed: usize,
    ) -> Result<SuitePage, HistoryError> {
        let rows = self.runs(suite, runs)?;
        let recent = self.recent_runs(suite, runs)?;
        let Some((latest, states)) = recent.last() else {
            return Ok(SuitePage::default());
        };
        // The latest run's tests worth a look, by state then name.
        let mut found: Vec<(State, String, String, i64, Option<String>)> = Vec::new();
        let mut ids: Vec<(i64, State, Option<String>)> = Vec::new();
        self.each_result(*latest, |index, result| {
            let state = states
                .get(index)
                .and_then(|&code| State::from_code(i64::from(code)));
            if let Some(state) = state.filter(|s| !matches!(s, State::Passed | State::Skipped)) {
                ids.push((result.id, state, result.message.map(str::to_owned)));
            }
        })?;
        for (id, state, message) in ids {
            if let Some((_, classname, name)) = self.name_of(id)? {
                found.push((state, classname, name, id, message));
            }
        }
        found.sort_by(|a, b| (a.0, &a.1, &a.2).cmp(&(b.0, &b.1, &b.2)));
        let mut shown: BTreeMap<State, usize> = BTreeMap::new();
        found.retain(|(state, ..)| {
            let shown = shown.entry(*state).or_default();
            *shown += 1;
            *shown <= listed
        });
        let chosen: IdMap<usize> = found
            .iter()
            .enumerate()
            .map(|(at, (.., id, _))| (*id, at))
            .collect();
        let mut tracks: IdMap<TrackEntry> = IdMap::default();
        if !chosen.is_empty() {
            let shards: BTreeSet<u8> = chosen.keys().map(|&id| codec::shard_of(id)).collect();
            self.tracks(Some(suite), Some(&shards), |_, track| {
                if chosen.contains_key(&track.id) {
                    tracks.insert(track.id, track);
                }
            })?;
        }
        let mut strips: Vec<Vec<Option<Outcome>>> = vec![vec![None; recent.len()]; found.len()];
        for (column, (run, _)) in recent.iter().enumerate() {
            self.each_result(*run, |_, result| {
                if let Some(&at) = chosen.get(&result.id) {
                    strips[at][column].get_or_insert(result.outcome);
                }
            })?;
        }
        let tests = found
            .into_iter()
            .zip(strips)
            .map(|((state, classname, name, id, message), strip)| {
                let track = tracks.get(&id);
                NotableTest {
                    classname,
                    name,
                    state,
                    fail_streak: track.map_or(0, |t| t.track.fail_streak),
                    message: message.or_else(|| track.and_then(|t| t.last_failure.clone())),
                    strip,
                }
            })
            .collect();
        Ok(SuitePage { runs: rows, tests })
    }

    /// The schema version of the open store.
    pub fn version(&self) -> Result<i64, HistoryError> {
        self.conn
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .optional()
            .map(Option::unwrap_or_default)
            .map_err(|e| self.error(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULES: Rules = Rules {
        flaky_window: 10,
        flaky_flips: 3,
        min_runs: 3,
        slower_window: 2,
        slower_share: 0.5,
        slower_min: Duration::from_millis(100),
    };

    fn case(name: &str, outcome: Outcome) -> CaseResult {
        CaseResult::of_test(name, outcome, 10)
    }

    fn entry(tests: u64) -> RunEntry<'static> {
        RunEntry {
            suite: "s",
            system: "x",
            started: SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000),
            duration: Duration::from_secs(2),
            result: "failed",
            tests,
            failed: 0,
            errored: 0,
            skipped: 0,
            flaky: 0,
            commit: Some("abc".into()),
            branch: None,
        }
    }

    const KEEP: Retention = Retention {
        keep_runs: 100,
        keep_for: Duration::from_secs(3600),
    };

    fn record_kept(store: &mut Store, cases: &[CaseResult], retention: Retention) -> RunVerdicts {
        let mut recording = store.begin("s", "x", SystemTime::now()).expect("begin");
        store.add(&mut recording, cases).expect("add");
        store
            .finish(
                recording,
                &entry(cases.len() as u64),
                &RULES,
                10,
                retention,
                SystemTime::now(),
            )
            .expect("finish")
    }

    fn record(store: &mut Store, cases: &[CaseResult]) -> RunVerdicts {
        record_kept(store, cases, KEEP)
    }

    #[test]
    fn runs_are_classified_against_the_previous_ones_and_kept_within_retention() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut store = Store::open(&dir.path().join("h.db")).expect("open");
        let first = record(
            &mut store,
            &[case("a", Outcome::Passed), case("b", Outcome::Passed)],
        );
        assert_eq!(first.counts, [(State::Passed, 2)].into());
        let second = record(
            &mut store,
            &[case("a", Outcome::Failed), case("b", Outcome::Passed)],
        );
        assert_eq!(
            second.counts,
            [(State::NewFailure, 1), (State::Passed, 1)].into()
        );
        assert_eq!(second.notable[0].name, "a");
        assert_eq!(second.notable[0].message.as_deref(), Some("a broke"));
        let third = record(
            &mut store,
            &[case("a", Outcome::Failed), case("a", Outcome::Passed)],
        );
        assert_eq!(
            third.counts,
            [(State::Failing, 1)].into(),
            "a duplicate keeps the first"
        );
        assert_eq!(third.duplicates, 1);
        assert_eq!(third.notable[0].fail_streak, 2);

        let runs = store.runs("s", 10).expect("runs");
        assert_eq!(runs.len(), 3);
        assert_eq!(runs[0].new_failures, 0);
        assert_eq!(runs[1].new_failures, 1);
        assert_eq!(runs[0].commit.as_deref(), Some("abc"));
        assert_eq!(runs[0].started_unix_ms, 1_800_000_000_000);

        // Three runs kept of four: the first goes, and with it `b`, in none of those kept.
        let fourth = record_kept(
            &mut store,
            &[case("a", Outcome::Failed)],
            Retention {
                keep_runs: 3,
                keep_for: Duration::from_secs(3600),
            },
        );
        assert_eq!(fourth.counts, [(State::Failing, 1)].into());
        assert_eq!(store.runs("s", 10).expect("runs").len(), 3);
        let timeline = store.timelines("s", "test_x::a", 10).expect("timeline");
        let states: Vec<&str> = timeline[0].runs.iter().map(|r| r.2.as_str()).collect();
        assert_eq!(states, ["new_failure", "failing", "failing"]);
        let outcomes: Vec<&str> = timeline[0].runs.iter().map(|r| r.1.as_str()).collect();
        assert_eq!(
            outcomes,
            ["failed", "failed", "failed"],
            "the first of a's results in run 3"
        );
        assert_eq!(store.timelines("s", "::b", 10).expect("b").len(), 1);
        // Each run sweeps one group of the shards it has no test in: within 16 runs, b's.
        for _ in 0..codec::GROUPS {
            record_kept(
                &mut store,
                &[case("a", Outcome::Failed)],
                Retention {
                    keep_runs: 1,
                    keep_for: Duration::from_secs(3600),
                },
            );
        }
        assert!(store.timelines("s", "::b", 10).expect("b").is_empty());
        let names: i64 = store
            .conn
            .query_row("SELECT count(*) FROM tests", [], |r| r.get(0))
            .expect("count");
        assert_eq!(names, 1, "b is let go with the runs it was in");
    }

    #[test]
    fn a_quarantined_failure_is_apart_until_its_quarantine_expires() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut store = Store::open(&dir.path().join("h.db")).expect("open");
        record(&mut store, &[case("a", Outcome::Passed)]);
        let until = SystemTime::now() + Duration::from_secs(3600);
        assert_eq!(
            store
                .quarantine("s", "tests.test_x::a", "known", until)
                .expect("add"),
            1
        );
        assert_eq!(
            store.quarantine("s", "nope", "known", until).expect("add"),
            0
        );
        let quarantined = record(&mut store, &[case("a", Outcome::Failed)]);
        assert_eq!(quarantined.counts, [(State::Quarantined, 1)].into());
        assert_eq!(store.quarantined(Some("s")).expect("list").len(), 1);
        // Expired: the next run ends it and the failure counts again.
        let past = SystemTime::now() - Duration::from_secs(1);
        store
            .quarantine("s", "tests.test_x::a", "known", past)
            .expect("add");
        let counted = record(&mut store, &[case("a", Outcome::Failed)]);
        assert_eq!(counted.counts, [(State::Failing, 1)].into());
        assert!(store.quarantined(None).expect("list").is_empty());
    }

    #[test]
    fn a_newer_schema_is_refused_and_a_dead_writers_run_is_swept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("h.db");
        {
            let mut store = Store::open(&path).expect("open");
            record(&mut store, &[case("a", Outcome::Passed)]);
            // A run left unfinished by a writer that is gone.
            store
                .conn
                .execute(
                    "INSERT INTO runs (suite, system, started_ms, writer) VALUES ('s', 'x', 0, ?1)",
                    [i64::from(i32::MAX)],
                )
                .expect("insert");
        }
        let store = Store::open(&path).expect("reopen");
        let left: i64 = store
            .conn
            .query_row("SELECT count(*) FROM runs WHERE complete = 0", [], |r| {
                r.get(0)
            })
            .expect("count");
        assert_eq!(left, 0);
        assert_eq!(store.version().expect("version"), SCHEMA_VERSION);
        store
            .conn
            .pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .expect("bump");
        drop(store);
        let error = Store::open(&path).expect_err("newer schema");
        assert_eq!(error.reason(), "schema");
        assert!(
            error.to_string().contains("written by a newer testmeter"),
            "{error}"
        );
    }

    #[test]
    fn test_ids_are_stable() {
        // Fixed forever: stores written by earlier builds key their tests by it.
        assert_eq!(
            test_id("s", "tests.test_x", "a"),
            test_id("s", "tests.test_x", "a")
        );
        assert_ne!(test_id("s", "a", "b"), test_id("s", "ab", ""));
        assert_eq!(test_id("", "", ""), 4_729_491_563_061_747_312);
    }
}
