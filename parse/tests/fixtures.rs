//! Every real runner output under tests/fixtures/ parsed into the model, each with a golden
//! snapshot of the result, and format detection checked against the known format.

use std::path::PathBuf;

use quick_junit::{NonSuccessKind, TestCaseStatus};
use serde::Serialize;
use testmeter_parse::{parse_file, Format, Limits, Parsed, Summary};

fn fixture(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures")
        .join(path)
}

#[derive(Serialize)]
struct View {
    format: Format,
    partial: Option<String>,
    summary: Summary,
    suites: Vec<SuiteView>,
}

#[derive(Serialize)]
struct SuiteView {
    name: String,
    tests: usize,
    failures: usize,
    errors: usize,
    skipped: usize,
    time: Option<f64>,
    properties: usize,
    cases: Vec<CaseView>,
}

#[derive(Serialize)]
struct CaseView {
    classname: Option<String>,
    name: String,
    outcome: &'static str,
    attempts: usize,
    flaky: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    kind: Option<String>,
    time: Option<f64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    properties: Vec<(String, String)>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    system_out: bool,
}

/// First line of a message, shortened: enough to show the right text was picked.
fn short(text: &str) -> String {
    let line = text
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim();
    if line.chars().count() > 90 {
        format!("{}…", line.chars().take(90).collect::<String>())
    } else {
        line.to_owned()
    }
}

fn view(format: Format, parsed: &Parsed) -> View {
    View {
        format,
        partial: parsed.partial.clone(),
        summary: Summary::of(&parsed.report),
        suites: parsed
            .report
            .test_suites
            .iter()
            .map(|suite| SuiteView {
                name: suite.name.as_str().to_owned(),
                tests: suite.tests,
                failures: suite.failures,
                errors: suite.errors,
                skipped: suite.skipped,
                time: suite.time.map(|t| t.as_secs_f64()),
                properties: suite.properties.len(),
                cases: suite
                    .test_cases
                    .iter()
                    .map(|case| {
                        let (outcome, attempts, flaky, message, kind) = match &case.status {
                            TestCaseStatus::Success { flaky_runs } => (
                                "passed",
                                1 + flaky_runs.len(),
                                !flaky_runs.is_empty(),
                                None,
                                None,
                            ),
                            TestCaseStatus::NonSuccess {
                                kind,
                                message,
                                ty,
                                description,
                                reruns,
                            } => (
                                match kind {
                                    NonSuccessKind::Failure => "failed",
                                    NonSuccessKind::Error => "errored",
                                },
                                1 + reruns.runs.len(),
                                false,
                                message.as_ref().or(description.as_ref()),
                                ty.as_ref(),
                            ),
                            TestCaseStatus::Skipped {
                                message,
                                ty,
                                description,
                            } => (
                                "skipped",
                                1,
                                false,
                                message.as_ref().or(description.as_ref()),
                                ty.as_ref(),
                            ),
                        };
                        CaseView {
                            classname: case.classname.as_ref().map(|c| c.as_str().to_owned()),
                            name: case.name.as_str().to_owned(),
                            outcome,
                            attempts,
                            flaky,
                            message: message.map(|m| short(m.as_str())),
                            kind: kind.map(|k| k.as_str().to_owned()),
                            time: case.time.map(|t| t.as_secs_f64()),
                            properties: case
                                .properties
                                .iter()
                                .map(|p| (p.name.as_str().to_owned(), p.value.as_str().to_owned()))
                                .collect(),
                            system_out: case.system_out.is_some(),
                        }
                    })
                    .collect(),
            })
            .collect(),
    }
}

/// Parses a fixture with format detection, checks the detected format, and snapshots it.
fn check(path: &str, expected: Format) {
    let file = fixture(path);
    let head = std::fs::read(&file).expect("fixture exists");
    assert_eq!(
        Format::detect(&head),
        Some(expected),
        "detected format of {path}"
    );
    let parsed = parse_file(&file, Format::Auto, Limits::default()).expect("fixture parses");
    let explicit = parse_file(&file, expected, Limits::default()).expect("fixture parses");
    assert_eq!(
        parsed, explicit,
        "auto and explicit format agree for {path}"
    );
    let name = path.replace(['/', '.'], "_");
    insta::assert_yaml_snapshot!(name, view(expected, &parsed));
}

macro_rules! fixtures {
    ($($test:ident: $path:literal => $format:ident,)*) => {
        $(
            #[test]
            fn $test() {
                check($path, Format::$format);
            }
        )*
    };
}

fixtures! {
    pytest_xunit1: "pytest/xunit1.xml" => Junit,
    pytest_xunit2: "pytest/xunit2.xml" => Junit,
    pytest_reruns_junit: "pytest/reruns.xml" => Junit,
    pytest5_bare_testsuite_root: "pytest/legacy-pytest5.xml" => Junit,
    pytest_verbose_text: "pytest/verbose.txt" => PytestText,
    pytest_verbose_color_text: "pytest/verbose-color.txt" => PytestText,
    pytest_quiet_text: "pytest/quiet.txt" => PytestText,
    pytest_reruns_text: "pytest/reruns-verbose.txt" => PytestText,
    pytest_xdist_verbose: "pytest/xdist-verbose.txt" => PytestText,
    surefire_flaky_and_reruns: "surefire/TEST-demo.CalculatorTest.xml" => Junit,
    surefire_reruns: "surefire/TEST-demo.StringsTest.xml" => Junit,
    cargo_test_fail_fast: "libtest/cargo-test.txt" => LibtestText,
    cargo_test_no_fail_fast: "libtest/cargo-test-no-fail-fast.txt" => LibtestText,
    libtest_json: "libtest/libtest.json" => LibtestJson,
    libtest_json_with_stderr: "libtest/libtest-json-with-stderr.txt" => LibtestJson,
    nextest_junit_retries: "libtest/nextest-junit.xml" => Junit,
    nextest_junit_without_ignored: "libtest/nextest-junit-default.xml" => Junit,
    go_test_json: "gotest/go-test.json" => GoTestJson,
    go_test_json_panic: "gotest/go-test-panic.json" => GoTestJson,
    go_test_json_count2: "gotest/go-test-count2.json" => GoTestJson,
    gotestsum_rerun_json: "gotest/gotestsum-rerun.json" => GoTestJson,
    gotestsum_rerun_junit: "gotest/gotestsum-junit.xml" => Junit,
    node_junit: "node/node-junit.xml" => Junit,
    node_tap: "node/node.tap" => Tap,
    node_tap_14: "node-tap/node-tap14.tap" => Tap,
    jest_junit: "jest/jest-junit.xml" => Junit,
    playwright_junit: "playwright/playwright-junit.xml" => Junit,
    tap_basic: "tap/basic.tap" => Tap,
    tap_dies_after_plan: "tap/dies.tap" => Tap,
    tap_subtests: "tap/subtests.tap" => Tap,
    tap_pass: "tap/pass.tap" => Tap,
    tap_unnamed: "tap/unnamed.tap" => Tap,
    prove_verbose: "tap/prove-verbose.txt" => Tap,
    osworld_pytest_junit: "osworld/junit.xml" => Junit,
}
