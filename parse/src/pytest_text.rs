//! pytest's terminal output, for suites that cannot write XML: the `-v` progress lines
//! (`path::test STATUS [ 42%]`, also under xdist), the `-rA` short summary, and the failure
//! sections for messages. pytest-rerunfailures' `RERUN` lines become attempts.
//!
//! Without `-v`, only the `-rA` summary names tests; skips there name a file and line, not a
//! test. Output without pytest's final `== N passed in 1.2s ==` line is a partial run.

use std::hash::BuildHasher;

use quick_junit::{NonSuccessKind, TestCase, TestCaseStatus, XmlString};

use crate::attempts::{merge_attempts, EarlierPass};
use crate::error::ParseError;
use crate::handing::{Ending, Out, TextParser};
use crate::text::{non_blank, strip_ansi, Index, Span, Spans, Text};

/// Outcome words pytest prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Word {
    Passed,
    Failed,
    Error,
    Skipped,
    Xfail,
    Xpass,
    Rerun,
}

impl Word {
    fn of(word: &str) -> Option<Word> {
        Some(match word {
            "PASSED" => Word::Passed,
            "FAILED" => Word::Failed,
            "ERROR" => Word::Error,
            "SKIPPED" => Word::Skipped,
            "XFAIL" => Word::Xfail,
            "XPASS" => Word::Xpass,
            "RERUN" => Word::Rerun,
            _ => return None,
        })
    }
}

/// True when the text has pytest progress or summary lines.
pub(crate) fn looks_like(text: &str) -> bool {
    text.lines().take(2000).any(|line| {
        let line = strip_ansi(line);
        progress_line(&line).is_some() || summary_line(&line).is_some()
    })
}

/// One reported outcome for a node id.
#[derive(Debug)]
struct Report {
    node_id: String,
    word: Word,
    /// The reason on the line itself.
    reason: Option<String>,
    /// The `-rA` summary's message for this node id and outcome (not for a pass).
    summary: Option<String>,
    /// The body of the FAILURES or ERRORS section about it (for a failure or an error).
    section: Option<String>,
}

/// What pytest reports of one test: an outcome line (progress or summary), or, without `-v`,
/// one of the skips the summary counts per location.
#[derive(Debug)]
pub(crate) struct Attempt {
    classname: String,
    name: String,
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    Line(Report),
    Skip(Box<TestCase>),
}

/// Reads pytest's terminal output in two passes: [`PytestText::prepare`] notes where pytest
/// prints what it prints after the tests ran (failure sections, `-rA` summary messages) and
/// keeps the skip locations; each read then hands the outcome lines on, with their sections
/// and messages read again from where they are. Neither pass holds more than one section.
pub(crate) struct PytestText {
    /// Failure and error sections, from their title line, by the hash of their title.
    sections: Index<Span>,
    /// Where the `-rA` summary line with a message is, by the hash of its node id and outcome.
    messages: Index<u64>,
    hasher: foldhash::fast::FixedState,
    /// Without `-v`: `SKIPPED [n] location: reason` lines.
    skipped: Vec<(String, usize, String)>,
    /// Whether there are `-v` progress lines: the outcomes come from them, else from the
    /// summary.
    progress: bool,
}

impl PytestText {
    /// The first pass.
    pub(crate) fn prepare(text: &Text<'_>) -> Result<Self, ParseError> {
        text.read_at(|lines| {
            let mut scan = Scan::noting_sections();
            let mut prepared = PytestText {
                sections: Index::default(),
                messages: Index::default(),
                hasher: foldhash::fast::FixedState::default(),
                skipped: Vec::new(),
                progress: false,
            };
            let mut summary = false;
            for (at, raw) in lines {
                match scan.line(at, &raw) {
                    Some(Seen::Progress(_)) => prepared.progress = true,
                    Some(Seen::Skipped(location, count, reason)) => {
                        prepared.skipped.push((location, count, reason));
                    }
                    Some(Seen::Summary(report)) => {
                        summary = true;
                        if report.reason.is_some() {
                            let key = prepared.message_key(&report.node_id, report.word);
                            prepared.messages.insert(key, at);
                        }
                    }
                    None => {}
                }
            }
            if !prepared.progress && !summary {
                return Err(ParseError::NotThisFormat {
                    format: "pytest text",
                    reason: "no `path::test STATUS` lines and no -rA summary".to_owned(),
                });
            }
            prepared.sections = scan.finish(&prepared.hasher);
            prepared.messages.seal();
            Ok(prepared)
        })
    }

    fn message_key(&self, node_id: &str, word: Word) -> u64 {
        self.hasher.hash_one((node_id, word))
    }

    /// The `-rA` summary's message for `node_id` and `word`, read again.
    fn message(
        &self,
        spans: &mut Spans<'_>,
        node_id: &str,
        word: Word,
    ) -> Result<Option<String>, ParseError> {
        let Some(&at) = self.messages.get(self.message_key(node_id, word)) else {
            return Ok(None);
        };
        let line = spans.line(at)?;
        // Another node's line when two hashes met.
        Ok(summary_line(strip_ansi(&line).trim_end())
            .filter(|report| report.node_id == node_id && report.word == word)
            .and_then(|report| report.reason))
    }

    /// The body of the section titled `title`, read again.
    fn section(&self, spans: &mut Spans<'_>, title: &str) -> Result<Option<String>, ParseError> {
        let Some(&span) = self.sections.get(self.hasher.hash_one(title)) else {
            return Ok(None);
        };
        let lines = spans.lines(span)?;
        let Some((first, body)) = lines.split_first() else {
            return Ok(None);
        };
        if section_title(strip_ansi(first).trim_end()) != Some(title) {
            return Ok(None);
        }
        let mut text = String::new();
        for line in body {
            text.push_str(line);
            text.push('\n');
        }
        Ok(Some(text))
    }

    /// What the summary and the sections say about an outcome line.
    fn resolve(&self, spans: &mut Spans<'_>, report: &mut Report) -> Result<(), ParseError> {
        // A pass shows no message: no need to look one up.
        if !matches!(report.word, Word::Passed | Word::Xpass) {
            report.summary = self.message(spans, &report.node_id, report.word)?;
        }
        let key = section_key(&report.node_id);
        report.section = match report.word {
            Word::Rerun | Word::Failed => self.section(spans, &key)?,
            Word::Error => match self.section(spans, &format!("ERROR at setup of {key}"))? {
                Some(body) => Some(body),
                None => self.section(spans, &format!("ERROR at teardown of {key}"))?,
            },
            _ => None,
        };
        Ok(())
    }
}

impl TextParser for PytestText {
    type Attempt = Attempt;
    const NAME: &'static str = "pytest";
    // `t.py::test PASSED [ 1%]`: some 30 bytes a test at the least.
    const BYTES_PER_TEST: Option<u64> = Some(32);

    fn read(&self, text: &Text<'_>, out: &mut dyn Out<Attempt>) -> Result<Ending, ParseError> {
        let mut spans = text.spans();
        text.read_at(|lines| {
            let mut scan = Scan::default();
            for (at, raw) in lines {
                let mut report = match scan.line(at, &raw) {
                    Some(Seen::Progress(report)) if self.progress => report,
                    Some(Seen::Summary(report)) if !self.progress => report,
                    _ => continue,
                };
                self.resolve(&mut spans, &mut report)?;
                let (suite, classname, name) = split_node_id(&report.node_id);
                let name = name.to_owned();
                out.attempt(
                    &suite,
                    Attempt {
                        classname,
                        name,
                        kind: Kind::Line(report),
                    },
                );
            }
            if !self.progress {
                self.skips(out);
            }
            let partial = match (scan.interrupted, scan.final_line) {
                (Some(reason), _) => Some(format!("pytest was interrupted: {reason}")),
                (None, false) => {
                    Some("pytest output ends before its final summary line".to_owned())
                }
                (None, true) => None,
            };
            Ok(Ending {
                partial,
                ..Ending::default()
            })
        })
    }
}

impl crate::handing::Attempt for Attempt {
    fn identity(&self) -> (&str, &str) {
        (&self.classname, &self.name)
    }

    /// The outcome lines of one test become its attempts (a `RERUN` per attempt, a teardown
    /// `ERROR` joined to its call's outcome), folded as pytest-rerunfailures' are.
    fn fold(attempts: Vec<Attempt>, earlier: EarlierPass) -> Option<TestCase> {
        let mut cases = Vec::new();
        let mut lines = Vec::new();
        for attempt in attempts {
            match attempt.kind {
                Kind::Line(report) => lines.push(report),
                Kind::Skip(case) => cases.push(*case),
            }
        }
        if let Some(first) = lines.first() {
            let (_, classname, name) = split_node_id(&first.node_id);
            let name = name.to_owned();
            for attempt in attempts_of(&lines) {
                let mut case = TestCase::new(name.as_str(), status_of(&attempt));
                case.set_classname(classname.as_str());
                cases.push(case);
            }
        }
        merge_attempts(cases, earlier)
    }
}

impl PytestText {
    /// Without -v, skips are only known per location: one case per skipped test there.
    fn skips(&self, out: &mut dyn Out<Attempt>) {
        for (location, count, reason) in &self.skipped {
            let (path, _) = location.split_once(':').unwrap_or((location, ""));
            let (_, classname, _) = split_node_id(&format!("{path}::"));
            for index in 1..=*count {
                let name = if *count == 1 {
                    location.clone()
                } else {
                    format!("{location} #{index}")
                };
                let mut status = TestCaseStatus::skipped();
                status.set_message(reason.as_str());
                let mut case = TestCase::new(name.as_str(), status);
                case.set_classname(classname.as_str());
                out.attempt(
                    path,
                    Attempt {
                        classname: case
                            .classname
                            .as_ref()
                            .map_or(String::new(), |c| c.as_str().to_owned()),
                        name: case.name.as_str().to_owned(),
                        kind: Kind::Skip(Box::new(case)),
                    },
                );
            }
        }
    }
}

/// A line of pytest's output that reports outcomes.
enum Seen {
    Progress(Report),
    Skipped(String, usize, String),
    Summary(Report),
}

/// Reads pytest's output line by line: which section a line is in, and what it reports.
#[derive(Default)]
struct Scan {
    /// Whether where sections are is noted.
    note: bool,
    sections: Vec<(String, Span)>,
    /// The open section's title and where its title line is.
    section: Option<(String, u64)>,
    final_line: bool,
    interrupted: Option<String>,
}

impl Scan {
    fn noting_sections() -> Self {
        Scan {
            note: true,
            ..Scan::default()
        }
    }

    /// Closes the open section where the line at `end` starts.
    fn close_section(&mut self, end: u64) {
        if let Some((title, at)) = self.section.take() {
            if self.note {
                self.sections.push((title, Span { at, end }));
            }
        }
    }

    /// The line at offset `at`.
    fn line(&mut self, at: u64, raw: &str) -> Option<Seen> {
        let line = strip_ansi(raw);
        let line = line.trim_end();
        if let Some(title) = section_title(line) {
            self.close_section(at);
            self.section = Some((title.to_owned(), at));
            return None;
        }
        if line.starts_with("====") || line.starts_with("!!!!") {
            self.close_section(at);
            if line.starts_with("!!!!") && self.interrupted.is_none() {
                self.interrupted = Some(line.trim_matches(['!', ' ']).to_owned());
            }
            if line.starts_with('=') && is_final_line(line) {
                self.final_line = true;
            }
            return None;
        }
        if self.section.is_some() {
            return None;
        }
        if let Some(report) = progress_line(line) {
            Some(Seen::Progress(report))
        } else if let Some((location, count, reason)) = skipped_location(line) {
            Some(Seen::Skipped(location.to_owned(), count, reason.to_owned()))
        } else if let Some(report) = summary_line(line) {
            Some(Seen::Summary(report))
        } else {
            if !self.final_line && is_final_line(line) {
                // `-q` prints the final line without `=` padding.
                self.final_line = true;
            }
            None
        }
    }

    /// Where the sections are, by the hash of their title; a title given twice is the
    /// later section's. The last section runs to the end of the text.
    fn finish(mut self, hasher: &foldhash::fast::FixedState) -> Index<Span> {
        self.close_section(u64::MAX);
        let mut index = Index::default();
        for (title, span) in self.sections {
            index.insert(hasher.hash_one(title.as_str()), span);
        }
        index.seal();
        index
    }
}

/// One attempt of a test: its final word, with a teardown error folded in.
#[derive(Debug)]
struct Run<'a> {
    report: &'a Report,
    teardown_error: Option<&'a Report>,
}

/// One test's outcome lines as attempts, in the order they ran.
///
/// pytest prints a test whose call failed and whose teardown then raised twice (`FAILED`,
/// then `ERROR`): one attempt. pytest-rerunfailures prints `RERUN` once per failing phase,
/// so when the final attempt reported two phases, earlier attempts did too.
fn attempts_of(lines: &[Report]) -> Vec<Run<'_>> {
    let (reruns, finals): (Vec<&Report>, Vec<&Report>) =
        lines.iter().partition(|r| r.word == Word::Rerun);
    let mut attempts = Vec::new();
    let phases = finals.len().clamp(1, 2);
    for rerun in reruns.iter().step_by(phases) {
        attempts.push(Run {
            report: rerun,
            teardown_error: None,
        });
    }
    // The `-rA` summary lists ERROR lines before FAILED ones: the call's outcome decides, a
    // second ERROR is the teardown's.
    let main = finals
        .iter()
        .position(|r| r.word != Word::Error)
        .unwrap_or(0);
    if let Some(first) = finals.get(main) {
        let teardown_error = finals
            .iter()
            .enumerate()
            .find(|(index, r)| *index != main && r.word == Word::Error)
            .map(|(_, r)| *r);
        attempts.push(Run {
            report: first,
            teardown_error,
        });
    }
    attempts
}

/// An attempt's outcome, with the message and the section pytest printed about it.
fn status_of(attempt: &Run<'_>) -> TestCaseStatus {
    let report = attempt.report;
    let message = report.reason.clone().or_else(|| report.summary.clone());
    let mut status = match report.word {
        Word::Passed | Word::Xpass => TestCaseStatus::success(),
        Word::Rerun | Word::Failed | Word::Error => {
            let kind = if report.word == Word::Error {
                NonSuccessKind::Error
            } else {
                NonSuccessKind::Failure
            };
            let mut status = TestCaseStatus::non_success(kind);
            if let Some(body) = report.section.clone().and_then(non_blank) {
                if let Some(error) = error_line(&body) {
                    status.set_message(error);
                }
                status.set_description(body);
            }
            status
        }
        Word::Skipped => TestCaseStatus::skipped(),
        Word::Xfail => {
            let mut status = TestCaseStatus::skipped();
            status.set_type("pytest.xfail");
            status
        }
    };
    let has_message = match &status {
        TestCaseStatus::NonSuccess { message, .. } | TestCaseStatus::Skipped { message, .. } => {
            message.is_some()
        }
        TestCaseStatus::Success { .. } => true,
    };
    if let Some(message) = message.filter(|_| !has_message) {
        status.set_message(message);
    }
    if let Some(error) = attempt.teardown_error {
        let text = format!("teardown error: {}", error.summary.as_deref().unwrap_or(""));
        match &mut status {
            TestCaseStatus::NonSuccess { description, .. } => {
                let joined = match description.take() {
                    Some(before) => format!("{}\n\n{text}", before.as_str()),
                    None => text,
                };
                *description = Some(XmlString::new(joined));
            }
            TestCaseStatus::Success { .. } => {
                let mut error_status = TestCaseStatus::non_success(NonSuccessKind::Error);
                error_status.set_message(text);
                status = error_status;
            }
            TestCaseStatus::Skipped { .. } => {}
        }
    }
    status
}

/// The first `E   ` line of a failure section: the exception pytest shows, untruncated.
fn error_line(body: &str) -> Option<String> {
    body.lines()
        .find_map(|line| line.strip_prefix("E   "))
        .map(|line| line.trim().to_owned())
        .filter(|line| !line.is_empty())
}

/// `SKIPPED [2] path/test_x.py:39: reason` of a `-rA`/`-rs` summary: skips pytest reports per
/// location, not per test. Returns the location, the count and the reason.
fn skipped_location(line: &str) -> Option<(&str, usize, &str)> {
    let rest = line.strip_prefix("SKIPPED [")?;
    let (count, rest) = rest.split_once("] ")?;
    let count = count.parse().ok()?;
    let (location, reason) = rest.split_once(": ").unwrap_or((rest, ""));
    Some((location, count, reason))
}

/// `path/to/test_x.py::Class::test_y[p]` → suite `path/to/test_x.py`, classname
/// `path.to.test_x.Class` and name `test_y[p]`, the way pytest's JUnit writer names them.
fn split_node_id(node_id: &str) -> (String, String, &str) {
    let (path, rest) = node_id.split_once("::").unwrap_or(("", node_id));
    let (classes, name) = match rest.rsplit_once("::") {
        Some((classes, name)) => (Some(classes), name),
        None => (None, rest),
    };
    let module = path
        .strip_suffix(".py")
        .unwrap_or(path)
        .replace(['/', '\\'], ".");
    let classname = match classes {
        Some(classes) => format!("{module}.{}", classes.replace("::", ".")),
        None => module,
    };
    (path.to_owned(), classname, name)
}

/// The title pytest gives a test's failure section: `Class.test_y[p]`.
fn section_key(node_id: &str) -> String {
    node_id
        .split_once("::")
        .map_or(node_id, |(_, rest)| rest)
        .replace("::", ".")
}

/// `____ title ____` section headers of the FAILURES/ERRORS blocks.
fn section_title(line: &str) -> Option<&str> {
    let inner = line.strip_prefix("___")?.strip_suffix("___")?;
    let title = inner.trim_matches('_').trim();
    (!title.is_empty()).then_some(title)
}

/// pytest's last line: `=== 3 failed, 5 passed in 0.12s ===` or, with `-q`, the same
/// without the padding.
fn is_final_line(line: &str) -> bool {
    let inner = line.trim_matches(['=', ' ']);
    let Some((counts, time)) = inner.rsplit_once(" in ") else {
        return false;
    };
    let time = time.split_whitespace().next().unwrap_or("");
    time.ends_with('s')
        && time[..time.len() - 1].parse::<f64>().is_ok()
        && counts.split(", ").all(|part| {
            part.split_once(' ')
                .is_some_and(|(n, _)| n.parse::<u64>().is_ok())
        })
        || inner.starts_with("no tests ran in ")
}

/// `path::test STATUS (reason) [ 42%]`, or xdist's `[gw0] [ 42%] STATUS path::test`.
fn progress_line(line: &str) -> Option<Report> {
    if let Some(rest) = line.strip_prefix("[gw") {
        let (_, rest) = rest.split_once("] [")?;
        let (_, rest) = rest.split_once("] ")?;
        let (word, node_id) = rest.split_once(' ')?;
        let word = Word::of(word)?;
        let node_id = node_id.trim();
        return node_id.contains("::").then(|| Report {
            node_id: node_id.to_owned(),
            word,
            reason: None,
            summary: None,
            section: None,
        });
    }
    let line = match line.rfind(" [") {
        Some(at) if line.ends_with("%]") => &line[..at],
        _ => line,
    };
    let end = node_id_end(line)?;
    let node_id = &line[..end];
    let rest = line[end..].trim();
    let (word, reason) = match rest.split_once(' ') {
        Some((word, reason)) => (word, Some(reason)),
        None => (rest, None),
    };
    let word = Word::of(word)?;
    let reason = reason
        .map(str::trim)
        .and_then(|r| r.strip_prefix('(').and_then(|r| r.strip_suffix(')')))
        .map(str::to_owned);
    Some(Report {
        node_id: node_id.to_owned(),
        word,
        reason,
        summary: None,
        section: None,
    })
}

/// The end of a node id at the start of a line: the first space outside brackets, after a
/// `::`.
fn node_id_end(line: &str) -> Option<usize> {
    let mut depth = 0i32;
    for (index, c) in line.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => depth -= 1,
            ' ' if depth <= 0 => {
                return line[..index].contains("::").then_some(index);
            }
            _ => {}
        }
    }
    None
}

/// `-rA` summary lines: `FAILED path::test - message`, `PASSED path::test`.
fn summary_line(line: &str) -> Option<Report> {
    let (word, rest) = line.split_once(' ')?;
    let word = Word::of(word)?;
    if word == Word::Rerun {
        return None;
    }
    let end = node_id_end(rest).unwrap_or(rest.len());
    let node_id = &rest[..end];
    if !node_id.contains("::") {
        return None;
    }
    let reason = rest[end..]
        .trim()
        .strip_prefix("- ")
        .map(|r| r.trim().to_owned());
    Some(Report {
        node_id: node_id.to_owned(),
        word,
        reason,
        summary: None,
        section: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_ids_split_like_the_junit_writer() {
        assert_eq!(
            split_node_id("tests/test_a.py::TestX::test_y[1 2]"),
            (
                "tests/test_a.py".to_owned(),
                "tests.test_a.TestX".to_owned(),
                "test_y[1 2]"
            )
        );
    }

    #[test]
    fn progress_lines_with_brackets_and_reasons() {
        let report = progress_line("t.py::test_p[a b] SKIPPED (no net)   [ 50%]").expect("line");
        assert_eq!(report.node_id, "t.py::test_p[a b]");
        assert_eq!(report.word, Word::Skipped);
        assert_eq!(report.reason.as_deref(), Some("no net"));
    }

    #[test]
    fn final_lines() {
        assert!(is_final_line(
            "==== 5 failed, 5 passed, 2 errors in 0.07s ===="
        ));
        assert!(is_final_line("5 failed, 5 passed in 0.06s"));
        assert!(!is_final_line("== test session starts =="));
    }
}
