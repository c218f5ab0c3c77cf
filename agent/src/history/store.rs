//! The history store: one SQLite file in WAL mode, its schema versioned with `user_version` and
//! migrated on open. A run is written in two steps so runs of different suites can be read at
//! the same time: its cases as they are read, into a run row marked incomplete, and then, in
//! one transaction, its verdicts and totals and the mark that makes it whole. Readers only see
//! whole runs, and a run an agent was killed in the middle of is deleted on the next open.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use rusqlite::{params, Connection, OpenFlags, OptionalExtension};
use sha2::Digest;

use super::classify::{classify, Rules, State, Track};
use crate::model::{CaseResult, Outcome};

/// The schema this build writes; older stores are migrated on open.
pub const SCHEMA_VERSION: i64 = 1;

/// Results classified at a time when a run is finished.
const CHUNK: i64 = 4096;

/// How long a writer waits for another process's write to finish.
const BUSY_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("history store {path}: {source}")]
    Sqlite {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("history store {path}: cannot create its directory: {source}")]
    Dir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("history store {path}: written by a newer testmeter (schema {found}, this one knows up to {SCHEMA_VERSION})")]
    Newer { path: PathBuf, found: i64 },
}

impl HistoryError {
    /// Low-cardinality reason for `testmeter_history_errors_total{reason}`.
    pub fn reason(&self) -> &'static str {
        match self {
            HistoryError::Dir { .. } => "open",
            HistoryError::Newer { .. } => "schema",
            HistoryError::Sqlite { source, .. } => match source.sqlite_error_code() {
                Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => {
                    "locked"
                }
                Some(rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase) => {
                    "corrupt"
                }
                Some(rusqlite::ErrorCode::ReadOnly) => "read_only",
                Some(rusqlite::ErrorCode::DiskFull) => "disk_full",
                Some(rusqlite::ErrorCode::CannotOpen) => "open",
                _ => "other",
            },
        }
    }
}

/// A run being recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunId(i64);

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

/// A result of the run being finished, with what the rules need of its test.
struct Pending {
    test: i64,
    outcome: Outcome,
    flaky: bool,
    duration: Option<Duration>,
    message: Option<String>,
    classname: String,
    name: String,
    before: Track,
    quarantined: bool,
}

impl Pending {
    fn of(row: &rusqlite::Row<'_>, now_ms: i64) -> rusqlite::Result<Self> {
        let count = |n: Option<i64>| n.map_or(0, |n| u64::try_from(n).unwrap_or(0));
        Ok(Pending {
            test: row.get(0)?,
            outcome: outcome_of(row.get(1)?),
            flaky: row.get(2)?,
            duration: row
                .get::<_, Option<i64>>(3)?
                .and_then(|us| u64::try_from(us).ok())
                .map(Duration::from_micros),
            message: row.get(4)?,
            classname: row.get(5)?,
            name: row.get(6)?,
            before: Track {
                runs: count(row.get(7)?),
                last: row.get::<_, Option<i64>>(8)?.map(outcome_of),
                fail_streak: count(row.get(9)?),
                recent: row
                    .get::<_, Option<Vec<u8>>>(10)?
                    .unwrap_or_default()
                    .into_iter()
                    .map(|b| outcome_of(i64::from(b)))
                    .collect(),
                durations: row
                    .get::<_, Option<Vec<u8>>>(11)?
                    .unwrap_or_default()
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect(),
            },
            quarantined: row
                .get::<_, Option<i64>>(12)?
                .is_some_and(|until| until > now_ms),
        })
    }
}

/// An open history store.
#[derive(Debug)]
pub struct Store {
    conn: Connection,
    path: PathBuf,
}

const SCHEMA_V1: &str = "
CREATE TABLE runs (
    id INTEGER PRIMARY KEY,
    suite TEXT NOT NULL,
    system TEXT NOT NULL,
    started_ms INTEGER NOT NULL,
    duration_ms INTEGER NOT NULL DEFAULT 0,
    result TEXT NOT NULL DEFAULT '',
    tests INTEGER NOT NULL DEFAULT 0,
    failed INTEGER NOT NULL DEFAULT 0,
    errored INTEGER NOT NULL DEFAULT 0,
    skipped INTEGER NOT NULL DEFAULT 0,
    flaky INTEGER NOT NULL DEFAULT 0,
    new_failures INTEGER NOT NULL DEFAULT 0,
    commit_sha TEXT,
    branch TEXT,
    -- 0 while its cases are being written, by the process `writer`.
    complete INTEGER NOT NULL DEFAULT 0,
    writer INTEGER NOT NULL
);
CREATE INDEX runs_by_suite ON runs(suite, complete, id);
CREATE TABLE tests (
    id INTEGER PRIMARY KEY,
    suite TEXT NOT NULL,
    classname TEXT NOT NULL,
    name TEXT NOT NULL
);
CREATE INDEX tests_by_suite ON tests(suite);
CREATE TABLE results (
    run INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    test INTEGER NOT NULL REFERENCES tests(id),
    outcome INTEGER NOT NULL,
    attempts INTEGER NOT NULL,
    flaky INTEGER NOT NULL,
    duration_us INTEGER,
    message TEXT,
    state INTEGER,
    PRIMARY KEY (run, test)
) WITHOUT ROWID;
CREATE INDEX results_by_test ON results(test, run);
-- Each test's rolling state after its last whole run: what the rules need, without its past.
CREATE TABLE tracks (
    test INTEGER PRIMARY KEY REFERENCES tests(id),
    runs INTEGER NOT NULL,
    last_outcome INTEGER,
    fail_streak INTEGER NOT NULL,
    recent BLOB NOT NULL,
    durations BLOB NOT NULL,
    state INTEGER NOT NULL,
    flips INTEGER NOT NULL,
    last_failure TEXT
);
CREATE TABLE quarantine (
    test INTEGER PRIMARY KEY REFERENCES tests(id),
    reason TEXT NOT NULL,
    until_ms INTEGER NOT NULL
);
";

/// What turns a SQLite error into one that names the store at `path`.
fn at(path: &Path) -> impl Fn(rusqlite::Error) -> HistoryError + Copy + '_ {
    move |source| HistoryError::Sqlite {
        path: path.to_path_buf(),
        source,
    }
}

fn outcome_code(outcome: Outcome) -> i64 {
    match outcome {
        Outcome::Passed => 0,
        Outcome::Failed => 1,
        Outcome::Errored => 2,
        Outcome::Skipped => 3,
    }
}

fn outcome_of(code: i64) -> Outcome {
    match code {
        1 => Outcome::Failed,
        2 => Outcome::Errored,
        3 => Outcome::Skipped,
        _ => Outcome::Passed,
    }
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

    /// Opens an existing store to read it; never creates or migrates one.
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
            });
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
        Ok(())
    }

    /// Brings an older schema up to [`SCHEMA_VERSION`], one version at a time, each in its own
    /// transaction.
    fn migrate(&mut self) -> Result<(), HistoryError> {
        let found: i64 = self
            .conn
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .map_err(|e| self.error(e))?;
        if found > SCHEMA_VERSION {
            return Err(HistoryError::Newer {
                path: self.path.clone(),
                found,
            });
        }
        for version in found + 1..=SCHEMA_VERSION {
            let step = match version {
                1 => SCHEMA_V1,
                _ => unreachable!("a migration for every version up to SCHEMA_VERSION"),
            };
            let sqlite = at(&self.path);
            let tx = self.conn.transaction().map_err(sqlite)?;
            tx.execute_batch(step).map_err(sqlite)?;
            tx.pragma_update(None, "user_version", version)
                .map_err(sqlite)?;
            tx.commit().map_err(sqlite)?;
            tracing::info!(path = %self.path.display(), version, "history store migrated");
        }
        Ok(())
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
    ) -> Result<RunId, HistoryError> {
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
            .map_err(|e| self.error(e))?;
        Ok(RunId(self.conn.last_insert_rowid()))
    }

    /// Writes cases of a run being recorded, in one short transaction. A test reported twice in
    /// one run keeps its first result.
    pub fn add(
        &mut self,
        run: RunId,
        suite: &str,
        cases: &[CaseResult],
    ) -> Result<u64, HistoryError> {
        let sqlite = at(&self.path);
        let tx = self.conn.transaction().map_err(sqlite)?;
        let mut duplicates = 0;
        {
            let mut test = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO tests (id, suite, classname, name) VALUES (?1, ?2, ?3, ?4)",
                )
                .map_err(sqlite)?;
            let mut result = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO results (run, test, outcome, attempts, flaky, duration_us, message)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )
                .map_err(sqlite)?;
            for case in cases {
                let id = test_id(suite, &case.classname, &case.name);
                test.execute(params![id, suite, case.classname, case.name])
                    .map_err(sqlite)?;
                let written = result
                    .execute(params![
                        run.0,
                        id,
                        outcome_code(case.outcome),
                        case.attempts,
                        case.flaky,
                        case.duration
                            .map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX)),
                        case.message,
                    ])
                    .map_err(sqlite)?;
                duplicates += u64::from(written == 0);
            }
        }
        tx.commit().map_err(sqlite)?;
        Ok(duplicates)
    }

    /// Forgets the cases written so far for a run (its report is being read again).
    pub fn restart(&mut self, run: RunId) -> Result<(), HistoryError> {
        self.conn
            .execute("DELETE FROM results WHERE run = ?1", [run.0])
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

    /// Classifies every test of the run, writes the verdicts, the tests' tracks and the run's
    /// totals, and marks the run whole: one transaction. Then deletes runs past retention.
    pub fn finish(
        &mut self,
        run: RunId,
        entry: &RunEntry<'_>,
        rules: &Rules,
        listed: usize,
        now: SystemTime,
    ) -> Result<RunVerdicts, HistoryError> {
        let sqlite = at(&self.path);
        let tx = self.conn.transaction().map_err(sqlite)?;
        let expired: Vec<(String, String)> = {
            let mut statement = tx
                .prepare(
                    "DELETE FROM quarantine WHERE until_ms <= ?2 AND test IN
                         (SELECT id FROM tests WHERE suite = ?1)
                     RETURNING (SELECT classname FROM tests WHERE id = test),
                               (SELECT name FROM tests WHERE id = test)",
                )
                .map_err(sqlite)?;
            let rows = statement
                .query_map(params![entry.suite, unix_ms(now)], |row| {
                    Ok((row.get(0)?, row.get(1)?))
                })
                .map_err(sqlite)?;
            rows.collect::<rusqlite::Result<_>>().map_err(sqlite)?
        };
        for (classname, name) in &expired {
            tracing::info!(
                suite = entry.suite,
                classname,
                name,
                "quarantine expired; the test counts again"
            );
        }
        let mut verdicts = RunVerdicts::default();
        {
            let mut cases = tx
                .prepare(
                    "SELECT r.test, r.outcome, r.flaky, r.duration_us, r.message,
                            t.classname, t.name,
                            k.runs, k.last_outcome, k.fail_streak, k.recent, k.durations,
                            q.until_ms
                     FROM results r
                     JOIN tests t ON t.id = r.test
                     LEFT JOIN tracks k ON k.test = r.test
                     LEFT JOIN quarantine q ON q.test = r.test
                     WHERE r.run = ?1 AND (?2 IS NULL OR r.test > ?2)
                     ORDER BY r.test
                     LIMIT ?3",
                )
                .map_err(sqlite)?;
            let mut state = tx
                .prepare_cached("UPDATE results SET state = ?3 WHERE run = ?1 AND test = ?2")
                .map_err(sqlite)?;
            let mut track = tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO tracks
                     (test, runs, last_outcome, fail_streak, recent, durations, state, flips, last_failure)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8,
                             COALESCE(?9, (SELECT last_failure FROM tracks WHERE test = ?1)))",
                )
                .map_err(sqlite)?;
            let now_ms = unix_ms(now);
            // In chunks, each read whole before it is written: the writes never touch rows a
            // read is stepping over, and memory stays bounded whatever the run's size.
            let mut after: Option<i64> = None;
            loop {
                let chunk: Vec<Pending> = cases
                    .query_map(params![run.0, after, CHUNK], |row| Pending::of(row, now_ms))
                    .map_err(sqlite)?
                    .collect::<rusqlite::Result<_>>()
                    .map_err(sqlite)?;
                let Some(last) = chunk.last() else {
                    break;
                };
                after = Some(last.test);
                for case in chunk {
                    let verdict = classify(
                        rules,
                        &case.before,
                        case.outcome,
                        case.flaky,
                        case.duration,
                        case.quarantined,
                    );
                    state
                        .execute(params![run.0, case.test, verdict.state.code()])
                        .map_err(sqlite)?;
                    let recent: Vec<u8> = verdict
                        .track
                        .recent
                        .iter()
                        .map(|&o| u8::try_from(outcome_code(o)).unwrap_or(0))
                        .collect();
                    let durations: Vec<u8> = verdict
                        .track
                        .durations
                        .iter()
                        .flat_map(|d| d.to_le_bytes())
                        .collect();
                    track
                        .execute(params![
                            case.test,
                            i64::try_from(verdict.track.runs).unwrap_or(i64::MAX),
                            verdict.track.last.map(outcome_code),
                            i64::try_from(verdict.fail_streak).unwrap_or(i64::MAX),
                            recent,
                            durations,
                            verdict.state.code(),
                            i64::try_from(verdict.flips).unwrap_or(i64::MAX),
                            if case.outcome.is_failure() {
                                case.message.clone()
                            } else {
                                None
                            },
                        ])
                        .map_err(sqlite)?;
                    *verdicts.counts.entry(verdict.state).or_default() += 1;
                    let worth_a_look = !matches!(verdict.state, State::Passed | State::Skipped);
                    let shown = verdicts
                        .notable
                        .iter()
                        .filter(|v| v.state == verdict.state)
                        .count();
                    if worth_a_look && shown < listed {
                        verdicts.notable.push(TestVerdict {
                            classname: case.classname,
                            name: case.name,
                            state: verdict.state,
                            fail_streak: verdict.fail_streak,
                            message: case.message,
                        });
                    }
                }
            }
        }
        let new_failures = verdicts
            .counts
            .get(&State::NewFailure)
            .copied()
            .unwrap_or(0);
        let count = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        tx.execute(
            "UPDATE runs SET duration_ms = ?2, result = ?3, tests = ?4, failed = ?5, errored = ?6,
                 skipped = ?7, flaky = ?8, new_failures = ?9, commit_sha = ?10, branch = ?11,
                 started_ms = ?12, complete = 1
             WHERE id = ?1",
            params![
                run.0,
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
            ],
        )
        .map_err(sqlite)?;
        tx.commit().map_err(sqlite)?;
        Ok(verdicts)
    }

    /// Deletes a suite's runs past the newest `keep_runs` and those older than `keep_for`.
    pub fn prune(
        &mut self,
        suite: &str,
        keep_runs: usize,
        keep_for: Duration,
        now: SystemTime,
    ) -> Result<usize, HistoryError> {
        let oldest = unix_ms(now) - millis(keep_for);
        let keep = i64::try_from(keep_runs).unwrap_or(i64::MAX);
        self.conn
            .execute(
                "DELETE FROM runs WHERE suite = ?1 AND complete = 1 AND (started_ms < ?2 OR id NOT IN
                     (SELECT id FROM runs WHERE suite = ?1 AND complete = 1 ORDER BY id DESC LIMIT ?3))",
                params![suite, oldest, keep],
            )
            .map_err(|e| self.error(e))
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
        let query = || -> rusqlite::Result<Vec<Timeline>> {
            let mut statement = self.conn.prepare(
                "WITH recent AS (SELECT id FROM runs WHERE suite = ?1 AND complete = 1
                                 ORDER BY id DESC LIMIT ?3)
                 SELECT t.classname, t.name, r.run, r.outcome, r.state
                 FROM tests t JOIN results r ON r.test = t.id
                 WHERE t.suite = ?1 AND instr(t.classname || '::' || t.name, ?2) > 0
                   AND r.run IN (SELECT id FROM recent)
                 ORDER BY t.classname, t.name, r.run",
            )?;
            let mut timelines: Vec<Timeline> = Vec::new();
            let mut rows = statement.query(params![
                suite,
                pattern,
                i64::try_from(limit).unwrap_or(i64::MAX)
            ])?;
            while let Some(row) = rows.next()? {
                let (classname, name): (String, String) = (row.get(0)?, row.get(1)?);
                let state: Option<i64> = row.get(4)?;
                let entry = (
                    row.get::<_, i64>(2)?,
                    outcome_of(row.get(3)?).as_str().to_owned(),
                    state
                        .and_then(State::from_code)
                        .map_or("", State::as_str)
                        .to_owned(),
                );
                match timelines.last_mut() {
                    Some(last) if last.classname == classname && last.name == name => {
                        last.runs.push(entry);
                    }
                    _ => timelines.push(Timeline {
                        classname,
                        name,
                        runs: vec![entry],
                    }),
                }
            }
            Ok(timelines)
        };
        query().map_err(|e| self.error(e))
    }

    /// Tests whose latest state is flaky, most flips first.
    pub fn flaky(&self, suite: Option<&str>) -> Result<Vec<FlakyTest>, HistoryError> {
        let query = || -> rusqlite::Result<Vec<FlakyTest>> {
            let mut statement = self.conn.prepare(
                "SELECT t.suite, t.classname, t.name, k.flips, k.runs, length(k.recent), k.last_failure
                 FROM tracks k JOIN tests t ON t.id = k.test
                 WHERE k.state = ?1 AND (?2 IS NULL OR t.suite = ?2)
                 ORDER BY k.flips DESC, t.suite, t.classname, t.name",
            )?;
            let rows = statement.query_map(params![State::Flaky.code(), suite], |row| {
                let flips: i64 = row.get(3)?;
                let window: i64 = row.get(5)?;
                Ok(FlakyTest {
                    suite: row.get(0)?,
                    classname: row.get(1)?,
                    name: row.get(2)?,
                    flip_rate: if window > 1 {
                        flips as f64 / (window - 1) as f64
                    } else {
                        0.0
                    },
                    runs: u64::try_from(row.get::<_, i64>(4)?).unwrap_or(0),
                    last_failure: row.get(6)?,
                })
            })?;
            rows.collect()
        };
        query().map_err(|e| self.error(e))
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
        let Some(latest) = rows.first().map(|r| r.id) else {
            return Ok(SuitePage::default());
        };
        let oldest = rows.last().map_or(latest, |r| r.id);
        let query = || -> rusqlite::Result<Vec<NotableTest>> {
            let mut notable = self.conn.prepare(
                "SELECT r.test, t.classname, t.name, r.state, COALESCE(k.fail_streak, 0),
                        COALESCE(r.message, k.last_failure)
                 FROM results r JOIN tests t ON t.id = r.test LEFT JOIN tracks k ON k.test = r.test
                 WHERE r.run = ?1 AND r.state NOT IN (?2, ?3)
                 ORDER BY r.state, t.classname, t.name",
            )?;
            let mut strip = self.conn.prepare_cached(
                "SELECT r.run, r.outcome FROM results r JOIN runs u ON u.id = r.run
                 WHERE r.test = ?1 AND r.run BETWEEN ?2 AND ?3 AND u.suite = ?4 AND u.complete = 1",
            )?;
            let mut tests: Vec<NotableTest> = Vec::new();
            let mut rows_of_state: BTreeMap<State, usize> = BTreeMap::new();
            let found = notable.query_map(
                params![latest, State::Passed.code(), State::Skipped.code()],
                |row| {
                    Ok((
                        row.get::<_, i64>(0)?,
                        row.get::<_, String>(1)?,
                        row.get::<_, String>(2)?,
                        row.get::<_, i64>(3)?,
                        row.get::<_, i64>(4)?,
                        row.get::<_, Option<String>>(5)?,
                    ))
                },
            )?;
            for found in found {
                let (test, classname, name, state, streak, message) = found?;
                let Some(state) = State::from_code(state) else {
                    continue;
                };
                let shown = rows_of_state.entry(state).or_default();
                if *shown >= listed {
                    continue;
                }
                *shown += 1;
                let outcomes: BTreeMap<i64, Outcome> = strip
                    .query_map(params![test, oldest, latest, suite], |row| {
                        Ok((row.get::<_, i64>(0)?, outcome_of(row.get(1)?)))
                    })?
                    .collect::<rusqlite::Result<_>>()?;
                tests.push(NotableTest {
                    classname,
                    name,
                    state,
                    fail_streak: u64::try_from(streak).unwrap_or(0),
                    message,
                    strip: rows
                        .iter()
                        .rev()
                        .map(|run| outcomes.get(&run.id).copied())
                        .collect(),
                });
            }
            Ok(tests)
        };
        let tests = query().map_err(|e| self.error(e))?;
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
        CaseResult {
            report_suite: "pytest".into(),
            classname: "tests.test_x".into(),
            name: name.into(),
            outcome,
            attempts: 1,
            flaky: false,
            duration: Some(Duration::from_millis(10)),
            message: outcome.is_failure().then(|| format!("{name} broke")),
        }
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

    fn record(store: &mut Store, cases: &[CaseResult]) -> RunVerdicts {
        let run = store.begin("s", "x", SystemTime::now()).expect("begin");
        store.add(run, "s", cases).expect("add");
        store
            .finish(
                run,
                &entry(cases.len() as u64),
                &RULES,
                10,
                SystemTime::now(),
            )
            .expect("finish")
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
        assert_eq!(third.notable[0].fail_streak, 2);

        let runs = store.runs("s", 10).expect("runs");
        assert_eq!(runs.len(), 3);
        assert_eq!(runs[0].new_failures, 0);
        assert_eq!(runs[1].new_failures, 1);
        assert_eq!(runs[0].commit.as_deref(), Some("abc"));
        assert_eq!(runs[0].started_unix_ms, 1_800_000_000_000);

        let pruned = store
            .prune("s", 2, Duration::from_secs(u64::MAX / 4), SystemTime::now())
            .expect("prune");
        assert_eq!(pruned, 1);
        let timeline = store.timelines("s", "test_x::a", 10).expect("timeline");
        let states: Vec<&str> = timeline[0].runs.iter().map(|r| r.2.as_str()).collect();
        assert_eq!(states, ["new_failure", "failing"]);
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
