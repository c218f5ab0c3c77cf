//! The per-test history on real pytest runs: a suite whose tests pass, break, flip and slow down
//! from run to run (`tests/fixtures/history/project`), recorded by `testmeter once` into a real
//! SQLite file, classified, read back by `testmeter history` and `testmeter flaky`, and exported
//! as `testmeter_history_tests`; a `kill -9` in the middle of recording a run; and a store that
//! is corrupt, locked or cannot be created.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use testmeter::history::codec::outcome_of;
use testmeter::history::State;

use crate::support::{lines_starting_with, repo_root, testmeter_command, venv_python};

/// A config in `dir` whose one suite `h` runs the history project under pytest, with the
/// rules tightened so five runs show every state.
fn history_config(dir: &Path, extra: &str) -> PathBuf {
    let project = repo_root().join("tests/fixtures/history/project");
    let state = dir.join("state");
    std::fs::create_dir_all(&state).expect("state dir");
    std::fs::create_dir_all(dir.join("plugins")).expect("plugins dir");
    let config = format!(
        r#"plugins_dir = "plugins"

[history]
path = "history.db"
min_runs = 4
flaky_flips = 3
slower_window = 2
slower_share = 0.5
slower_min = "100ms"
{extra}
[[suite]]
name = "h"
system = "history"
command = [{python:?}, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--junitxml=report.xml", "--rootdir", {project:?}, {project:?}]
report = "report.xml"
env = {{ HISTORY_STATE_DIR = {state:?}, PYTHONDONTWRITEBYTECODE = "1" }}
timeout = "1m"
"#,
        python = venv_python().display().to_string(),
        project = project.display().to_string(),
        state = state.display().to_string(),
    );
    let path = dir.join("testmeter.toml");
    std::fs::write(&path, config).expect("write config");
    path
}

fn run(mut command: Command) -> Output {
    let output = command.output().expect("testmeter runs");
    assert!(
        output.status.success(),
        "{:?} failed: {}",
        command,
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// `testmeter ingest` of `report` as a run of `suite` of `system`.
fn ingest(config: &Path, system: &str, suite: &str, report: impl AsRef<std::ffi::OsStr>) {
    let mut command = testmeter_command(config);
    command
        .args(["ingest", "--system", system, "--suite", suite, "--config"])
        .arg(config)
        .arg(report);
    run(command);
}

fn once(config: &Path) {
    let mut command = testmeter_command(config);
    command.args(["once", "--config"]).arg(config);
    run(command);
}

fn json(config: &Path, args: &[&str]) -> serde_json::Value {
    let mut command = testmeter_command(config);
    command.args(args).arg("--config").arg(config).arg("--json");
    let output = run(command);
    serde_json::from_slice(&output.stdout).expect("JSON output")
}

#[test]
fn five_real_runs_give_every_state_and_the_commands_and_metrics_agree() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = history_config(dir.path(), "");
    let state = dir.path().join("state");
    // 1: all pass. 2: `test_breaks` breaks, `test_flips` fails. 3: both fail again, flips
    // passes. 4: fixed; `test_slows` takes 400 ms from now on. 5: as 4.
    once(&config);
    std::fs::write(state.join("break"), "").expect("break");
    once(&config);
    once(&config);
    std::fs::remove_file(state.join("break")).expect("unbreak");
    std::fs::write(state.join("delay"), "0.4").expect("delay");
    once(&config);
    once(&config);

    let history = json(&config, &["history", "--suite", "h", "--test", "test_"]);
    let runs: Vec<String> = history["runs"]
        .as_array()
        .expect("runs")
        .iter()
        .map(|run| {
            format!(
                "run {}: {} tests={} failed={} skipped={} new_failures={}",
                run["id"],
                run["result"].as_str().unwrap_or(""),
                run["tests"],
                run["failed"],
                run["skipped"],
                run["new_failures"]
            )
        })
        .collect();
    let tests: Vec<String> = history["tests"]
        .as_array()
        .expect("tests")
        .iter()
        .map(|test| {
            let runs: Vec<String> = test["runs"]
                .as_array()
                .expect("runs")
                .iter()
                .map(|r| {
                    format!(
                        "{}/{}",
                        r[1].as_str().unwrap_or(""),
                        r[2].as_str().unwrap_or("")
                    )
                })
                .collect();
            format!(
                "{}: {}",
                test["name"].as_str().unwrap_or(""),
                runs.join(" ")
            )
        })
        .collect();
    insta::assert_yaml_snapshot!((runs, tests));

    let flaky = json(&config, &["flaky", "--suite", "h"]);
    insta::assert_yaml_snapshot!(flaky);

    // 6: `test_breaks`, quarantined, breaks again: recorded, but not a new failure.
    let breaks = history["tests"]
        .as_array()
        .and_then(|tests| tests.iter().find(|t| t["name"] == "test_breaks"))
        .map(|t| format!("{}::test_breaks", t["classname"].as_str().unwrap_or("")))
        .expect("test_breaks in the history");
    let mut command = testmeter_command(&config);
    command
        .args(["quarantine", "add", "--suite", "h", "--test", &breaks])
        .args(["--reason", "known breakage", "--for", "1h", "--config"])
        .arg(&config);
    run(command);
    let quarantined = json(&config, &["quarantine", "list"]);
    assert_eq!(
        quarantined.as_array().map(Vec::len),
        Some(1),
        "{quarantined}"
    );
    assert_eq!(quarantined[0]["reason"], "known breakage");
    std::fs::write(state.join("break"), "").expect("break");
    once(&config);
    let last = json(
        &config,
        &[
            "history",
            "--suite",
            "h",
            "--test",
            "test_breaks",
            "--runs",
            "1",
        ],
    );
    assert_eq!(last["tests"][0]["runs"][0][2], "quarantined", "{last}");
    assert_eq!(last["runs"][0]["new_failures"], 0, "{last}");

    // The report of run 6 ingested once more (a seventh run): its states on /metrics.
    let mut command = testmeter_command(&config);
    command
        .args([
            "ingest", "--system", "history", "--suite", "h", "--print", "--config",
        ])
        .arg(&config)
        .arg(dir.path().join("report.xml"));
    let output = run(command);
    let exposition = String::from_utf8_lossy(&output.stdout);
    insta::assert_snapshot!(lines_starting_with(&exposition, &["testmeter_history_"]).join("\n"));

    // The gate on the history: no new failure in run 8 (the quarantined failure does not
    // count); in run 9 a test that always passed fails, and the gate stops.
    let gate = |expect_pass: bool| {
        let mut command = testmeter_command(&config);
        command
            .args([
                "gate",
                "--no-new-failures",
                "--max-flaky",
                "1",
                "--format",
                "json",
                "--config",
            ])
            .arg(&config);
        let output = command.output().expect("gate runs");
        assert_eq!(
            output.status.success(),
            expect_pass,
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice::<serde_json::Value>(&output.stdout).expect("gate JSON")
    };
    let proceed = gate(true);
    std::fs::write(state.join("late"), "").expect("late break");
    let stop = gate(false);

    // A quarantine ends on request too.
    let mut command = testmeter_command(&config);
    command
        .args([
            "quarantine",
            "remove",
            "--suite",
            "h",
            "--test",
            &breaks,
            "--config",
        ])
        .arg(&config);
    run(command);
    let quarantined = json(&config, &["quarantine", "list"]);
    assert_eq!(
        quarantined.as_array().map(Vec::len),
        Some(0),
        "{quarantined}"
    );
    insta::assert_yaml_snapshot!((proceed, stop));
}

/// The store's whole and unfinished runs with, for a whole run, its results (one state byte
/// each) and, for an unfinished one, the chunks of results written so far; and the chunks of
/// runs that are gone.
fn store_contents(path: &Path) -> (Vec<(i64, i64, i64)>, i64) {
    let conn = rusqlite::Connection::open(path).expect("store opens");
    let mut statement = conn
        .prepare(
            "SELECT r.id, r.complete, CASE WHEN r.complete = 1 THEN length(r.states)
                 ELSE (SELECT count(*) FROM result_chunks WHERE run = r.id) END
             FROM runs r ORDER BY r.id",
        )
        .expect("query");
    let runs = statement
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
        .expect("rows")
        .collect::<Result<Vec<_>, _>>()
        .expect("rows");
    let orphans: i64 = conn
        .query_row(
            "SELECT count(*) FROM result_chunks WHERE run NOT IN (SELECT id FROM runs)",
            [],
            |row| row.get(0),
        )
        .expect("orphans");
    (runs, orphans)
}

#[test]
fn a_kill_9_while_recording_leaves_whole_runs_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = history_config(dir.path(), "");
    let store = dir.path().join("history.db");
    // A whole run first: the real osworld report.
    let fixture = repo_root().join("tests/fixtures/osworld/junit.xml");
    ingest(&config, "history", "big", &fixture);
    let (whole, _) = store_contents(&store);
    assert_eq!(whole.len(), 1, "one whole run: {whole:?}");
    let cases = whole[0].2;
    assert!(cases > 0);

    // Then a run of 300,000 cases, killed once some of them are written.
    let report = dir.path().join("big.xml");
    let generated = Command::new("python3")
        .arg(repo_root().join("bench/gen_junit.py"))
        .arg("300000")
        .arg(&report)
        .status()
        .expect("generator runs");
    assert!(generated.success());
    let mut command = testmeter_command(&config);
    command
        .args([
            "ingest", "--system", "history", "--suite", "big", "--config",
        ])
        .arg(&config)
        .arg(&report)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut child = command.spawn().expect("ingest starts");
    let conn = rusqlite::Connection::open(&store).expect("store opens");
    conn.busy_timeout(Duration::from_secs(5))
        .expect("busy timeout");
    let started = std::time::Instant::now();
    loop {
        let written: i64 = conn
            .query_row(
                "SELECT count(*) FROM result_chunks
                 WHERE run IN (SELECT id FROM runs WHERE complete = 0)",
                [],
                |row| row.get(0),
            )
            .unwrap_or(0);
        if written > 0 {
            break;
        }
        assert!(
            child.try_wait().expect("child state").is_none(),
            "the run was recorded before it could be killed"
        );
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no case written in 60 s"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().expect("SIGKILL");
    child.wait().expect("reaped");
    drop(conn);
    let (runs, orphans) = store_contents(&store);
    assert_eq!(
        runs.len(),
        2,
        "the killed run is still there, unfinished: {runs:?}"
    );
    assert_eq!(runs[1].1, 0);

    // The next agent to open the store deletes it; the whole run stays as it was.
    let history = json(&config, &["history", "--suite", "big"]);
    assert_eq!(history["runs"].as_array().map(Vec::len), Some(1));
    ingest(&config, "history", "big", &fixture);
    let (runs, orphans_after) = store_contents(&store);
    assert_eq!(orphans, 0);
    assert_eq!(orphans_after, 0);
    let kept: Vec<(i64, i64)> = runs.iter().map(|r| (r.1, r.2)).collect();
    assert_eq!(kept, [(1, cases), (1, cases)], "{runs:?}");
}

/// `ingest --print` of the real osworld report with its store at `history`: whether it
/// succeeded, the exposition, and the log.
fn ingest_despite(dir: &Path, history: &Path) -> (bool, String, String) {
    let extra = format!("path = {:?}\n", history.display().to_string());
    let config = history_config(dir, "");
    let text = std::fs::read_to_string(&config)
        .expect("config")
        .replace("path = \"history.db\"\n", &extra);
    std::fs::write(&config, text).expect("config");
    let mut command = testmeter_command(&config);
    command
        .args([
            "ingest", "--system", "history", "--suite", "h", "--print", "--config",
        ])
        .arg(&config)
        .arg(repo_root().join("tests/fixtures/osworld/junit.xml"));
    let output = command.output().expect("ingest runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Fails unless the log names the store's path.
fn names(log: &str, path: &Path) {
    assert!(
        log.contains(&path.display().to_string()),
        "the log names the store {}: {log}",
        path.display()
    );
}

/// The history's error counts and the run's test counts in an exposition: the store failed,
/// the run's metrics did not.
fn errors(exposition: &str) -> String {
    lines_starting_with(
        exposition,
        &["testmeter_history_errors_total", "testmeter_suite_tests{"],
    )
    .join("\n")
}

#[test]
fn a_store_that_cannot_be_written_is_counted_and_export_goes_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Corrupt: not a database.
    let corrupt = dir.path().join("corrupt");
    std::fs::create_dir_all(&corrupt).expect("dir");
    std::fs::write(corrupt.join("history.db"), vec![0x5a; 8192]).expect("garbage");
    let (ok, exposition, log) = ingest_despite(&corrupt, &corrupt.join("history.db"));
    assert!(ok);
    names(&log, &corrupt.join("history.db"));
    insta::assert_snapshot!("corrupt", errors(&exposition));

    // Its directory cannot be made: a file is in the way.
    let blocked = dir.path().join("blocked");
    std::fs::create_dir_all(&blocked).expect("dir");
    std::fs::write(blocked.join("file"), "").expect("file");
    let (ok, exposition, log) = ingest_despite(&blocked, &blocked.join("file/history.db"));
    assert!(ok);
    names(&log, &blocked.join("file/history.db"));
    insta::assert_snapshot!("cannot_open", errors(&exposition));

    // Locked: another writer holds it for longer than the agent waits.
    let locked = dir.path().join("locked");
    std::fs::create_dir_all(&locked).expect("dir");
    let path = locked.join("history.db");
    let (ok, _, _) = ingest_despite(&locked, &path);
    assert!(ok, "a first run creates the store");
    let holder = rusqlite::Connection::open(&path).expect("open");
    holder
        .execute_batch("BEGIN EXCLUSIVE")
        .expect("exclusive lock");
    let (ok, exposition, log) = ingest_despite(&locked, &path);
    assert!(ok);
    names(&log, &path);
    insta::assert_snapshot!("locked", errors(&exposition));
    holder.execute_batch("ROLLBACK").expect("release");
}

/// A small tmpfs of its own, unmounted when dropped: a real filesystem to fill or make
/// read-only. Mounting needs root (CAP_SYS_ADMIN), which CI has.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Self {
        std::fs::create_dir_all(at).expect("mount point");
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .status()
            .expect("mount runs");
        assert!(
            status.success(),
            "mounting a tmpfs at {} failed: this test needs root (CAP_SYS_ADMIN)",
            at.display()
        );
        Tmpfs(at.to_path_buf())
    }

    fn read_only(&self) {
        let status = Command::new("mount")
            .args(["-o", "remount,ro"])
            .arg(&self.0)
            .status()
            .expect("mount runs");
        assert!(status.success(), "remount read-only");
    }

    /// Fills it to the last byte.
    fn fill(&self) {
        use std::io::Write as _;
        let mut filler = std::fs::File::create(self.0.join("filler")).expect("filler");
        let block = vec![0u8; 4096];
        while filler.write_all(&block).is_ok() {}
        while filler.write_all(&[0]).is_ok() {}
        let _ = filler.sync_all();
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn a_store_on_a_full_or_read_only_filesystem_is_counted_and_export_goes_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fs = Tmpfs::mount(&dir.path().join("fs"), "2m");
    let path = dir.path().join("fs/history.db");
    let (ok, _, log) = ingest_despite(dir.path(), &path);
    assert!(ok && path.exists(), "a first run creates the store: {log}");
    let runs = |path: &Path| -> i64 {
        rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .and_then(|c| {
                c.query_row("SELECT count(*) FROM runs WHERE complete = 1", [], |r| {
                    r.get(0)
                })
            })
            .expect("count runs")
    };
    assert_eq!(runs(&path), 1);

    // Full: not a byte left for the next run's pages.
    fs.fill();
    let (ok, exposition, log) = ingest_despite(dir.path(), &path);
    assert!(ok, "the ingest goes on: {log}");
    names(&log, &path);
    insta::assert_snapshot!("disk_full", errors(&exposition));
    std::fs::remove_file(dir.path().join("fs/filler")).expect("room again");
    assert_eq!(runs(&path), 1, "the store holds its one whole run");

    // Read-only: the filesystem is remounted so.
    fs.read_only();
    let (ok, exposition, log) = ingest_despite(dir.path(), &path);
    assert!(ok, "the ingest goes on: {log}");
    names(&log, &path);
    insta::assert_snapshot!("read_only", errors(&exposition));
    assert_eq!(runs(&path), 1);
}

#[test]
fn a_store_written_by_schema_version_1_is_migrated_whole_and_takes_new_runs() {
    // tests/fixtures/history/store-v1.db: written by testmeter's own write path at schema 1
    // (its regenerate.sh); every later version must migrate it.
    let dir = tempfile::tempdir().expect("tempdir");
    let store = dir.path().join("history.db");
    std::fs::copy(
        repo_root().join("tests/fixtures/history/store-v1.db"),
        &store,
    )
    .expect("copy the v1 store");
    // What schema 1 holds, read with SQL before any agent opens it: each test's outcome and
    // state in each run, and each test's failure streak and last failure.
    let (v1_results, v1_runs) = {
        let conn = rusqlite::Connection::open(&store).expect("open v1");
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .expect("user_version");
        assert_eq!(version, 1, "the fixture is a schema 1 store");
        let mut statement = conn
            .prepare(
                "SELECT t.classname, t.name, r.run, r.outcome, r.state
                 FROM results r JOIN tests t ON t.id = r.test ORDER BY t.classname, t.name, r.run",
            )
            .expect("prepare");
        let results: Vec<(String, String, i64, String, String)> = statement
            .query_map([], |row| {
                Ok((
                    row.get(0)?,
                    row.get(1)?,
                    row.get(2)?,
                    outcome_of(row.get(3)?).as_str().to_owned(),
                    State::from_code(row.get(4)?)
                        .map_or("", State::as_str)
                        .to_owned(),
                ))
            })
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows");
        let runs: i64 = conn
            .query_row("SELECT count(*) FROM runs WHERE complete = 1", [], |r| {
                r.get(0)
            })
            .expect("runs");
        (results, runs)
    };
    assert!(!v1_results.is_empty());
    let config = history_config(dir.path(), "");
    let migrated = json(
        &config,
        &[
            "history", "--suite", "osworld", "--test", "", "--runs", "10",
        ],
    );
    assert_eq!(
        migrated["runs"].as_array().map(Vec::len),
        usize::try_from(v1_runs).ok(),
        "{migrated}"
    );
    let mut results = Vec::new();
    for test in migrated["tests"].as_array().expect("tests") {
        for run in test["runs"].as_array().expect("runs") {
            results.push((
                test["classname"].as_str().expect("classname").to_owned(),
                test["name"].as_str().expect("name").to_owned(),
                run[0].as_i64().expect("run"),
                run[1].as_str().expect("outcome").to_owned(),
                run[2].as_str().expect("state").to_owned(),
            ));
        }
    }
    results.sort();
    let mut expected = v1_results.clone();
    expected.sort();
    assert_eq!(
        results, expected,
        "every result of schema 1, with its state"
    );

    ingest(
        &config,
        "osworld",
        "osworld",
        repo_root().join("tests/fixtures/osworld/junit.xml"),
    );
    let after = json(&config, &["history", "--suite", "osworld"]);
    let runs = after["runs"].as_array().expect("runs");
    assert_eq!(runs.len(), 3, "{after}");
    assert_eq!(runs[0]["tests"], runs[2]["tests"]);
    // The third run is classified against the tracks schema 1 kept: a test failing in both
    // earlier runs is failing with a streak of three, not a first failure.
    let failing: Vec<&(String, String, i64, String, String)> = expected
        .iter()
        .filter(|r| r.4 == "failing" && r.2 == 2)
        .collect();
    assert!(!failing.is_empty(), "the fixture has tests failing twice");
    let (classname, name) = (&failing[0].0, &failing[0].1);
    let timeline = json(
        &config,
        &[
            "history",
            "--suite",
            "osworld",
            "--test",
            &format!("{classname}::{name}"),
        ],
    );
    let states: Vec<&str> = timeline["tests"][0]["runs"]
        .as_array()
        .expect("runs")
        .iter()
        .map(|r| r[2].as_str().expect("state"))
        .collect();
    assert_eq!(states, ["failing", "failing", "failing"], "{timeline}");
    let version: i64 = rusqlite::Connection::open(&store)
        .and_then(|c| c.pragma_query_value(None, "user_version", |r| r.get(0)))
        .expect("user_version");
    assert_eq!(version, testmeter::history::store::SCHEMA_VERSION);
    assert_eq!(version, 2);
}

/// The `<i class="…">` cells of the strip in the row of `test`.
fn strip<'a>(dom: &'a str, test: &str) -> Vec<&'a str> {
    let start = dom
        .find(&format!("<tr data-test=\"{test}\""))
        .unwrap_or_else(|| panic!("a row for {test}"));
    let row = &dom[start..start + dom[start..].find("</tr>").expect("row end")];
    crate::support::attribute_values(row, "class")
        .into_iter()
        .filter(|class| !class.starts_with("badge") && *class != "strip")
        .collect()
}

#[test]
fn a_suites_page_draws_its_runs_and_lists_its_tests_in_chromium() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = crate::support::free_port();
    let config = history_config(
        dir.path(),
        &format!("[prometheus]\nlisten = \"127.0.0.1:{port}\"\n"),
    );
    let state = dir.path().join("state");
    // Three runs with `once`: all pass; two tests break; one stays broken, one passes again.
    once(&config);
    std::fs::write(state.join("break"), "").expect("break");
    once(&config);
    once(&config);
    // The fourth run is the daemon's first.
    let mut command = testmeter_command(&config);
    command
        .args(["run", "--config"])
        .arg(&config)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let _agent = crate::support::Guard::spawn("testmeter run", &mut command);
    let base = format!("http://127.0.0.1:{port}");
    crate::support::wait_for("the daemon's first run", Duration::from_secs(60), || {
        ureq::get(&format!("{base}/readyz")).call().ok()
    });
    let profile = dir.path().join("chromium");
    let index = crate::support::chromium(&profile, "--dump-dom", &format!("{base}/"));
    assert!(index.status.success(), "{index:?}");
    let index = String::from_utf8_lossy(&index.stdout);
    assert!(
        crate::support::attribute_values(&index, "href").contains(&"/suite/h"),
        "/ links the suite's page: {index}"
    );

    let page = crate::support::chromium(&profile, "--dump-dom", &format!("{base}/suite/h"));
    assert!(page.status.success(), "{page:?}");
    let dom = String::from_utf8_lossy(&page.stdout).into_owned();
    let rates = crate::support::attribute_values(&dom, "data-rate");
    let durations = crate::support::attribute_values(&dom, "data-ms");
    let tests: Vec<String> = crate::support::attribute_values(&dom, "data-test")
        .into_iter()
        .zip(crate::support::attribute_values(&dom, "data-state"))
        .map(|(test, state)| format!("{state} {test}: {}", strip(&dom, test).join(" ")))
        .collect();
    assert_eq!(durations.len(), 4, "a bar per run: {dom}");
    insta::assert_yaml_snapshot!((rates, tests));

    let shot = dir.path().join("suite.png");
    let output = crate::support::chromium(
        &profile,
        &format!("--screenshot={}", shot.display()),
        &format!("{base}/suite/h"),
    );
    assert!(output.status.success(), "{output:?}");
    let screenshot = crate::support::Screenshot::open(&shot);
    assert_eq!(
        (screenshot.width, screenshot.height),
        (crate::support::WIDTH, crate::support::HEIGHT)
    );
    let count = |rgb: [u8; 3]| screenshot.count(rgb);
    // The duration bars (#8250df) and the red of the failing tests' badges and strip cells.
    assert!(
        count([0x82, 0x50, 0xdf]) > 1_000,
        "the duration bars are drawn"
    );
    assert!(count([0xcf, 0x22, 0x2e]) > 500, "failures are shown in red");
}
