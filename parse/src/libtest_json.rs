//! Rust libtest's JSON events (`cargo test -- -Z unstable-options --format json`): one
//! suite per `suite started` event, named after cargo's `Running ...` line when stderr was
//! captured too. Lines that are not JSON events are skipped. A suite or test that started
//! and never finished makes the run partial.

use std::time::Duration;

use quick_junit::{NonSuccessKind, TestCase, TestCaseStatus};
use serde::Deserialize;

use crate::error::ParseError;
use crate::handing::{Ending, Out, TextParser};
use crate::text::{non_blank, panic_message, Text};

#[derive(Debug, Deserialize)]
struct Event {
    #[serde(rename = "type")]
    kind: String,
    event: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    exec_time: Option<f64>,
    #[serde(default)]
    stdout: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

/// Reads libtest's JSON events.
pub(crate) struct LibtestJson;

impl TextParser for LibtestJson {
    type Attempt = TestCase;
    const NAME: &'static str = "cargo test";
    // A `started` and an `ok` event: about 100 bytes a test.
    const BYTES_PER_TEST: Option<u64> = Some(96);

    fn read(&self, text: &Text<'_>, out: &mut dyn Out<TestCase>) -> Result<Ending, ParseError> {
        text.read(|lines| read(lines, out))
    }
}

fn read(
    lines: &mut dyn Iterator<Item = std::borrow::Cow<'_, str>>,
    suites: &mut dyn Out<TestCase>,
) -> Result<Ending, ParseError> {
    let mut next_name: Option<String> = None;
    let mut suite: Option<String> = None;
    let mut started: Vec<String> = Vec::new();
    let mut numbered = 0usize;
    let mut events = 0usize;
    let mut reasons: Vec<String> = Vec::new();
    for line in lines {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("Running ") {
            next_name = Some(rest.rsplit_once(" (").map_or(rest, |(n, _)| n).to_owned());
            continue;
        }
        if let Some(rest) = line.strip_prefix("Doc-tests ") {
            next_name = Some(format!("doc-tests {rest}"));
            continue;
        }
        if !line.starts_with('{') {
            continue;
        }
        let Ok(event) = serde_json::from_str::<Event>(line) else {
            continue;
        };
        events += 1;
        match (event.kind.as_str(), event.event.as_str()) {
            ("suite", "started") => {
                if let Some(open) = suite.take() {
                    reasons.push(format!("suite {open} never finished"));
                }
                numbered += 1;
                let name = next_name
                    .take()
                    .unwrap_or_else(|| format!("suite {numbered}"));
                suites.suite(&name);
                suite = Some(name);
            }
            ("suite", _) => {
                if let (Some(name), Some(time)) = (&suite, event.exec_time) {
                    if let Ok(time) = Duration::try_from_secs_f64(time) {
                        suites.suite(name).set_time(time);
                    }
                }
                for test in started.drain(..) {
                    reasons.push(format!("test {test} started and never finished"));
                }
                suite = None;
            }
            ("test", "started") => {
                if let Some(name) = event.name {
                    started.push(name);
                }
            }
            ("test", outcome) => {
                let Some(name) = event.name else { continue };
                started.retain(|s| *s != name);
                let status = match outcome {
                    "ok" => TestCaseStatus::success(),
                    "ignored" => {
                        let mut status = TestCaseStatus::skipped();
                        if let Some(message) = event.message.clone() {
                            status.set_message(message);
                        }
                        status
                    }
                    "failed" | "timeout" => {
                        let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
                        let message = event
                            .message
                            .clone()
                            .or_else(|| event.stdout.as_deref().and_then(panic_message));
                        if let Some(message) = message {
                            status.set_message(message);
                        }
                        if outcome == "timeout" {
                            status.set_type("timeout");
                        }
                        if let Some(stdout) = event.stdout.clone().and_then(non_blank) {
                            status.set_description(stdout);
                        }
                        status
                    }
                    // `bench` results and future events are not test outcomes.
                    _ => continue,
                };
                let suite_name = suite.clone().unwrap_or_else(|| "tests".to_owned());
                let mut case = TestCase::new(name, status);
                case.set_classname(suite_name.as_str());
                if let Some(time) = event
                    .exec_time
                    .and_then(|t| Duration::try_from_secs_f64(t).ok())
                {
                    case.set_time(time);
                }
                if let Some(stdout) = event.stdout {
                    case.set_system_out(stdout);
                }
                suites.attempt(&suite_name, case);
            }
            _ => {}
        }
    }
    if events == 0 {
        return Err(ParseError::NotThisFormat {
            format: "libtest JSON",
            reason: "no libtest JSON event lines".to_owned(),
        });
    }
    if let Some(open) = suite {
        reasons.push(format!("suite {open} never finished"));
    }
    for test in started {
        reasons.push(format!("test {test} started and never finished"));
    }
    Ok(Ending::of(reasons))
}
