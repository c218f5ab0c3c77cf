//! Rust libtest's terminal output, alone or as `cargo test` prints it: one suite per test
//! binary (`Running tests/x.rs (...)`, `Doc-tests crate`), `test name ... ok|FAILED|ignored`
//! lines, the captured output of failures, and each binary's `test result:` line.
//!
//! Two ways a run ends early are reported as partial: a binary that printed `running N tests`
//! but never its result line (it crashed), and `cargo test` without `--no-fail-fast`, which
//! stops at the first failing binary and never runs the ones after it.

use std::collections::HashMap;
use std::time::Duration;

use quick_junit::{NonSuccessKind, TestCase, TestCaseStatus};

use crate::error::ParseError;
use crate::parsed::Parsed;
use crate::text::{non_blank, panic_message, strip_ansi, Suites};

/// A test line whose outcome has been read.
#[derive(Debug)]
struct Outcome {
    suite: String,
    name: String,
    status: Status,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Status {
    Ok,
    Failed,
    Ignored(Option<String>),
}

pub(crate) fn parse(text: &str) -> Result<Parsed, ParseError> {
    let mut outcomes: Vec<Outcome> = Vec::new();
    let mut outputs: HashMap<(String, String), String> = HashMap::new();
    let mut times: Vec<(String, Duration)> = Vec::new();
    let mut binary = String::new();
    let mut binaries = 0usize;
    let mut block_open = false;
    let mut crashed: Vec<String> = Vec::new();
    let mut pending: Option<String> = None;
    let mut capture: Option<(String, String)> = None;
    let mut stopped_after: Option<String> = None;
    let mut no_fail_fast_summary = false;
    // A binary announced by cargo (`Running ...`) that has not printed `running N tests` yet.
    let mut announced: Option<String> = None;
    // cargo went on after a failing binary, so it runs with --no-fail-fast and must end with
    // its `error: N targets failed` summary.
    let mut continued_after_failure = false;
    let mut seen_any = false;
    let mut order: Vec<String> = Vec::new();
    for raw in text.lines() {
        let line = strip_ansi(raw);
        let line = line.trim_end();
        let trimmed = line.trim_start();
        if let Some(rest) = trimmed.strip_prefix("Running ") {
            if block_open {
                crashed.push(binary.clone());
            }
            binary = rest
                .rsplit_once(" (")
                .map_or(rest, |(name, _)| name)
                .to_owned();
            binaries += 1;
            block_open = false;
            continued_after_failure |= stopped_after.take().is_some();
            announced = Some(binary.clone());
            continue;
        }
        if let Some(name) = trimmed.strip_prefix("Doc-tests ") {
            if block_open {
                crashed.push(binary.clone());
            }
            binary = format!("doc-tests {name}");
            binaries += 1;
            block_open = false;
            continued_after_failure |= stopped_after.take().is_some();
            announced = Some(binary.clone());
            continue;
        }
        if let Some(count) = line.strip_prefix("running ") {
            if count.trim_end_matches(['s']).ends_with(" test") {
                if block_open {
                    crashed.push(binary.clone());
                }
                block_open = true;
                seen_any = true;
                announced = None;
                if binary.is_empty() {
                    binary = "tests".to_owned();
                }
                order.push(binary.clone());
                continue;
            }
        }
        if let Some(rest) = line.strip_prefix("test result: ") {
            block_open = false;
            if let Some(time) = rest
                .rsplit_once("finished in ")
                .and_then(|(_, t)| t.trim_end_matches('s').parse::<f64>().ok())
                .and_then(|t| Duration::try_from_secs_f64(t).ok())
            {
                times.push((binary.clone(), time));
            }
            capture = None;
            continue;
        }
        if let Some(rest) = line.strip_prefix("error: test failed, to rerun pass ") {
            stopped_after = Some(rest.trim_matches('`').to_owned());
            continue;
        }
        if line.starts_with("error: ") && line.contains(" target") && line.ends_with("failed:") {
            no_fail_fast_summary = true;
            continue;
        }
        if let Some(rest) = line.strip_prefix("---- ") {
            if let Some(name) = rest
                .strip_suffix(" stdout ----")
                .or_else(|| rest.strip_suffix(" stderr ----"))
            {
                if let Some((previous, body)) = capture.take() {
                    outputs.insert((binary.clone(), previous), body);
                }
                capture = Some((name.to_owned(), String::new()));
                continue;
            }
        }
        if line == "failures:" || line == "successes:" {
            if let Some((name, body)) = capture.take() {
                outputs.insert((binary.clone(), name), body);
            }
            continue;
        }
        if let Some((_, body)) = &mut capture {
            body.push_str(line);
            body.push('\n');
            continue;
        }
        if let Some((name, status)) = test_line(line) {
            outcomes.push(Outcome {
                suite: binary.clone(),
                name,
                status,
            });
            pending = None;
            continue;
        }
        if let Some(name) = pending_test(line) {
            // `--nocapture` output can split a test line: the outcome follows later.
            pending = Some(name);
            continue;
        }
        if let (Some(name), Some(status)) = (&pending, status_word(trimmed)) {
            outcomes.push(Outcome {
                suite: binary.clone(),
                name: name.clone(),
                status,
            });
            pending = None;
        }
    }
    if !seen_any {
        return Err(ParseError::NotThisFormat {
            format: "libtest text",
            reason: "no `running N tests` line".to_owned(),
        });
    }
    if block_open {
        crashed.push(binary.clone());
    }
    let mut suites = Suites::default();
    for name in &order {
        suites.suite(name);
    }
    for outcome in outcomes {
        let output = outputs.remove(&(outcome.suite.clone(), outcome.name.clone()));
        let status = match outcome.status {
            Status::Ok => TestCaseStatus::success(),
            Status::Failed => {
                let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
                if let Some(message) = output.as_deref().and_then(panic_message) {
                    status.set_message(message);
                }
                if let Some(body) = output.clone().and_then(non_blank) {
                    status.set_description(body);
                }
                status
            }
            Status::Ignored(reason) => {
                let mut status = TestCaseStatus::skipped();
                if let Some(reason) = reason {
                    status.set_message(reason);
                }
                status
            }
        };
        let mut case = TestCase::new(outcome.name, status);
        case.set_classname(outcome.suite.as_str());
        if let Some(output) = output {
            case.set_system_out(output);
        }
        suites.push(&outcome.suite, case);
    }
    for (name, time) in times {
        suites.suite(&name).set_time(time);
    }
    let mut reasons = Vec::new();
    if let Some(binary) = announced {
        reasons.push(format!(
            "test binary {binary} started but the output ends before it printed anything"
        ));
    }
    if continued_after_failure && !no_fail_fast_summary {
        reasons.push(
            "cargo test output ends before its final `error: N targets failed` summary".to_owned(),
        );
    }
    for binary in &crashed {
        reasons.push(format!(
            "test binary {binary} ended before printing its result line (it crashed or was killed)"
        ));
    }
    if let Some(target) = stopped_after.filter(|_| !no_fail_fast_summary && binaries > 0) {
        reasons.push(format!(
            "cargo test stopped after the failing test binary `{target}`; binaries after it did not run (pass --no-fail-fast to run them all)"
        ));
    }
    let partial = (!reasons.is_empty()).then(|| reasons.join("; "));
    Ok(suites.finish("cargo test", partial))
}

/// `test name ... ok`, `test name - should panic ... ok`, `test name ... ignored, reason`.
fn test_line(line: &str) -> Option<(String, Status)> {
    let rest = line.strip_prefix("test ")?;
    let (name, outcome) = rest.rsplit_once(" ... ")?;
    let status = status_word(outcome)?;
    let name = name.strip_suffix(" - should panic").unwrap_or(name);
    Some((name.to_owned(), status))
}

/// `test name ... ` with the outcome still to come.
fn pending_test(line: &str) -> Option<String> {
    let rest = line.strip_prefix("test ")?;
    let name = rest.strip_suffix(" ...")?;
    Some(
        name.strip_suffix(" - should panic")
            .unwrap_or(name)
            .to_owned(),
    )
}

fn status_word(outcome: &str) -> Option<Status> {
    let outcome = outcome.trim();
    Some(match outcome {
        "ok" => Status::Ok,
        "FAILED" => Status::Failed,
        "ignored" => Status::Ignored(None),
        _ => {
            let reason = outcome.strip_prefix("ignored, ")?;
            Status::Ignored(Some(reason.to_owned()))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_lines() {
        assert_eq!(
            test_line("test a::b - should panic ... ok"),
            Some(("a::b".to_owned(), Status::Ok))
        );
        assert_eq!(
            test_line("test x ... ignored, needs a db"),
            Some((
                "x".to_owned(),
                Status::Ignored(Some("needs a db".to_owned()))
            ))
        );
        assert_eq!(test_line("test x ... bench: 10 ns/iter"), None);
    }
}
