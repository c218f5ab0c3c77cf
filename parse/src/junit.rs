//! JUnit XML in the dialects real runners write (pytest xunit1/xunit2 and its old bare
//! `<testsuite>` root, Surefire, nextest, gotestsum, jest-junit, Playwright, node:test),
//! streamed with quick-xml into `quick_junit::Report`.
//!
//! The reader never builds a DOM and never expands entities: a document type that declares
//! entities is refused (no entity bombs, no external entities), nesting is capped, and text is
//! decoded lossily so a report with stray non-UTF-8 bytes still parses. A document that stops
//! early (a killed suite) yields the cases that were complete, marked partial.

use std::borrow::Cow;
use std::io::BufRead;
use std::time::Duration;

use chrono::{DateTime, FixedOffset, NaiveDateTime};
use quick_junit::{
    FlakyOrRerun, NonSuccessKind, NonSuccessReruns, Property, Report, TestCase, TestCaseStatus,
    TestRerun, TestSuite, XmlString,
};
use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;

use crate::attempts::finish_report;
use crate::error::ParseError;
use crate::parsed::Parsed;

/// Deeper nesting than this is refused; real reports nest a handful of levels.
pub(crate) const MAX_DEPTH: usize = 256;

/// Joins the names of nested `<testsuite>` elements into one flat suite name.
const SUITE_PATH_SEPARATOR: &str = " > ";

/// Where an error happened, for a message with line and column.
pub(crate) type Locate<'a> = &'a dyn Fn(u64) -> (u64, u64);

/// Parses JUnit XML from a reader. `locate` maps a byte offset to line and column and is only
/// called when something is wrong.
pub(crate) fn parse<R: BufRead>(
    input: R,
    input_size: u64,
    locate: Locate<'_>,
) -> Result<Parsed, ParseError> {
    let mut reader = Reader::from_reader(input);
    let config = reader.config_mut();
    config.trim_text(false);
    config.check_end_names = true;
    config.expand_empty_elements = false;
    let mut state = State {
        reserve_budget: usize::try_from(input_size / RESERVE_BYTES_PER_CASE)
            .unwrap_or(usize::MAX)
            .min(MAX_RESERVED_CASES),
        ..State::default()
    };
    let mut buf = Vec::with_capacity(8 * 1024);
    loop {
        // Problems found in an event are reported where the event starts.
        let at = reader.buffer_position();
        let event = match reader.read_event_into(&mut buf) {
            Ok(event) => event,
            Err(error) => {
                let offset = reader.error_position();
                if is_truncation(&error) && state.seen_root {
                    return Ok(state.finish_truncated(&error.to_string()));
                }
                let (line, column) = locate(offset);
                return Err(ParseError::Xml {
                    line,
                    column,
                    message: error.to_string(),
                });
            }
        };
        let result = match event {
            Event::Start(start) => state.open(&start, false),
            Event::Empty(start) => state.open(&start, true),
            Event::End(_) => {
                state.close();
                Ok(())
            }
            Event::Text(text) => {
                state.text(&text);
                Ok(())
            }
            Event::CData(data) => {
                state.text(&data);
                Ok(())
            }
            Event::GeneralRef(reference) => state.reference(&reference),
            Event::DocType(doctype) => {
                if contains(&doctype, b"ENTITY") {
                    Err(Problem::Refused(
                        "a document type that declares entities is refused (entity expansion and external entities are not supported)",
                    ))
                } else {
                    Ok(())
                }
            }
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => Ok(()),
            Event::Eof => break,
        };
        if let Err(problem) = result {
            let (line, column) = locate(at);
            return Err(problem.into_error(line, column));
        }
        buf.clear();
    }
    if !state.seen_root {
        return Err(ParseError::NotThisFormat {
            format: "JUnit XML",
            reason: "no <testsuites> or <testsuite> element".to_owned(),
        });
    }
    if state.stack.is_empty() {
        Ok(state.finish(None))
    } else {
        Ok(state.finish_truncated("the document ends before its elements are closed"))
    }
}

/// quick-xml reports input that ends inside markup as one of these; a killed writer leaves
/// exactly such a file.
fn is_truncation(error: &quick_xml::Error) -> bool {
    use quick_xml::errors::{IllFormedError, SyntaxError};
    matches!(
        error,
        quick_xml::Error::Syntax(
            SyntaxError::UnclosedTag
                | SyntaxError::UnclosedCData
                | SyntaxError::UnclosedComment
                | SyntaxError::UnclosedSingleQuotedAttributeValue
                | SyntaxError::UnclosedDoubleQuotedAttributeValue
                | SyntaxError::InvalidBangMarkup
        ) | quick_xml::Error::IllFormed(IllFormedError::MissingEndTag(_))
    )
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

enum Problem {
    Refused(&'static str),
    TooDeep,
    Entity(String),
}

impl Problem {
    fn into_error(self, line: u64, column: u64) -> ParseError {
        match self {
            Problem::Refused(reason) => ParseError::Refused {
                line,
                column,
                reason,
            },
            Problem::TooDeep => ParseError::TooDeep {
                line,
                column,
                limit: MAX_DEPTH,
            },
            Problem::Entity(message) => ParseError::Xml {
                line,
                column,
                message,
            },
        }
    }
}

/// What an open element is, so text and children land in the right place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Element {
    Testsuites,
    /// Index into `State::suites`.
    Testsuite(usize),
    Testcase,
    Properties,
    Property,
    /// A `<failure>`, `<error>`, `<skipped>` or rerun element of the open case.
    Result,
    /// `<system-out>`/`<system-err>` of a suite, a case or a rerun.
    Output(OutputTarget, OutputStream),
    /// `<stackTrace>` inside a rerun element.
    StackTrace,
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OutputTarget {
    Suite(usize),
    Case,
    Result,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OutputStream {
    Out,
    Err,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ResultKind {
    Failure,
    Error,
    Skipped,
    FlakyFailure,
    FlakyError,
    RerunFailure,
    RerunError,
}

impl ResultKind {
    fn of(name: &[u8]) -> Option<Self> {
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
struct ResultElement {
    kind: ResultKind,
    message: Option<String>,
    ty: Option<String>,
    text: String,
    time: Option<Duration>,
    timestamp: Option<DateTime<FixedOffset>>,
    stack_trace: String,
    system_out: Option<String>,
    system_err: Option<String>,
}

/// The `<testcase>` being read.
#[derive(Debug, Default)]
struct OpenCase {
    suite: usize,
    name: Option<XmlString>,
    classname: Option<XmlString>,
    time: Option<Duration>,
    timestamp: Option<DateTime<FixedOffset>>,
    assertions: Option<usize>,
    properties: Vec<Property>,
    results: Vec<ResultElement>,
    system_out: Option<String>,
    system_err: Option<String>,
}

/// A `<testsuite>` being read; nested suites get their own entry with a joined name.
#[derive(Debug)]
struct SuiteSlot {
    suite: TestSuite,
    /// Nested suites that held no cases of their own are dropped at the end.
    has_children: bool,
}

#[derive(Default)]
struct State {
    report_name: Option<String>,
    report_time: Option<Duration>,
    report_timestamp: Option<DateTime<FixedOffset>>,
    seen_root: bool,
    stack: Vec<Element>,
    suites: Vec<SuiteSlot>,
    /// The suite that collects cases written directly under `<testsuites>` (node:test).
    loose_suite: Option<usize>,
    case: Option<OpenCase>,
    text: String,
    property: Option<(String, Option<String>)>,
    interner: Interner,
    /// Cases that `tests` attributes may still reserve room for, over all suites: bounded by
    /// the input's size, so a lying attribute (or a thousand of them) cannot allocate more
    /// than the input could hold.
    reserve_budget: usize,
}

/// Input bytes per case that `tests` attributes may reserve room for: real reports spend
/// well over this on each `<testcase>`.
const RESERVE_BYTES_PER_CASE: u64 = 64;
/// The most cases all `tests` attributes together may reserve room for (about 77 MB of
/// `TestCase`s); beyond it the case lists just grow as cases arrive.
const MAX_RESERVED_CASES: usize = 1 << 18;

/// Shares the strings that repeat across cases (classnames):
/// cloning an `XmlString` is one copy, making one strips escapes and control characters.
#[derive(Default)]
struct Interner {
    strings: foldhash::HashMap<Box<str>, XmlString>,
}

impl Interner {
    /// Distinct strings kept; a report with more unique values just stops sharing.
    const CAPACITY: usize = 4096;

    fn get(&mut self, text: &str) -> XmlString {
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

impl State {
    fn open(&mut self, start: &BytesStart<'_>, empty: bool) -> Result<(), Problem> {
        if self.stack.len() >= MAX_DEPTH {
            return Err(Problem::TooDeep);
        }
        let name = start.local_name();
        let element = match name.as_ref() {
            b"testsuites" if self.stack.is_empty() => {
                self.seen_root = true;
                for (key, value) in attributes(start)? {
                    match key.as_ref() {
                        "name" => self.report_name = Some(value.into_owned()),
                        "time" => self.report_time = parse_seconds(&value),
                        "timestamp" => self.report_timestamp = parse_timestamp(&value),
                        _ => {}
                    }
                }
                Element::Testsuites
            }
            b"testsuite" => {
                self.seen_root = true;
                Element::Testsuite(self.open_suite(start)?)
            }
            b"testcase" if self.case.is_none() => {
                let suite = match self.current_suite() {
                    Some(suite) => suite,
                    None => self.loose_suite(),
                };
                self.case = Some(open_case(start, suite, &mut self.interner)?);
                Element::Testcase
            }
            b"properties" => Element::Properties,
            b"property" if self.stack.last() == Some(&Element::Properties) => {
                let mut key = String::new();
                let mut value = None;
                for (k, v) in attributes(start)? {
                    match k.as_ref() {
                        "name" => key = v.into_owned(),
                        "value" => value = Some(v.into_owned()),
                        _ => {}
                    }
                }
                self.property = Some((key, value));
                self.text.clear();
                Element::Property
            }
            b"system-out" | b"system-err" => {
                let stream = if name.as_ref() == b"system-out" {
                    OutputStream::Out
                } else {
                    OutputStream::Err
                };
                let target = match self.stack.last() {
                    Some(Element::Testcase) => Some(OutputTarget::Case),
                    Some(Element::Result) => Some(OutputTarget::Result),
                    Some(Element::Testsuite(index)) => Some(OutputTarget::Suite(*index)),
                    _ => None,
                };
                self.text.clear();
                target.map_or(Element::Other, |target| Element::Output(target, stream))
            }
            b"stackTrace" if self.stack.last() == Some(&Element::Result) => {
                self.text.clear();
                Element::StackTrace
            }
            other => match (ResultKind::of(other), self.stack.last()) {
                (Some(kind), Some(Element::Testcase)) => {
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
                    };
                    for (key, value) in attributes(start)? {
                        match key.as_ref() {
                            "message" => result.message = Some(value.into_owned()),
                            "type" => result.ty = Some(value.into_owned()),
                            "time" => result.time = parse_seconds(&value),
                            "timestamp" => result.timestamp = parse_timestamp(&value),
                            _ => {}
                        }
                    }
                    if let Some(case) = &mut self.case {
                        case.results.push(result);
                    }
                    self.text.clear();
                    Element::Result
                }
                _ => Element::Other,
            },
        };
        self.stack.push(element);
        if empty {
            self.close();
        }
        Ok(())
    }

    fn open_suite(&mut self, start: &BytesStart<'_>) -> Result<usize, Problem> {
        let parent = self.current_suite();
        let mut suite = TestSuite::new("");
        let mut name = String::new();
        for (key, value) in attributes(start)? {
            match key.as_ref() {
                "name" => name = value.into_owned(),
                "time" => suite.time = parse_seconds(&value),
                "timestamp" => suite.timestamp = parse_timestamp(&value),
                // Counts are recomputed from the cases (Surefire's include every attempt);
                // `tests` only sizes the case list, within what the input can hold.
                "tests" => {
                    let claimed: usize = value.trim().parse().unwrap_or(0);
                    let granted = claimed.min(self.reserve_budget);
                    self.reserve_budget -= granted;
                    suite.test_cases.reserve(granted);
                }
                "failures" | "errors" | "skipped" | "disabled" => {}
                _ => {
                    suite
                        .extra
                        .insert(XmlString::new(key), XmlString::new(value));
                }
            }
        }
        if let Some(parent) = parent {
            self.suites[parent].has_children = true;
            let parent_name = self.suites[parent].suite.name.as_str();
            if !parent_name.is_empty() {
                name = format!("{parent_name}{SUITE_PATH_SEPARATOR}{name}");
            }
        }
        suite.name = XmlString::new(name);
        self.suites.push(SuiteSlot {
            suite,
            has_children: false,
        });
        Ok(self.suites.len() - 1)
    }

    fn current_suite(&self) -> Option<usize> {
        self.stack.iter().rev().find_map(|element| match element {
            Element::Testsuite(index) => Some(*index),
            _ => None,
        })
    }

    fn loose_suite(&mut self) -> usize {
        if let Some(index) = self.loose_suite {
            return index;
        }
        let name = self
            .report_name
            .clone()
            .unwrap_or_else(|| "tests".to_owned());
        self.suites.push(SuiteSlot {
            suite: TestSuite::new(name),
            has_children: false,
        });
        let index = self.suites.len() - 1;
        self.loose_suite = Some(index);
        index
    }

    fn text(&mut self, raw: &[u8]) {
        if self.captures_text() {
            push_lossy(&mut self.text, raw);
        }
    }

    fn reference(&mut self, reference: &quick_xml::events::BytesRef<'_>) -> Result<(), Problem> {
        if !self.captures_text() {
            return Ok(());
        }
        let resolved = resolve_reference(reference)?;
        self.text.push_str(&resolved);
        Ok(())
    }

    fn captures_text(&self) -> bool {
        matches!(
            self.stack.last(),
            Some(Element::Result | Element::Output(..) | Element::StackTrace | Element::Property)
        )
    }

    fn close(&mut self) {
        let Some(element) = self.stack.pop() else {
            return;
        };
        match element {
            Element::Testcase => {
                if let Some(case) = self.case.take() {
                    let suite = case.suite;
                    let case = build_case(case);
                    push_case(&mut self.suites[suite].suite.test_cases, case);
                }
            }
            Element::Property => {
                if let Some((name, value)) = self.property.take() {
                    let value = value.unwrap_or_else(|| std::mem::take(&mut self.text));
                    let property = Property::new(name, value);
                    if let Some(case) = &mut self.case {
                        case.properties.push(property);
                    } else if let Some(suite) = self.current_suite() {
                        self.suites[suite].suite.properties.push(property);
                    }
                }
            }
            Element::Result => {
                if let Some(result) = self.case.as_mut().and_then(|c| c.results.last_mut()) {
                    result.text = std::mem::take(&mut self.text);
                }
            }
            Element::StackTrace => {
                if let Some(result) = self.case.as_mut().and_then(|c| c.results.last_mut()) {
                    result.stack_trace = std::mem::take(&mut self.text);
                }
            }
            Element::Output(target, stream) => {
                let text = std::mem::take(&mut self.text);
                match target {
                    OutputTarget::Suite(index) => {
                        let suite = &mut self.suites[index].suite;
                        match stream {
                            OutputStream::Out => suite.system_out = Some(XmlString::new(text)),
                            OutputStream::Err => suite.system_err = Some(XmlString::new(text)),
                        }
                    }
                    OutputTarget::Case => {
                        if let Some(case) = &mut self.case {
                            match stream {
                                OutputStream::Out => case.system_out = Some(text),
                                OutputStream::Err => case.system_err = Some(text),
                            }
                        }
                    }
                    OutputTarget::Result => {
                        if let Some(result) = self.case.as_mut().and_then(|c| c.results.last_mut())
                        {
                            match stream {
                                OutputStream::Out => result.system_out = Some(text),
                                OutputStream::Err => result.system_err = Some(text),
                            }
                        }
                    }
                }
            }
            Element::Testsuites | Element::Testsuite(_) | Element::Properties | Element::Other => {}
        }
    }

    fn finish_truncated(mut self, why: &str) -> Parsed {
        // The case that was being written never completed; everything before it did.
        self.case = None;
        let open = self
            .stack
            .iter()
            .rev()
            .find_map(|element| match element {
                Element::Testsuite(index) => Some(self.suites[*index].suite.name.as_str()),
                _ => None,
            })
            .map(|name| format!(" inside <testsuite name=\"{name}\">"))
            .unwrap_or_default();
        let reason = format!("the report was cut short{open}: {why}");
        self.stack.clear();
        self.finish(Some(reason))
    }

    fn finish(self, partial: Option<String>) -> Parsed {
        let mut report = Report::new(
            self.report_name
                .clone()
                .or_else(|| {
                    (self.suites.len() == 1).then(|| self.suites[0].suite.name.as_str().to_owned())
                })
                .unwrap_or_default(),
        );
        report.time = self.report_time;
        report.timestamp = self.report_timestamp;
        report.test_suites = self
            .suites
            .into_iter()
            .filter(|slot| !(slot.has_children && slot.suite.test_cases.is_empty()))
            .map(|slot| slot.suite)
            .collect();
        Parsed {
            report: finish_report(report),
            partial,
        }
    }
}

fn open_case(
    start: &BytesStart<'_>,
    suite: usize,
    interner: &mut Interner,
) -> Result<OpenCase, Problem> {
    let mut case = OpenCase {
        suite,
        ..OpenCase::default()
    };
    // The hot path: only the attributes that are kept get unescaped and decoded.
    for attribute in start.attributes().with_checks(false) {
        let attribute = attribute.map_err(|e| Problem::Entity(e.to_string()))?;
        let value = || unescape_attribute(&attribute.value);
        match attribute.key.local_name().as_ref() {
            b"name" => case.name = Some(XmlString::new(value()?)),
            b"classname" => case.classname = Some(interner.get(&value()?)),
            b"time" => case.time = parse_seconds(&value()?),
            b"timestamp" => case.timestamp = parse_timestamp(&value()?),
            b"assertions" => case.assertions = value()?.trim().parse().ok(),
            // Other attributes (pytest's file and line, jest-junit's and node's copy of the
            // failure message) are not kept: a map per case would make the model a third
            // larger and slower to build, and nothing downstream reads them.
            _ => {}
        }
    }
    Ok(case)
}

/// pytest writes a test whose call failed and whose teardown then raised as two
/// `<testcase>` elements, the second holding only the teardown `<error>`. That is one
/// attempt, not a retry: fold the error into the case before it.
fn push_case(cases: &mut Vec<TestCase>, case: TestCase) {
    if let (Some(previous), TestCaseStatus::NonSuccess { kind, message, .. }) =
        (cases.last_mut(), &case.status)
    {
        let teardown = *kind == NonSuccessKind::Error
            && message.as_ref().is_some_and(|m| {
                // pytest ≥ 5.4 and older pytest word it differently.
                m.as_str().starts_with("failed on teardown")
                    || m.as_str() == "test teardown failure"
            });
        if teardown && previous.name == case.name && previous.classname == case.classname {
            match &mut previous.status {
                TestCaseStatus::Success { .. } => previous.status = case.status,
                TestCaseStatus::NonSuccess { description, .. } => {
                    let extra = describe_status(&case.status);
                    let joined = match description.take() {
                        Some(before) => format!("{}\n\n{extra}", before.as_str()),
                        None => extra,
                    };
                    *description = Some(XmlString::new(joined));
                }
                TestCaseStatus::Skipped { .. } => {}
            }
            return;
        }
    }
    cases.push(case);
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

fn build_case(open: OpenCase) -> TestCase {
    let mut primary: Option<ResultElement> = None;
    let mut skipped: Option<ResultElement> = None;
    let mut also: Vec<ResultElement> = Vec::new();
    let mut flaky = Vec::new();
    let mut reruns = Vec::new();
    for result in open.results {
        match result.kind {
            ResultKind::Skipped => skipped = skipped.or(Some(result)),
            ResultKind::Failure | ResultKind::Error => {
                if primary.is_none() {
                    primary = Some(result);
                } else {
                    also.push(result);
                }
            }
            ResultKind::FlakyFailure | ResultKind::FlakyError => flaky.push(rerun_of(result)),
            ResultKind::RerunFailure | ResultKind::RerunError => reruns.push(rerun_of(result)),
        }
    }
    let status = if let Some(skip) = skipped {
        // node:test marks a failing `todo` test with both <skipped> and <failure>: it is a
        // todo, not a failure. Keep the failure text as the description.
        let description = non_empty(skip.text).or_else(|| {
            primary
                .as_ref()
                .and_then(|p| p.message.clone().or_else(|| non_empty(p.text.clone())))
        });
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
        // A case with both a <failure> and an <error>: the first decides; the rest is kept.
        let mut description = primary.text;
        for other in also {
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
            let retries = playwright_retries(&description);
            reruns.extend((0..retries).map(|_| TestRerun::new(kind)));
        }
        TestCaseStatus::NonSuccess {
            kind,
            message: primary.message.map(XmlString::new),
            ty: primary.ty.map(XmlString::new),
            description: non_empty(description).map(XmlString::new),
            reruns: NonSuccessReruns {
                kind: FlakyOrRerun::Rerun,
                runs: reruns,
            },
        }
    } else {
        flaky.extend(reruns);
        TestCaseStatus::Success { flaky_runs: flaky }
    };
    let name = open.name.unwrap_or_else(|| XmlString::new(""));
    let mut case = TestCase::new(name, status);
    case.classname = open.classname;
    case.time = open.time;
    case.timestamp = open.timestamp;
    case.assertions = open.assertions;
    case.properties = open.properties;
    case.system_out = open.system_out.map(XmlString::new);
    case.system_err = open.system_err.map(XmlString::new);
    case
}

/// Counts Playwright's `Retry #N ───` headings in a failure text.
fn playwright_retries(text: &str) -> usize {
    text.lines()
        .filter(|line| {
            line.trim_start()
                .strip_prefix("Retry #")
                .and_then(|rest| rest.split_once(' '))
                .is_some_and(|(n, rest)| n.parse::<u32>().is_ok() && rest.starts_with('─'))
        })
        .count()
}

fn rerun_of(result: ResultElement) -> TestRerun {
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
    rerun.stack_trace = non_empty(result.stack_trace).map(XmlString::new);
    rerun.description = non_empty(result.text).map(XmlString::new);
    rerun.system_out = result.system_out.map(XmlString::new);
    rerun.system_err = result.system_err.map(XmlString::new);
    rerun
}

fn non_empty(text: String) -> Option<String> {
    if text.trim().is_empty() {
        None
    } else {
        Some(text)
    }
}

/// An element's attributes: local names and unescaped, normalised values, borrowed from the
/// reader's buffer where nothing needed changing.
type Attributes<'a> = Vec<(Cow<'a, str>, Cow<'a, str>)>;

fn attributes<'a>(start: &'a BytesStart<'_>) -> Result<Attributes<'a>, Problem> {
    let mut out = Vec::new();
    for attribute in start.attributes().with_checks(false) {
        let attribute = attribute.map_err(|e| Problem::Entity(e.to_string()))?;
        let key = utf8_lossy(attribute.key.local_name().into_inner());
        let value = match attribute.value {
            Cow::Borrowed(raw) => unescape_attribute(raw)?,
            Cow::Owned(raw) => Cow::Owned(unescape_attribute(&raw)?.into_owned()),
        };
        out.push((key, value));
    }
    Ok(out)
}

/// UTF-8 text, borrowed when valid, with invalid sequences replaced otherwise.
fn utf8_lossy(raw: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(raw) {
        Ok(text) => Cow::Borrowed(text),
        Err(_) => String::from_utf8_lossy(raw),
    }
}

/// Unescapes an attribute value: predefined entities and character references; literal
/// tabs and newlines become spaces, as XML attribute-value normalisation requires.
fn unescape_attribute(raw: &[u8]) -> Result<Cow<'_, str>, Problem> {
    let text = utf8_lossy(raw);
    // Branch-free (vectorised) check for the bytes that need work; most values have none.
    let needs_work = raw.iter().fold(false, |seen, &byte| {
        seen | (byte == b'&') | (byte == b'\t') | (byte == b'\n') | (byte == b'\r')
    });
    if !needs_work {
        return Ok(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest: &str = &text;
    while let Some(position) = rest.find(['&', '\t', '\n', '\r']) {
        out.push_str(&rest[..position]);
        let tail = &rest[position..];
        if !tail.starts_with('&') {
            if !tail.starts_with("\r\n") {
                out.push(' ');
            }
            rest = &tail[1..];
            continue;
        }
        let Some(end) = tail.find(';') else {
            return Err(Problem::Entity(
                "'&' in an attribute value is not followed by a reference ending in ';'".to_owned(),
            ));
        };
        out.push_str(&resolve_name(&tail[1..end])?);
        rest = &tail[end + 1..];
    }
    out.push_str(rest);
    Ok(Cow::Owned(out))
}

fn resolve_reference(reference: &quick_xml::events::BytesRef<'_>) -> Result<String, Problem> {
    let name = String::from_utf8_lossy(reference);
    resolve_name(&name)
}

/// Resolves `name` of `&name;`: the five predefined entities and character references.
/// Anything else would need a DTD, which is never read.
fn resolve_name(name: &str) -> Result<String, Problem> {
    if let Some(number) = name.strip_prefix('#') {
        let code = match number.strip_prefix(['x', 'X']) {
            Some(hex) => u32::from_str_radix(hex, 16),
            None => number.parse::<u32>(),
        };
        return code
            .ok()
            .and_then(char::from_u32)
            .map(String::from)
            .ok_or_else(|| Problem::Entity(format!("invalid character reference '&{name};'")));
    }
    match quick_xml::escape::resolve_predefined_entity(name) {
        Some(value) => Ok(value.to_owned()),
        None => Err(Problem::Entity(format!(
            "undefined entity '&{name};' (only the predefined XML entities are accepted)"
        ))),
    }
}

/// Appends text, replacing invalid UTF-8 and normalising CRLF line ends.
fn push_lossy(out: &mut String, raw: &[u8]) {
    let text = utf8_lossy(raw);
    if text.contains('\r') {
        out.push_str(&text.replace("\r\n", "\n"));
    } else {
        out.push_str(&text);
    }
}

/// Seconds as written by JUnit writers: `1.5`, `0`, `1,234.5` (Surefire with a locale).
fn parse_seconds(value: &str) -> Option<Duration> {
    let cleaned: Cow<'_, str> = if value.contains(',') {
        Cow::Owned(value.replace(',', ""))
    } else {
        Cow::Borrowed(value)
    };
    let seconds: f64 = cleaned.trim().parse().ok()?;
    if seconds.is_finite() && seconds >= 0.0 {
        Duration::try_from_secs_f64(seconds).ok()
    } else {
        None
    }
}

/// RFC 3339 timestamps, and the zone-less ISO form older writers use (taken as UTC).
fn parse_timestamp(value: &str) -> Option<DateTime<FixedOffset>> {
    let value = value.trim();
    DateTime::parse_from_rfc3339(value).ok().or_else(|| {
        NaiveDateTime::parse_from_str(value, "%Y-%m-%dT%H:%M:%S%.f")
            .ok()
            .map(|naive| naive.and_utc().fixed_offset())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(xml: &str) -> Result<Parsed, ParseError> {
        let locate = |offset: u64| crate::input::line_column(xml.as_bytes(), offset);
        parse(xml.as_bytes(), xml.len() as u64, &locate)
    }

    #[test]
    fn failure_without_type_and_missing_time() {
        let parsed = parse_str(
            r#"<testsuite name="s"><testcase name="a"><failure>boom</failure></testcase></testsuite>"#,
        )
        .expect("parses");
        let case = &parsed.report.test_suites[0].test_cases[0];
        assert_eq!(case.time, None);
        assert!(matches!(
            &case.status,
            TestCaseStatus::NonSuccess { kind: NonSuccessKind::Failure, ty: None, description: Some(d), .. } if d.as_str() == "boom"
        ));
    }

    #[test]
    fn entity_declarations_are_refused_with_a_position() {
        let bomb = "<?xml version=\"1.0\"?>\n<!DOCTYPE lolz [<!ENTITY lol \"lol\"><!ENTITY lol2 \"&lol;&lol;\">]>\n<testsuite name=\"&lol2;\"/>";
        let error = parse_str(bomb).expect_err("refused");
        assert!(
            matches!(error, ParseError::Refused { line: 2, .. }),
            "{error:?}"
        );
    }

    #[test]
    fn undefined_entities_are_errors() {
        let error = parse_str("<testsuite name=\"s\"><testcase name=\"&xxe;\"/></testsuite>")
            .expect_err("undefined entity");
        assert!(
            matches!(error, ParseError::Xml { line: 1, .. }),
            "{error:?}"
        );
    }

    #[test]
    fn garbage_has_line_and_column() {
        let error = parse_str("<testsuite name=\"s\">\n  <testcase name=\"a\"></testsuite>")
            .expect_err("mismatched end tag");
        match error {
            ParseError::Xml { line, column, .. } => assert_eq!((line, column), (2, 22)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn lying_tests_attributes_reserve_no_more_than_the_input_could_hold() {
        let suite = r#"<testsuite name="s" tests="1000000000"><testcase name="a"/></testsuite>"#;
        let xml = format!("<testsuites>{}</testsuites>", suite.repeat(200));
        let parsed = parse_str(&xml).expect("parses");
        let reserved: usize = parsed
            .report
            .test_suites
            .iter()
            .map(|s| s.test_cases.capacity())
            .sum();
        let budget = xml.len() / RESERVE_BYTES_PER_CASE as usize;
        // A Vec that grows to hold one case allocates room for 4; the rest is the budget.
        assert!(reserved <= budget + 4 * 200, "{reserved} > {budget} + 800");
    }

    #[test]
    fn nesting_is_capped() {
        let deep = "<testsuite>".repeat(MAX_DEPTH + 1);
        let error = parse_str(&deep).expect_err("too deep");
        assert!(matches!(error, ParseError::TooDeep { .. }), "{error:?}");
    }
}
