//! Reports end to end: `testmeter ingest` of reports other jobs wrote (printed and pushed to
//! a real OTLP collector), `testmeter convert` to clean JUnit, a suite whose report is its
//! stdout, a hung suite whose completed cases survive as a partial run, and a suite that writes
//! no report, judged by its exit code and read through its artifacts.

use std::path::{Path, PathBuf};
use std::process::Output;

use testmeter::parse::{parse_bytes, parse_file, Format, Limits, Summary};

fn fixture(path: &str) -> PathBuf {
    crate::support::repo_root()
        .join("tests/fixtures")
        .join(path)
}

/// A config in `dir` whose plugins dir holds the real osworld plugin.
fn config_in(dir: &Path, extra: &str) -> PathBuf {
    crate::support::plugins_dir_with_osworld(dir);
    let config = dir.join("testmeter.toml");
    std::fs::write(&config, format!("plugins_dir = \"plugins\"\n{extra}")).expect("write config");
    config
}

fn testmeter(config: &Path, args: &[&str]) -> Output {
    crate::support::testmeter_command(config)
        .args(args)
        .env("RUST_LOG", "off")
        .output()
        .expect("testmeter runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn ingest_prints_the_plugin_metrics_of_a_report_another_job_wrote() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = config_in(dir.path(), "");
    let junit = fixture("osworld/junit.xml");
    let results = fixture("osworld/osworld_results.json");
    let output = testmeter(
        &config,
        &[
            "ingest",
            junit.to_str().expect("utf-8 path"),
            "--artifact",
            results.to_str().expect("utf-8 path"),
            "--system",
            "osworld",
            "--suite",
            "nightly",
            "--label",
            "env=ci",
            "--config",
            config.to_str().expect("utf-8 path"),
            "--print",
        ],
    );
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let exposition = stdout(&output);
    let lines = crate::support::lines_starting_with(
        &exposition,
        &[
            "genesis_osworld_success_rate{",
            "genesis_osworld_tasks_total{",
            "testmeter_suite_runs_total{",
            "testmeter_suite_tests{",
        ],
    );
    insta::assert_yaml_snapshot!(lines);
}

#[test]
fn ingest_of_several_surefire_files_counts_each_test_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = config_in(dir.path(), "");
    let calculator = fixture("surefire/TEST-demo.CalculatorTest.xml");
    let strings = fixture("surefire/TEST-demo.StringsTest.xml");
    let output = testmeter(
        &config,
        &[
            "ingest",
            calculator.to_str().expect("utf-8 path"),
            strings.to_str().expect("utf-8 path"),
            "--system",
            "java-demo",
            "--config",
            config.to_str().expect("utf-8 path"),
            "--print",
        ],
    );
    // No plugin handles java-demo: the run is still counted in the agent's own metrics.
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let exposition = stdout(&output);
    insta::assert_yaml_snapshot!(crate::support::lines_starting_with(
        &exposition,
        &["testmeter_suite_tests{"]
    ));
}

#[test]
fn ingest_pushes_to_a_real_otlp_collector() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rotel = crate::support::Rotel::start(dir.path());
    let config = config_in(
        dir.path(),
        &format!(
            "[otlp]\nendpoint = \"http://127.0.0.1:{}\"\nprotocol = \"grpc\"\n",
            rotel.grpc_port
        ),
    );
    let junit = fixture("osworld/junit.xml");
    let output = testmeter(
        &config,
        &[
            "ingest",
            junit.to_str().expect("utf-8 path"),
            "--system",
            "osworld",
            "--config",
            config.to_str().expect("utf-8 path"),
        ],
    );
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let names = rotel.wait_for_metrics(&["genesis_osworld_success_rate", "testmeter_suite_tests"]);
    assert!(
        names.iter().any(|n| n == "genesis_osworld_tasks_total"),
        "{names:?}"
    );
}

#[test]
fn ingest_of_a_malformed_report_names_line_and_column_and_exits_1() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = config_in(dir.path(), "");
    let report = dir.path().join("broken.xml");
    std::fs::write(
        &report,
        "<testsuites>\n  <testsuite name=\"s\">\n    <testcase name=\"a\"></testsuite>\n</testsuites>\n",
    )
    .expect("write");
    let output = testmeter(
        &config,
        &[
            "ingest",
            report.to_str().expect("utf-8 path"),
            "--system",
            "osworld",
            "--config",
            config.to_str().expect("utf-8 path"),
        ],
    );
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr)
        .replace(&dir.path().display().to_string(), "[TEMP_DIR]");
    insta::assert_snapshot!(stderr);
}

/// Converts a fixture with the real binary.
fn convert(path: &Path) -> String {
    let output = std::process::Command::new(crate::support::testmeter_bin())
        .arg("convert")
        .arg(path)
        .output()
        .expect("testmeter runs");
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    stdout(&output)
}

#[test]
fn convert_writes_one_testcase_per_test_with_retries_in_surefire_form() {
    for (name, path) in [
        ("gotestsum_rerun_json", "gotest/gotestsum-rerun.json"),
        ("pytest_reruns_text", "pytest/reruns-verbose.txt"),
        ("tap_dies_after_plan", "tap/dies.tap"),
        // Only t/dies.t's suite carries its unmet plan; prove's `ok` verdict is not a test.
        ("prove_verbose", "tap/prove-verbose.txt"),
        (
            "libtest_no_fail_fast",
            "libtest/cargo-test-no-fail-fast.txt",
        ),
    ] {
        let xml = convert(&fixture(path));
        insta::assert_snapshot!(format!("convert_{name}"), xml);
    }
}

#[test]
fn converted_reports_parse_back_to_the_same_totals() {
    for path in [
        "surefire/TEST-demo.CalculatorTest.xml",
        "gotest/gotestsum-rerun.json",
        "pytest/reruns.xml",
        "libtest/nextest-junit.xml",
        "node/node.tap",
        "libtest/libtest.json",
    ] {
        let original =
            parse_file(&fixture(path), Format::Auto, Limits::default()).expect("fixture parses");
        let xml = convert(&fixture(path));
        let again =
            parse_bytes(xml.as_bytes(), Format::Junit, Limits::default()).expect("output parses");
        assert_eq!(
            Summary::of(&again.report),
            Summary::of(&original.report),
            "{path}"
        );
    }
}

/// A once-summary with its run-dependent figures redacted.
fn redact_summary(text: &str) -> String {
    crate::support::redact_run_times(text)
        .lines()
        .map(|line| {
            let line = match line.split_once(" in ") {
                Some((head, tail)) if tail.contains("peak RSS") => {
                    let exit = tail.rsplit_once(", exit code").map_or("", |(_, e)| e);
                    format!("{head} in [TIME], peak RSS [RSS], exit code{exit}")
                }
                _ => line.to_owned(),
            };
            line
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn a_suite_whose_report_is_its_stdout() {
    let dir = tempfile::tempdir().expect("tempdir");
    let project = fixture("pytest/project");
    let python = crate::support::venv_python();
    let config = config_in(
        dir.path(),
        &format!(
            r#"
[[suite]]
name = "pytest-verbose"
system = "pytest-demo"
command = [{python:?}, "-m", "pytest", "-v", "-rA", "--color=no", "-p", "no:cacheprovider"]
working_dir = {project:?}
format = "pytest-text"
env = {{ FLAKY_STATE_DIR = {state:?}, PYTHONDONTWRITEBYTECODE = "1" }}
"#,
            python = python.display().to_string(),
            project = project.display().to_string(),
            state = dir.path().display().to_string(),
        ),
    );
    let output = testmeter(
        &config,
        &["once", "--config", config.to_str().expect("utf-8")],
    );
    // Test failures are not run failures; no plugin handles pytest-demo.
    insta::assert_snapshot!(redact_summary(&stdout(&output)));
}

#[test]
fn a_hung_suite_keeps_the_cases_it_completed_as_a_partial_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = config_in(
        dir.path(),
        r#"
[[suite]]
name = "hangs"
system = "tap-demo"
command = ["sh", "-c", "echo 1..3; echo 'ok 1 - first'; echo 'not ok 2 - second'; exec sleep 60"]
timeout = "2s"
"#,
    );
    let output = testmeter(
        &config,
        &["once", "--config", config.to_str().expect("utf-8")],
    );
    insta::assert_snapshot!(redact_summary(&stdout(&output)));
}

/// A suite that writes no report (`report = false`), like a benchmark harness that writes only
/// a results tree: judged by its exit code, derived from its artifacts, which are found by a
/// recursive glob. A link to the agent's own environment and a FIFO planted among them are
/// dropped, logged and counted, and never block the run.
#[test]
fn a_suite_without_a_report_is_judged_by_its_exit_code_and_read_through_its_artifacts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = crate::support::free_port();
    let results = fixture("osworld/osworld_results.json");
    let suite = |name: &str, exit: u8| {
        format!(
            "[[suite]]\nname = \"{name}\"\nsystem = \"osworld\"\nreport = false\n\
             working_dir = {dir:?}\ninterval = \"1h\"\n\
             artifacts = [\"{name}/**/*.json\"]\n\
             command = [\"sh\", \"-c\", \"mkdir -p {name}/nested/deeper && cp {results} {name}/nested/deeper/osworld_results.json && ln -sf /proc/self/environ {name}/nested/env.json && rm -f {name}/pipe.json && mkfifo {name}/pipe.json && exit {exit}\"]\n",
            dir = dir.path().display().to_string(),
            results = results.display(),
        )
    };
    let config = dir.path().join("testmeter.toml");
    std::fs::write(
        &config,
        format!(
            "plugins_dir = {:?}\n[prometheus]\nlisten = \"127.0.0.1:{port}\"\n{}{}",
            crate::support::built_plugins_dir().display().to_string(),
            suite("harness", 0),
            suite("crashed", 3),
        ),
    )
    .expect("write config");
    let (_agent, exposition) = crate::support::run_until_suites_ran(&config, port, 2);
    let counted = crate::support::lines_starting_with(
        &exposition,
        &[
            "testmeter_suite_runs_total{",
            "testmeter_artifacts_dropped_total{",
            "testmeter_suite_tests{outcome=\"passed\"",
            "genesis_osworld_tasks_passed",
        ],
    );
    insta::assert_yaml_snapshot!(counted);
    let doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&results).expect("fixture")).expect("json");
    assert_eq!(
        crate::support::exposition_value(&exposition, "genesis_osworld_tasks_passed"),
        doc["passed_tasks"].as_f64(),
        "derived from the artifact the recursive glob found"
    );
}
