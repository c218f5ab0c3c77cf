//! One `<testcase>` element: what is collected while it is open, and the `quick_junit`
//! case built from it when it closes (its outcome, reruns and flaky runs), including the
//! dialects' quirks: pytest's separate teardown element, node's failing todos, Playwright's
//! retries inside one failure text.

use std::sync::LazyLock;
use std::time::Duration;

use chrono::{DateTime, FixedOffset};
use memchr::memmem;
use quick_junit::{
    FlakyOrRerun, NonSuccessKind, NonSuccessReruns, TestCase, TestCaseStatus, TestRerun, XmlString,
};

use super::values::{self, BadReference};
use super::xml::Tag;
use crate::stream::Fields;
use crate::text::non_blank;
use crate::view::{self, CaseView, Properties, Span};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ResultKind {
    Failure,
    Error,
    Skipped,
    FlakyFailure,
    FlakyError,
    RerunFailure,
    RerunError,
}

impl ResultKind {
    pub(super) fn of(name: &[u8]) -> Option<Self> {
        Some(match name {
            b"failure" => ResultKind::Failure,
            b"error" => ResultKind::Error,
            b"skipped" => ResultKind::Skipped,
            b"flakyFailure" => ResultKind::FlakyFailure,
            b"flakyError" => ResultKind::FlakyError,
            b"rerunFailure" => ResultKind::RerunFailure,
            b"rerunError" => ResultKind::RerunError,
            _ => return None,
        })
    }
}

/// One `<failure>`/`<error>`/`<skipped>`/rerun element with its text.
#[derive(Debug)]
pub(super) struct ResultElement {
    pub kind: ResultKind,
    pub message: Option<String>,
    pub ty: Option<String>,
    pub text: String,
    pub time: Option<Duration>,
    pub timestamp: Option<DateTime<FixedOffset>>,
    pub stack_trace: String,
    pub system_out: Option<String>,
    pub system_err: Option<String>,
    /// Playwright's `Retry #N ───` headings seen in the text so far.
    headings: Headings,
}

/// Counts Playwright's `Retry #N ───` headings in a text that arrives in raw pieces: it
/// records retries of a test that never passed only as such headings inside one failure.
#[derive(Debug, Default)]
struct Headings {
    count: usize,
    /// The text since the last line end, if any, is only whitespace.
    in_indent: bool,
    seen_text: bool,
}

impl Headings {
    fn scan(&mut self, raw: &[u8]) {
        const HEADING: &[u8] = b"Retry #";
        // Built once: building a searcher for every piece of text cost more than searching.
        static FINDER: LazyLock<memmem::Finder<'static>> =
            LazyLock::new(|| memmem::Finder::new(HEADING));
        if !self.seen_text {
            self.seen_text = true;
            self.in_indent = true;
        }
        let mut from = 0;
        for at in FINDER.find_iter(raw) {
            if at < from {
                continue;
            }
            let line = &raw[from..at];
            let indent = match memchr::memrchr(b'\n', line) {
                Some(end) => &line[end + 1..],
                None if self.in_indent => line,
                None => b"x",
            };
            let rest = &raw[at + HEADING.len()..];
            let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
            if indent.iter().all(u8::is_ascii_whitespace)
                && digits > 0
                && rest[digits..].starts_with(" \u{2500}".as_bytes())
            {
                self.count += 1;
            }
            from = at + HEADING.len();
        }
        let tail = &raw[from..];
        self.in_indent = match memchr::memrchr(b'\n', tail) {
            Some(end) => tail[end + 1..].iter().all(u8::is_ascii_whitespace),
            None => self.in_indent && tail.iter().all(u8::is_ascii_whitespace),
        };
    }
}

impl ResultElement {
    /// Sees a raw piece of the element's text (its references unresolved).
    pub(super) fn scan_text(&mut self, raw: &[u8]) {
        self.headings.scan(raw);
    }

    pub(super) fn open(kind: ResultKind, tag: &Tag<'_>) -> Result<Self, BadReference> {
        let mut result = ResultElement {
            kind,
            message: None,
            ty: None,
            text: String::new(),
            time: None,
            timestamp: None,
            stack_trace: String::new(),
            system_out: None,
            system_err: None,
            headings: Headings::default(),
        };
        for (key, raw) in tag.attributes() {
            match key {
                b"message" => result.message = Some(values::attribute(raw)?.into_owned()),
                b"type" => result.ty = Some(values::attribute(raw)?.into_owned()),
                b"time" => result.time = values::seconds(&values::attribute(raw)?),
                b"timestamp" => result.timestamp = values::timestamp(&values::attribute(raw)?),
                _ => {}
            }
        }
        Ok(result)
    }
}

/// The `<testcase>` being read. Its name, classname and properties are kept in one text,
/// cleaned as `XmlString::new` cleans them as they arrive: a case handed on as a
/// [`CaseView`] costs no allocation of its own, and the reader reuses the buffer.
#[derive(Debug, Default)]
pub(crate) struct OpenCase {
    pub(super) suite: usize,
    text: String,
    name: Option<Span>,
    classname: Option<Span>,
    pub(super) time: Option<Duration>,
    pub(super) timestamp: Option<DateTime<FixedOffset>>,
    pub(super) assertions: Option<usize>,
    properties: Vec<(Span, Span)>,
    pub(super) results: Vec<ResultElement>,
    /// Cleaned when set.
    pub(super) system_out: Option<String>,
    pub(super) system_err: Option<String>,
}

impl OpenCase {
    /// Empties the buffer for a new case of `suite`, keeping its room.
    fn reset(&mut self, suite: usize) {
        self.suite = suite;
        self.text.clear();
        self.name = None;
        self.classname = None;
        self.time = None;
        self.timestamp = None;
        self.assertions = None;
        self.properties.clear();
        self.results.clear();
        self.system_out = None;
        self.system_err = None;
    }

    pub(crate) fn name(&self) -> &str {
        self.name.map_or("", |span| span.of(&self.text))
    }

    pub(crate) fn classname(&self) -> Option<&str> {
        self.classname.map(|span| span.of(&self.text))
    }

    /// Whether this is a case of the test with `name` and `classname`.
    pub(crate) fn same_test(&self, name: &str, classname: Option<&str>) -> bool {
        self.name() == name && self.classname() == classname
    }

    /// Keeps a string of the case (cleaned) and says where it is.
    pub(super) fn keep(&mut self, text: &str) -> Span {
        view::push_clean(&mut self.text, text)
    }

    pub(super) fn add_property(&mut self, name: Span, value: Span) {
        self.properties.push((name, value));
    }

    /// The case's outcome from its result elements, which it takes.
    pub(crate) fn status(&mut self, fields: Fields) -> TestCaseStatus {
        status_of(self.results.drain(..), fields)
    }

    /// The case with `status` (from [`OpenCase::status`]), borrowed.
    pub(crate) fn view<'a>(&'a self, status: &'a TestCaseStatus) -> CaseView<'a> {
        CaseView {
            name: self.name(),
            classname: self.classname(),
            time: self.time,
            timestamp: self.timestamp,
            assertions: self.assertions,
            status,
            properties: Properties::spans(&self.text, &self.properties),
            system_out: self.system_out.as_deref(),
            system_err: self.system_err.as_deref(),
        }
    }
}

/// Shares the short strings that repeat across cases (classnames, property names and
/// values): cloning an `XmlString` is one copy, making one strips escapes and control
/// characters.
#[derive(Default)]
pub(super) struct Interner {
    strings: foldhash::HashMap<Box<str>, XmlString>,
}

impl Interner {
    /// Distinct strings kept; a report with more unique values just stops sharing.
    const CAPACITY: usize = 4096;
    /// Longer strings are rarely repeated: they are made, not looked up.
    const LONGEST: usize = 128;

    pub(super) fn get(&mut self, text: &str) -> XmlString {
        if text.len() > Self::LONGEST {
            return XmlString::new(text);
        }
        if let Some(shared) = self.strings.get(text) {
            return shared.clone();
        }
        let made = XmlString::new(text);
        if self.strings.len() < Self::CAPACITY {
            self.strings.insert(text.into(), made.clone());
        }
        made
    }
}

/// Builds the model's cases from open ones, for the reads that keep them.
#[derive(Default)]
pub(crate) struct Builder {
    interner: Interner,
}

impl Builder {
    /// Suite properties share strings with case properties.
    pub(super) fn interner(&mut self) -> &mut Interner {
        &mut self.interner
    }

    /// The case `open` holds, with the `fields` read; leaves `open` to be reset.
    pub(crate) fn build(&mut self, open: &mut OpenCase, fields: Fields) -> TestCase {
        let status = open.status(fields);
        // The view only lends the strings: the status just taken goes into the case itself.
        let placeholder = TestCaseStatus::success();
        open.view(&placeholder)
            .build(status, |text| self.interner.get(text))
    }
}

/// Starts reading a case of `suite` into `case`, from its `<testcase>` tag.
pub(super) fn open_case(
    case: &mut OpenCase,
    tag: &Tag<'_>,
    suite: usize,
) -> Result<(), BadReference> {
    case.reset(suite);
    // The hot path: only the attributes that are kept get unescaped and decoded.
    for (key, raw) in tag.attributes() {
        match key {
            b"name" => case.name = Some(case.keep(&values::attribute(raw)?)),
            b"classname" => case.classname = Some(case.keep(&values::attribute(raw)?)),
            b"time" => case.time = values::seconds(&values::attribute(raw)?),
            b"timestamp" => case.timestamp = values::timestamp(&values::attribute(raw)?),
            b"assertions" => case.assertions = values::attribute(raw)?.trim().parse().ok(),
            // Other attributes (pytest's file and line, jest-junit's and node's copy of the
            // failure message) are not kept: a map per case would make the model a third
            // larger and slower to build, and nothing downstream reads them.
            _ => {}
        }
    }
    Ok(())
}

/// pytest writes a test whose call failed and whose teardown then raised as two
/// `<testcase>` elements, the second holding only the teardown `<error>`. That is one
/// attempt, not a retry: folds the error into the case before it and returns `None`, or
/// gives the case back when it is a test of its own.
pub(crate) fn merge_teardown(
    previous: Option<&mut TestCase>,
    case: TestCase,
    fields: Fields,
) -> Option<TestCase> {
    let (Some(previous), TestCaseStatus::NonSuccess { kind, message, .. }) =
        (previous, &case.status)
    else {
        return Some(case);
    };
    let teardown = *kind == NonSuccessKind::Error
        && message.as_ref().is_some_and(|m| {
            // pytest ≥ 5.4 and older pytest word it differently.
            m.as_str().starts_with("failed on teardown") || m.as_str() == "test teardown failure"
        });
    if !(teardown && previous.name == case.name && previous.classname == case.classname) {
        return Some(case);
    }
    match &mut previous.status {
        TestCaseStatus::Success { .. } => previous.status = case.status,
        TestCaseStatus::NonSuccess { description, .. } if fields.descriptions => {
            let extra = describe_status(&case.status);
            let joined = match description.take() {
                Some(before) => format!("{}\n\n{extra}", before.as_str()),
                None => extra,
            };
            *description = Some(XmlString::new(joined));
        }
        TestCaseStatus::NonSuccess { .. } | TestCaseStatus::Skipped { .. } => {}
    }
    None
}

fn describe_status(status: &TestCaseStatus) -> String {
    match status {
        TestCaseStatus::NonSuccess {
            message,
            description,
            ..
        } => format!(
            "error: {}\n{}",
            message.as_ref().map_or("", |m| m.as_str()),
            description.as_ref().map_or("", |d| d.as_str())
        ),
        _ => String::new(),
    }
}

/// A case's outcome, reruns and flaky runs from its result elements.
fn status_of(results: impl Iterator<Item = ResultElement>, fields: Fields) -> TestCaseStatus {
    let mut primary: Option<ResultElement> = None;
    let mut skipped: Option<ResultElement> = None;
    let mut also: Vec<ResultElement> = Vec::new();
    let mut flaky = Vec::new();
    let mut reruns = Vec::new();
    for result in results {
        match result.kind {
            ResultKind::Skipped => skipped = skipped.or(Some(result)),
            ResultKind::Failure | ResultKind::Error => {
                if primary.is_none() {
                    primary = Some(result);
                } else {
                    also.push(result);
                }
            }
            ResultKind::FlakyFailure | ResultKind::FlakyError => {
                flaky.push(rerun_of(result, fields));
            }
            ResultKind::RerunFailure | ResultKind::RerunError => {
                reruns.push(rerun_of(result, fields));
            }
        }
    }
    if let Some(skip) = skipped {
        // node:test marks a failing `todo` test with both <skipped> and <failure>: it is a
        // todo, not a failure. Keep the failure text as the description.
        let description = non_blank(skip.text)
            .or_else(|| {
                primary
                    .as_ref()
                    .and_then(|p| p.message.clone().or_else(|| non_blank(p.text.clone())))
            })
            .filter(|_| fields.descriptions);
        TestCaseStatus::Skipped {
            message: skip.message.map(XmlString::new),
            ty: skip.ty.map(XmlString::new),
            description: description.map(XmlString::new),
        }
    } else if let Some(primary) = primary {
        let kind = match primary.kind {
            ResultKind::Error => NonSuccessKind::Error,
            _ => NonSuccessKind::Failure,
        };
        let headings =
            primary.headings.count + also.iter().map(|o| o.headings.count).sum::<usize>();
        // A case with both a <failure> and an <error>: the first decides; the rest is kept.
        let mut description = primary.text;
        for other in also.into_iter().filter(|_| fields.descriptions) {
            description.push_str("\n\n");
            description.push_str(match other.kind {
                ResultKind::Error => "error: ",
                _ => "failure: ",
            });
            description.push_str(other.message.as_deref().unwrap_or(""));
            if !other.text.is_empty() {
                description.push('\n');
                description.push_str(&other.text);
            }
        }
        reruns.extend(flaky);
        // Playwright records retries of a test that never passed only as `Retry #N` headings
        // inside the one <failure> text.
        if reruns.is_empty() {
            reruns.extend((0..headings).map(|_| TestRerun::new(kind)));
        }
        TestCaseStatus::NonSuccess {
            kind,
            message: primary.message.map(XmlString::new),
            ty: primary.ty.map(XmlString::new),
            description: non_blank(description)
                .filter(|_| fields.descriptions)
                .map(XmlString::new),
            reruns: NonSuccessReruns {
                kind: FlakyOrRerun::Rerun,
                runs: reruns,
            },
        }
    } else {
        flaky.extend(reruns);
        TestCaseStatus::Success { flaky_runs: flaky }
    }
}

fn rerun_of(result: ResultElement, fields: Fields) -> TestRerun {
    let kind = match result.kind {
        ResultKind::FlakyError | ResultKind::RerunError | ResultKind::Error => {
            NonSuccessKind::Error
        }
        _ => NonSuccessKind::Failure,
    };
    let mut rerun = TestRerun::new(kind);
    rerun.time = result.time;
    rerun.timestamp = result.timestamp;
    rerun.message = result.message.map(XmlString::new);
    rerun.ty = result.ty.map(XmlString::new);
    if fields.descriptions {
        rerun.stack_trace = non_blank(result.stack_trace).map(XmlString::new);
        rerun.description = non_blank(result.text).map(XmlString::new);
    }
    rerun.system_out = result.system_out.map(XmlString::new);
    rerun.system_err = result.system_err.map(XmlString::new);
    rerun
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_headings_are_counted_at_line_starts_across_pieces() {
        let text = "Error: x\n    Retry #1 \u{2500}\u{2500}\n  at y\nnot Retry #2 \u{2500}\n\tRetry #3 \u{2500}\nRetry #x \u{2500}\n";
        let count = |pieces: &[&str]| {
            let mut headings = Headings::default();
            for piece in pieces {
                headings.scan(piece.as_bytes());
            }
            headings.count
        };
        assert_eq!(count(&[text]), 2);
        // Cut between lines or inside an indent.
        let mut cuts = 0;
        for cut in (0..=text.len()).filter(|&c| text.is_char_boundary(c)) {
            let line = text[..cut].rsplit('\n').next().unwrap_or("");
            if line.trim().is_empty() {
                assert_eq!(count(&[&text[..cut], &text[cut..]]), 2, "cut at {cut}");
                cuts += 1;
            }
        }
        assert!(cuts > 8, "{cuts}");
    }
}
