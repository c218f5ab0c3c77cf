//! Bad input gets a clear error that names the path, is counted in the self-metrics, and the
//! rest keeps going: missing config, unknown key, a command that does not exist, a missing or
//! malformed JUnit report, a FIFO left at the report path (which would block a plain open),
//! and a corrupt `.wasm` next to a good plugin.

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use crate::support::{built_plugins_dir, osworld_config, wait_for, Guard};

fn testmeter(args: &[&str], config: &Path) -> Output {
    crate::support::testmeter_command(config)
        .args(args)
        .arg("--config")
        .arg(config)
        .env("RUST_LOG", "off")
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .output()
        .expect("testmeter runs")
}

fn redact(text: &str, dir: &Path) -> String {
    crate::support::redact_run_times(&text.replace(&dir.display().to_string(), "[TEMP_DIR]"))
}

#[test]
fn missing_config_names_the_path_and_exits_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = testmeter(&["once"], &dir.path().join("missing.toml"));
    assert_eq!(output.status.code(), Some(2));
    insta::assert_snapshot!(redact(&String::from_utf8_lossy(&output.stderr), dir.path()));
}

#[test]
fn unknown_config_key_names_key_line_and_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("testmeter.toml");
    std::fs::write(
        &config,
        "plugins_dir = \"plugins\"\n\n[prometheus]\nlisten_addr = \"127.0.0.1:1\"\n",
    )
    .expect("write");
    let output = testmeter(&["once"], &config);
    assert_eq!(output.status.code(), Some(2));
    insta::assert_snapshot!(redact(&String::from_utf8_lossy(&output.stderr), dir.path()));
}

/// Suites that cannot produce a report, and a plugins dir with a corrupt `.wasm` beside the
/// real osworld plugin.
fn broken_setup(dir: &Path) -> std::path::PathBuf {
    let plugins = crate::support::plugins_dir_with_osworld(dir);
    std::fs::write(
        plugins.join("corrupt.wasm"),
        b"\0asm\x0d\x00\x01\x00not a component",
    )
    .expect("write");
    std::fs::write(plugins.join("README.txt"), b"not a plugin").expect("write");
    plugins
}

const BROKEN_SUITES: &str = r#"
[[suite]]
name = "no-such-command"
system = "osworld"
command = ["testmeter-test-no-such-command", "--junitxml=junit.xml"]
junit = "no-such-command.xml"

[[suite]]
name = "no-report"
system = "osworld"
command = ["sh", "-c", "echo collected 0 items >&2; exit 4"]
junit = "no-report.xml"

[[suite]]
name = "fifo-report"
system = "osworld"
command = ["sh", "-c", "mkfifo fifo.xml"]
junit = "fifo.xml"

[[suite]]
name = "malformed-report"
system = "osworld"
command = ["sh", "-c", "printf '<testsuites>\\n<testsuite name=\"x\">\\n<testcase name=\"a\"></testsuite>' > malformed.xml; exit 1"]
junit = "malformed.xml"
"#;

#[test]
fn once_reports_each_broken_suite_and_exits_1() {
    let dir = tempfile::tempdir().expect("tempdir");
    broken_setup(dir.path());
    let config = dir.path().join("testmeter.toml");
    std::fs::write(
        &config,
        format!("plugins_dir = \"plugins\"\n{BROKEN_SUITES}"),
    )
    .expect("write");
    let output = testmeter(&["once"], &config);
    assert_eq!(output.status.code(), Some(1), "something could not run");
    insta::assert_snapshot!(redact(&String::from_utf8_lossy(&output.stdout), dir.path()));
}

#[test]
fn run_counts_failures_in_self_metrics_and_keeps_exporting_the_rest() {
    let dir = tempfile::tempdir().expect("tempdir");
    let plugins = broken_setup(dir.path());
    let port = crate::support::free_port();
    let config = osworld_config(
        dir.path(),
        &plugins,
        &format!("[prometheus]\nlisten = \"127.0.0.1:{port}\"\n"),
    );
    let good = std::fs::read_to_string(&config).expect("read");
    let broken = BROKEN_SUITES.replace(
        "junit = \"",
        &format!(
            "working_dir = {:?}\njunit = \"",
            dir.path().display().to_string()
        ),
    );
    std::fs::write(&config, format!("{good}\n{broken}")).expect("write");
    let (_agent, exposition) = crate::support::run_until_suites_ran(&config, port, 5);
    let counted = crate::support::lines_starting_with(
        &exposition,
        &[
            "testmeter_suite_runs_total{",
            "testmeter_plugin_errors_total{",
            "genesis_osworld_tasks_total{",
        ],
    );
    insta::assert_yaml_snapshot!(counted);
    let health = crate::support::scrape(&format!("http://127.0.0.1:{port}/healthz"))
        .expect("healthz answers");
    assert_eq!(health, "ok\n");
}

#[test]
fn a_collector_that_is_down_is_counted_and_logged_once_while_metrics_keep_serving() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = crate::support::free_port();
    // Nothing listens here: connections are refused, like a collector that is down.
    let dead_collector = crate::support::free_port();
    let config = osworld_config(
        dir.path(),
        &built_plugins_dir(),
        &format!(
            "[prometheus]\nlisten = \"127.0.0.1:{port}\"\n[otlp]\nendpoint = \"http://127.0.0.1:{dead_collector}\"\nprotocol = \"grpc\"\ninterval = \"300ms\"\ntimeout = \"1s\"\n"
        ),
    );
    let log_path = dir.path().join("testmeter.log");
    let log = std::fs::File::create(&log_path).expect("log");
    let mut agent = Guard::spawn(
        "testmeter run",
        crate::support::testmeter_command(&config)
            .args(["run", "--config"])
            .arg(&config)
            .env("RUST_LOG", "info")
            .stdout(std::process::Stdio::null())
            .stderr(log),
    );
    let url = format!("http://127.0.0.1:{port}/metrics");
    let failures = wait_for("three failed exports", Duration::from_secs(60), || {
        let body = crate::support::scrape(&url)?;
        let failures: f64 = body
            .lines()
            .find_map(|l| l.strip_prefix("testmeter_export_errors_total{exporter=\"otlp\"} "))?
            .parse()
            .ok()?;
        let derived = body
            .lines()
            .any(|l| l.starts_with("genesis_osworld_tasks_passed 8"));
        (failures >= 3.0 && derived).then_some(failures)
    });
    assert!(failures >= 3.0);
    let status = agent.terminate(Duration::from_secs(20));
    assert!(
        status.is_some_and(|s| s.success()),
        "exits 0 on SIGTERM with the collector down: {status:?}"
    );
    let log = std::fs::read_to_string(&log_path).expect("log");
    assert_eq!(
        log.matches("metric export failing").count(),
        1,
        "logged once per state change, not per attempt:\n{log}"
    );
}

/// A suite whose report is its stdout and that leaves a `setsid` daemon holding that stdout
/// open: `once` still exits soon, with the report the suite wrote, and leaves the daemon be.
#[test]
fn a_daemon_holding_the_suites_stdout_neither_holds_the_run_nor_loses_the_report() {
    let dir = tempfile::tempdir().expect("tempdir");
    crate::support::plugins_dir_with_osworld(dir.path());
    let fixture = crate::support::repo_root().join("tests/fixtures/osworld/junit.xml");
    let config = dir.path().join("testmeter.toml");
    std::fs::write(
        &config,
        format!(
            "plugins_dir = \"plugins\"\n\n[[suite]]\nname = \"daemonizes\"\nsystem = \"osworld\"\ncommand = [\"sh\", \"-c\", \"setsid sh -c 'echo $$ > daemon.pid; exec sleep 300' & while [ ! -s daemon.pid ]; do sleep 0.01; done; cat '{fixture}'\"]\nformat = \"junit\"\nworking_dir = {dir:?}\ntimeout = \"60s\"\n",
            fixture = fixture.display(),
            dir = dir.path().display().to_string(),
        ),
    )
    .expect("write");
    let started = std::time::Instant::now();
    let output = testmeter(&["once"], &config);
    let took = started.elapsed();
    let daemon: libc::pid_t = std::fs::read_to_string(dir.path().join("daemon.pid"))
        .expect("the daemon wrote its pid")
        .trim()
        .parse()
        .expect("a pid");
    // SAFETY: kill has no memory-safety preconditions.
    let alive = unsafe { libc::kill(daemon, 0) } == 0;
    // SAFETY: as above.
    unsafe {
        libc::kill(daemon, libc::SIGKILL);
    }
    assert!(
        alive,
        "the daemon outside the suite's group is not the agent's to kill"
    );
    assert!(took < Duration::from_secs(20), "once took {took:?}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let summary = stdout
        .lines()
        .find(|l| l.starts_with("✗ daemonizes"))
        .expect("the suite's line");
    assert!(
        summary.contains(": 8 passed, 1 failed, 0 errored, 1 skipped of 10 in "),
        "the report read from stdout: {stdout}"
    );
}

/// `--config testmeter.toml` from the config's own directory: its paths resolve against the
/// current dir, and the suite runs there.
#[test]
fn a_bare_config_file_name_resolves_against_the_current_dir() {
    let dir = tempfile::tempdir().expect("tempdir");
    crate::support::plugins_dir_with_osworld(dir.path());
    let fixture = crate::support::repo_root().join("tests/fixtures/osworld/junit.xml");
    std::fs::write(
        dir.path().join("testmeter.toml"),
        format!(
            "plugins_dir = \"plugins\"\n\n[[suite]]\nname = \"copies\"\nsystem = \"osworld\"\ncommand = [\"cp\", {fixture:?}, \"junit.xml\"]\nreport = \"junit.xml\"\n",
            fixture = fixture.display().to_string(),
        ),
    )
    .expect("write");
    let output = crate::support::testmeter_command(&dir.path().join("testmeter.toml"))
        .args(["once", "--config", "testmeter.toml"])
        .current_dir(dir.path())
        .env("RUST_LOG", "off")
        .output()
        .expect("testmeter runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("✗ copies (osworld): 8 passed, 1 failed, 0 errored, 1 skipped of 10"),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
