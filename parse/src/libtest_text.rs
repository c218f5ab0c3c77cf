//! Rust libtest's terminal output, alone or as `cargo test` prints it: one suite per test
//! binary (`Running tests/x.rs (...)`, `Doc-tests crate`), `test name ... ok|FAILED|ignored`
//! lines, the captured output of failures, and each binary's `test result:` line.
//!
//! Two ways a run ends early are reported as partial: a binary that printed `running N tests`
//! but never its result line (it crashed), and `cargo test` without `--no-fail-fast`, which
//! stops at the first failing binary and never runs the ones after it.

use std::hash::BuildHasher;
use std::time::Duration;

use quick_junit::{NonSuccessKind, TestCase, TestCaseStatus};

use crate::error::ParseError;
use crate::handing::{Ending, Out, TextParser};
use crate::text::{non_blank, panic_message, strip_ansi, Index, Span, Spans, Text};

/// Reads libtest's terminal output.
pub(crate) struct LibtestText;

impl TextParser for LibtestText {
    type Attempt = TestCase;
    const NAME: &'static str = "cargo test";
    // `test a::b ... ok`: some 20 bytes a test at the least.
    const BYTES_PER_TEST: Option<u64> = Some(24);

    /// Two passes: the first notes where libtest prints each test's captured output (after
    /// all of a binary's test lines), the second hands each test on with its output, read
    /// again from there. Neither holds the output of tests other than the current one.
    fn read(&self, text: &Text<'_>, out: &mut dyn Out<TestCase>) -> Result<Ending, ParseError> {
        let mut captured = Outputs::default();
        text.read_at(|lines| scan(lines, &mut Pass::Capture(&mut captured)))?;
        captured.spans.seal();
        let mut pass = Pass::Hand {
            captured,
            spans: text.spans(),
            out,
        };
        text.read_at(|lines| scan(lines, &mut pass))
    }
}

/// Where each test's captured output is: the span from its `---- name stdout ----` header
/// to the line that ends it, by the hash of its binary and name.
#[derive(Default)]
struct Outputs {
    spans: Index<Span>,
    hasher: foldhash::fast::FixedState,
}

impl Outputs {
    fn key(&self, binary: &str, name: &str) -> u64 {
        self.hasher.hash_one((binary, name))
    }
}

/// What a pass over the text does.
enum Pass<'t, 'a> {
    /// Notes where the captured output of tests is.
    Capture(&'a mut Outputs),
    /// Hands every test on, with the output the first pass found.
    Hand {
        captured: Outputs,
        spans: Spans<'t>,
        out: &'a mut dyn Out<TestCase>,
    },
}

impl Pass<'_, '_> {
    /// The captured output of test `name` of `binary` is at `span`.
    fn captured(&mut self, binary: &str, name: &str, span: Span) {
        if let Pass::Capture(outputs) = self {
            let key = outputs.key(binary, name);
            outputs.spans.insert(key, span);
        }
    }

    fn suite(&mut self, name: &str) -> Option<&mut quick_junit::TestSuite> {
        match self {
            Pass::Capture(_) => None,
            Pass::Hand { out, .. } => Some(out.suite(name)),
        }
    }

    /// One test's outcome, with its captured output.
    fn outcome(&mut self, suite: &str, name: String, outcome: Status) -> Result<(), ParseError> {
        let Pass::Hand {
            captured,
            spans,
            out,
        } = self
        else {
            return Ok(());
        };
        let output = match captured.spans.take(captured.key(suite, &name)) {
            Some(span) => read_capture(spans, span, &name)?,
            None => None,
        };
        let status = match outcome {
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
        let mut case = TestCase::new(name, status);
        case.set_classname(suite);
        if let Some(output) = output {
            case.set_system_out(output);
        }
        out.attempt(suite, case);
        Ok(())
    }
}

/// The captured output of test `name` at `span`: the lines after its header, as libtest
/// printed them without colours. `None` when the header there is another test's (the hashes
/// of two tests' names met).
fn read_capture(
    spans: &mut Spans<'_>,
    span: Span,
    name: &str,
) -> Result<Option<String>, ParseError> {
    let lines = spans.lines(span)?;
    let Some((header, body)) = lines.split_first() else {
        return Ok(None);
    };
    if capture_header(strip_ansi(header).trim_end()) != Some(name) {
        return Ok(None);
    }
    let mut output = String::new();
    for line in body {
        output.push_str(strip_ansi(line).trim_end());
        output.push('\n');
    }
    Ok(Some(output))
}

/// `---- name stdout ----` (or stderr): where a test's captured output starts.
fn capture_header(line: &str) -> Option<&str> {
    let rest = line.strip_prefix("---- ")?;
    rest.strip_suffix(" stdout ----")
        .or_else(|| rest.strip_suffix(" stderr ----"))
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Status {
    Ok,
    Failed,
    Ignored(Option<String>),
}

fn scan(
    lines: &mut dyn Iterator<Item = (u64, std::borrow::Cow<'_, str>)>,
    pass: &mut Pass<'_, '_>,
) -> Result<Ending, ParseError> {
    let mut binary = String::new();
    let mut binaries = 0usize;
    let mut block_open = false;
    let mut crashed: Vec<String> = Vec::new();
    let mut pending: Option<String> = None;
    // The test whose captured output is being read, with where its header is.
    let mut capture: Option<(String, u64)> = None;
    let mut stopped_after: Option<String> = None;
    let mut no_fail_fast_summary = false;
    // A binary announced by cargo (`Running ...`) that has not printed `running N tests` yet.
    let mut announced: Option<String> = None;
    // cargo went on after a failing binary, so it runs with --no-fail-fast and must end with
    // its `error: N targets failed` summary.
    let mut continued_after_failure = false;
    let mut seen_any = false;
    for (at, raw) in lines {
        let line = strip_ansi(&raw);
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
                pass.suite(&binary);
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
                if let Some(suite) = pass.suite(&binary) {
                    suite.set_time(time);
                }
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
        if let Some(name) = capture_header(line) {
            if let Some((previous, start)) = capture.take() {
                pass.captured(&binary, &previous, Span { at: start, end: at });
            }
            capture = Some((name.to_owned(), at));
            continue;
        }
        if line == "failures:" || line == "successes:" {
            if let Some((name, start)) = capture.take() {
                pass.captured(&binary, &name, Span { at: start, end: at });
            }
            continue;
        }
        if capture.is_some() {
            continue;
        }
        if let Some((name, status)) = test_line(line) {
            pass.outcome(&binary, name, status)?;
            pending = None;
            continue;
        }
        if let Some(name) = pending_test(line) {
            // `--nocapture` output can split a test line: the outcome follows later.
            pending = Some(name);
            continue;
        }
        if let Some(status) = pending.as_ref().and(status_word(trimmed)) {
            if let Some(name) = pending.take() {
                pass.outcome(&binary, name, status)?;
            }
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
    Ok(Ending::of(reasons))
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
