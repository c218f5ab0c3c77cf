//! `go test -json` events (also gotestsum's `--jsonfile`, which holds every `--rerun-fails`
//! run): one suite per package, one case per test and subtest, each `run` of a test one
//! attempt. A package-level `skip` (a package with no test files) is not a test. A package
//! whose binary panicked or failed to build, and a test that started but never finished,
//! make the run partial: tests after the crash never ran.

use std::collections::HashMap;
use std::time::Duration;

use quick_junit::{NonSuccessKind, TestCase, TestCaseStatus};
use serde::Deserialize;

use crate::attempts::EarlierPass;
use crate::error::ParseError;
use crate::handing::{Ending, Out, TextParser};
use crate::text::{non_blank, Text};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Event {
    action: String,
    #[serde(default)]
    package: Option<String>,
    #[serde(default)]
    test: Option<String>,
    #[serde(default)]
    elapsed: Option<f64>,
    #[serde(default)]
    output: Option<String>,
}

/// Output of a test's current attempt.
#[derive(Debug, Default)]
struct Running {
    output: String,
}

/// Reads `go test -json` events.
pub(crate) struct GoJson;

impl TextParser for GoJson {
    type Attempt = TestCase;
    const NAME: &'static str = "go test";
    // `=== RUN`, `--- PASS` and the pass event: about 300 bytes a test.
    const BYTES_PER_TEST: Option<u64> = Some(256);
    // go test says how every attempt ended (pass, fail or skip), with -count=N or a rerun.
    const EARLIER_PASS: EarlierPass = EarlierPass::Passed;

    fn read(&self, text: &Text<'_>, out: &mut dyn Out<TestCase>) -> Result<Ending, ParseError> {
        text.read(|lines| read(lines, out))
    }
}

fn read(
    lines: &mut dyn Iterator<Item = std::borrow::Cow<'_, str>>,
    suites: &mut dyn Out<TestCase>,
) -> Result<Ending, ParseError> {
    let mut running: HashMap<(String, String), Running> = HashMap::new();
    let mut packages = Packages::default();
    let mut reasons: Vec<String> = Vec::new();
    let mut events = 0usize;
    for line in lines {
        let line = line.trim();
        if !line.starts_with('{') {
            continue;
        }
        let Ok(event) = serde_json::from_str::<Event>(line) else {
            continue;
        };
        events += 1;
        let package = event.package.clone().unwrap_or_default();
        let Some(test) = event.test.clone() else {
            packages.event(suites, &mut reasons, &package, &event);
            continue;
        };
        let key = (package.clone(), test.clone());
        match event.action.as_str() {
            "run" => {
                suites.suite(&package);
                running.insert(key, Running::default());
            }
            "output" => {
                if let (Some(attempt), Some(output)) = (running.get_mut(&key), &event.output) {
                    attempt.output.push_str(output);
                }
            }
            "pass" | "fail" | "skip" => {
                let attempt = running.remove(&key).unwrap_or_default();
                let status = match event.action.as_str() {
                    "pass" => TestCaseStatus::success(),
                    "skip" => {
                        let mut status = TestCaseStatus::skipped();
                        if let Some(message) = first_message(&attempt.output) {
                            status.set_message(message);
                        }
                        status
                    }
                    _ => {
                        if attempt.output.lines().any(|l| l.starts_with("panic: ")) {
                            packages.panicked.insert(package.clone(), test.clone());
                        }
                        let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
                        if let Some(message) = first_message(&attempt.output) {
                            status.set_message(message);
                        }
                        if let Some(output) = non_blank(attempt.output.clone()) {
                            status.set_description(output);
                        }
                        status
                    }
                };
                let mut case = TestCase::new(test, status);
                case.set_classname(package.as_str());
                if let Some(time) = event
                    .elapsed
                    .and_then(|t| Duration::try_from_secs_f64(t).ok())
                {
                    case.set_time(time);
                }
                // Passing tests only print go's own `=== RUN`/`--- PASS` lines; keep output
                // where it explains something.
                if event.action != "pass" {
                    if let Some(output) = non_blank(attempt.output) {
                        case.set_system_out(output);
                    }
                }
                suites.attempt(&package, case);
            }
            // start, pause, cont, bench: no outcome.
            _ => {}
        }
    }
    if events == 0 {
        return Err(ParseError::NotThisFormat {
            format: "go test JSON",
            reason: "no go test JSON event lines".to_owned(),
        });
    }
    let mut unfinished: Vec<_> = running.into_keys().collect();
    unfinished.sort();
    for (package, test) in unfinished {
        reasons.push(format!("{package}: {test} started and never finished"));
    }
    Ok(Ending::of(reasons))
}

/// What is known about each package beyond its tests.
#[derive(Debug, Default)]
struct Packages {
    /// Output printed outside any test.
    output: HashMap<String, String>,
    /// The test whose failure output shows a panic, per package.
    panicked: HashMap<String, String>,
}

impl Packages {
    /// Events without a test: the package's own output and result.
    fn event(
        &mut self,
        suites: &mut dyn Out<TestCase>,
        reasons: &mut Vec<String>,
        package: &str,
        event: &Event,
    ) {
        match event.action.as_str() {
            "output" => {
                if let Some(output) = &event.output {
                    self.output
                        .entry(package.to_owned())
                        .or_default()
                        .push_str(output);
                }
            }
            "pass" | "fail" => {
                let suite = suites.suite(package);
                if let Some(time) = event
                    .elapsed
                    .and_then(|t| Duration::try_from_secs_f64(t).ok())
                {
                    suite.set_time(time);
                }
                let output = self.output.remove(package).unwrap_or_default();
                if event.action == "fail" {
                    if let Some(test) = self.panicked.remove(package) {
                        reasons.push(format!(
                            "the test binary of {package} panicked in {test}; tests after it did not run"
                        ));
                    } else if output.contains("[build failed]") || output.contains("[setup failed]")
                    {
                        reasons.push(format!("{package} failed to build; none of its tests ran"));
                    }
                }
                if let Some(output) = non_blank(output) {
                    suite.set_system_out(output);
                }
            }
            // A package without test files: `skip` with no test. It has no tests to count.
            "skip" => {
                suites.suite(package);
                self.output.remove(package);
            }
            _ => {}
        }
    }
}

/// The message of a failed or skipped test: the first `file_test.go:12: message` line it
/// logged, else its first line of output, without go's indentation.
fn first_message(output: &str) -> Option<String> {
    let lines = || {
        output.lines().map(str::trim).filter(|line| {
            !line.is_empty() && !line.starts_with("=== ") && !line.starts_with("--- ")
        })
    };
    let logged = lines().find(|line| {
        line.split_once(": ")
            .is_some_and(|(at, _)| at.contains("_test.go:"))
    });
    logged.or_else(|| lines().next()).map(str::to_owned)
}
