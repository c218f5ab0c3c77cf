//! What `testmeter once` shows an operator: the closing table of runs and SLO verdicts (golden),
//! live progress lines only when stderr is a terminal (a real pseudo-terminal from `script`),
//! and plain output when it is not.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Two suites through the real osworld plugin: one replays the real osworld example run kept in
/// `tests/fixtures/osworld`, one cannot run at all.
fn config(dir: &Path) -> PathBuf {
    crate::support::plugins_dir_with_osworld(dir);
    let fixtures = crate::support::repo_root().join("tests/fixtures/osworld");
    let config = dir.join("testmeter.toml");
    std::fs::write(
        &config,
        format!(
            r#"plugins_dir = "plugins"

[[suite]]
name = "nightly"
system = "osworld"
command = ["sh", "-c", "cp '{junit}' junit.xml && cp '{results}' results.json"]
working_dir = {dir:?}
report = "junit.xml"
artifacts = ["results.json"]

[[suite]]
name = "broken"
system = "osworld"
command = ["sh", "-c", "exit 3"]
working_dir = {dir:?}
report = "missing.xml"
"#,
            junit = fixtures.join("junit.xml").display(),
            results = fixtures.join("osworld_results.json").display(),
            dir = dir.display().to_string(),
        ),
    )
    .expect("write config");
    config
}

/// The table that closes the summary, with what depends on the machine replaced: run times,
/// and the memory SLO, which measures the suite's peak RSS (its verdict is checked against
/// its measured value instead).
fn closing_table(stdout: &str) -> String {
    let start = stdout.find("SUITE ").expect("the closing table");
    let table = &stdout[start..];
    let memory = table
        .lines()
        .find(|line| line.starts_with("nightly") && line.contains("OSWorldMemoryHigh"))
        .expect("the memory SLO row");
    let cells: Vec<&str> = memory.split_whitespace().collect();
    let mib: f64 = cells[4].parse().expect("MiB measured");
    assert_eq!(
        cells[6],
        if mib > 20.0 { "breached" } else { "met" },
        "{memory}"
    );
    let breached = table.lines().filter(|l| l.ends_with("✗ breached")).count();
    assert!(
        table.contains(&format!("{breached}/4 breached")),
        "the SLOS cell counts the breached rows: {table}"
    );
    table
        .lines()
        .map(|line| {
            let redacted = crate::support::redact_run_times(line);
            if line == memory {
                let keep: Vec<&str> = line.split_whitespace().take(4).collect();
                format!("{}  [PEAK RSS MiB, verdict]", keep.join("  "))
            } else {
                redacted.replace(&format!("{breached}/4 breached"), "[N]/4 breached")
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn once_ends_with_a_table_of_runs_and_slo_verdicts_and_no_progress_off_a_terminal() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = config(dir.path());
    let output = crate::support::testmeter_command(&config)
        .args(["once", "--config"])
        .arg(&config)
        .env("RUST_LOG", "warn")
        .output()
        .expect("testmeter runs");
    assert_eq!(output.status.code(), Some(1), "a suite could not run");
    let stdout = String::from_utf8_lossy(&output.stdout);
    insta::assert_snapshot!(closing_table(&stdout));
    // Without --details the summary names no series.
    assert!(!stdout.contains("genesis_osworld_tasks_total{"), "{stdout}");
    // No progress off a terminal: no redraws, no escape sequences, no spinner lines.
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !stderr.contains('\r') && !stderr.contains('\u{1b}'),
        "{stderr:?}"
    );
    assert!(!stderr.contains("waiting"), "{stderr}");

    let details = crate::support::testmeter_command(&config)
        .args(["once", "--details", "--config"])
        .arg(&config)
        .env("RUST_LOG", "off")
        .output()
        .expect("testmeter runs");
    let stdout = String::from_utf8_lossy(&details.stdout);
    assert!(
        stdout.contains("    genesis_osworld_tasks_total{status=\"passed\"}"),
        "{stdout}"
    );
}

#[test]
fn once_on_a_terminal_draws_a_progress_line_per_suite() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = config(dir.path());
    let transcript = dir.path().join("transcript");
    let command = format!(
        "XDG_CACHE_HOME={cache:?} XDG_STATE_HOME={state:?} RUST_LOG=off TERM=xterm {bin:?} once --config {config:?}",
        cache = dir.path().join("cache").display().to_string(),
        state = dir.path().join("state").display().to_string(),
        bin = crate::support::testmeter_bin().display().to_string(),
        config = config.display().to_string(),
    );
    // util-linux `script` runs the command on a new pseudo-terminal and records what it drew.
    let status = Command::new("script")
        .args(["--quiet", "--return", "--command", &command])
        .arg(&transcript)
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .status()
        .expect("script runs");
    assert_eq!(status.code(), Some(1), "once's own exit code comes through");
    let drawn = std::fs::read_to_string(&transcript).expect("transcript");
    // The bars are redrawn in place with escape sequences and carriage returns, and end as
    // each suite's result.
    assert!(
        drawn.contains('\u{1b}') && drawn.contains('\r'),
        "{drawn:?}"
    );
    let plain = crate::support::strip_ansi(&drawn);
    for expected in [
        "running osworld (sh -c cp",
        "  nightly  ✗ 8 passed, 1 failed, 0 errored, 1 skipped in ",
        "running osworld (sh -c exit 3)",
        "  broken   ✗ could not run (",
    ] {
        assert!(plain.contains(expected), "{expected:?} in {plain:?}");
    }
    // The summary and its table still follow on stdout.
    assert!(plain.contains("SUITE    SYSTEM   RESULT"), "{plain:?}");
}
