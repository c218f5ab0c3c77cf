//! The history store's schema, one step per version: the SQL of version 1, and the rewrite of
//! a version 1 store (a row per result and per track) into version 2's chunks and shards.

use std::collections::BTreeMap;
use std::path::Path;

use rusqlite::{params, Connection, Transaction};

use super::classify::{State, Track};
use super::codec::{self, ResultsChunk, StoredResult, TrackEntry, DUPLICATE};
use super::error::{at, HistoryError};

/// Results per chunk when a version 1 run is rewritten.
const CHUNK_RESULTS: usize = 4096;

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

/// Version 2 keeps a run's results as chunks (`codec.rs`), each of one group of shards, with
/// one state byte per result on the run (in the order of group, then chunk), and a suite's
/// tracks in shards by test id.
const SCHEMA_V2: &str = "
ALTER TABLE runs ADD COLUMN states BLOB;
CREATE TABLE result_chunks (
    run INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    -- The group of shards of the tests whose results it holds (codec::group_of).
    grp INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    data BLOB NOT NULL
);
CREATE UNIQUE INDEX result_chunks_by_run ON result_chunks(run, grp, seq);
CREATE TABLE track_shards (
    suite TEXT NOT NULL,
    shard INTEGER NOT NULL,
    data BLOB NOT NULL
);
CREATE UNIQUE INDEX track_shards_by_suite ON track_shards(suite, shard);
";

fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// Brings the store in `tx` from `version - 1` to `version`.
pub fn step(tx: &Transaction<'_>, path: &Path, version: i64) -> Result<(), HistoryError> {
    let sqlite = at(path);
    match version {
        1 => tx.execute_batch(SCHEMA_V1).map_err(sqlite),
        2 => {
            tx.execute_batch(SCHEMA_V2).map_err(sqlite)?;
            results_to_chunks(tx).map_err(sqlite)?;
            tracks_to_shards(tx).map_err(sqlite)?;
            tx.execute_batch("DROP TABLE results; DROP TABLE tracks;")
                .map_err(sqlite)
        }
        _ => unreachable!("a migration for every version up to SCHEMA_VERSION"),
    }
}

/// Version 1's results rows, a run at a time, as chunks and a run's state bytes.
fn results_to_chunks(conn: &Connection) -> rusqlite::Result<()> {
    let runs: Vec<(i64, bool)> = {
        let mut statement = conn.prepare("SELECT id, complete FROM runs ORDER BY id")?;
        let rows = statement.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    let mut results = conn.prepare(
        "SELECT test, outcome, attempts, flaky, duration_us, message, state
         FROM results WHERE run = ?1 ORDER BY test",
    )?;
    let mut insert =
        conn.prepare("INSERT INTO result_chunks (run, grp, seq, data) VALUES (?1, ?2, ?3, ?4)")?;
    let mut states = conn.prepare("UPDATE runs SET states = ?2 WHERE id = ?1")?;
    for (run, complete) in runs {
        // A chunk and the state bytes of each group: the states of a run follow its results
        // by group, then chunk.
        let mut chunks: Vec<ResultsChunk> = (0..codec::GROUPS)
            .map(|_| ResultsChunk::default())
            .collect();
        let mut codes: Vec<Vec<u8>> = vec![Vec::new(); codec::GROUPS];
        let mut seq = 0;
        let mut rows = results.query([run])?;
        while let Some(row) = rows.next()? {
            let id: i64 = row.get(0)?;
            let group = codec::group_of(id);
            let message: Option<String> = row.get(5)?;
            chunks[group].push(&StoredResult {
                id,
                outcome: codec::outcome_of(row.get(1)?),
                flaky: row.get(3)?,
                attempts: row.get(2)?,
                duration: row
                    .get::<_, Option<i64>>(4)?
                    .map(|us| std::time::Duration::from_micros(count(us))),
                message: message.as_deref(),
            });
            codes[group].push(row.get::<_, Option<u8>>(6)?.unwrap_or(DUPLICATE));
            if chunks[group].len() >= CHUNK_RESULTS {
                insert.execute(params![run, group as u32, seq, chunks[group].take()])?;
                seq += 1;
            }
        }
        for (group, chunk) in chunks.iter_mut().enumerate() {
            if !chunk.is_empty() {
                insert.execute(params![run, group as u32, seq, chunk.take()])?;
                seq += 1;
            }
        }
        if complete {
            states.execute(params![run, codes.concat()])?;
        }
    }
    Ok(())
}

/// Version 1's tracks rows as shards, each track with the last run it was in.
fn tracks_to_shards(conn: &Connection) -> rusqlite::Result<()> {
    let mut shards: BTreeMap<(String, u8), Vec<TrackEntry>> = BTreeMap::new();
    {
        let mut statement = conn.prepare(
            "SELECT k.test, t.suite, k.runs, k.last_outcome, k.fail_streak, k.recent, k.durations,
                    k.state, k.flips, k.last_failure,
                    (SELECT max(run) FROM results WHERE test = k.test)
             FROM tracks k JOIN tests t ON t.id = k.test",
        )?;
        let mut rows = statement.query([])?;
        while let Some(row) = rows.next()? {
            let id: i64 = row.get(0)?;
            let suite: String = row.get(1)?;
            let recent: Vec<u8> = row.get(5)?;
            let durations: Vec<u8> = row.get(6)?;
            let entry = TrackEntry {
                id,
                last_run: row.get::<_, Option<i64>>(10)?.unwrap_or(0),
                state: State::from_code(row.get(7)?).unwrap_or(State::Passed),
                flips: count(row.get(8)?),
                track: Track {
                    runs: count(row.get(2)?),
                    last: row.get::<_, Option<u8>>(3)?.map(codec::outcome_of),
                    fail_streak: count(row.get(4)?),
                    recent: recent.into_iter().map(codec::outcome_of).collect(),
                    durations: durations
                        .chunks_exact(4)
                        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                        .collect(),
                },
                last_failure: row.get(9)?,
            };
            shards
                .entry((suite, codec::shard_of(id)))
                .or_default()
                .push(entry);
        }
    }
    let mut insert =
        conn.prepare("INSERT INTO track_shards (suite, shard, data) VALUES (?1, ?2, ?3)")?;
    for ((suite, shard), mut tracks) in shards {
        tracks.sort_by_key(|track| codec::id_order(track.id));
        insert.execute(params![suite, shard, codec::encode_tracks(&tracks)])?;
    }
    Ok(())
}
