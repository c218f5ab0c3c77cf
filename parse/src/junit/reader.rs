//! The JUnit reader: walks the tokens of a report, keeps track of which element is open, and
//! builds suites and cases from them. Each completed case goes to a [`Cases`] output: into its
//! suite (the whole report), or on to a stream.

use std::io::Read;

use quick_junit::{Property, Report, TestSuite, XmlString};

use super::case::{open_case, Builder, OpenCase, ResultElement, ResultKind};
use super::chunks::{with_tokenizer_thread, ChunkTokens, THREADED_FROM_BYTES};
use super::values::{self, BadReference};
use super::xml::{Tag, Token, Tokenizer, XmlError, XmlErrorKind};
use crate::error::ParseError;
use crate::stream::Fields;
use crate::view::{self, Span};

/// Deeper nesting than this is refused; real reports nest a handful of levels.
pub(crate) const MAX_DEPTH: usize = 256;

/// Joins the names of nested `<testsuite>` elements into one flat suite name.
const SUITE_PATH_SEPARATOR: &str = " > ";

/// Input bytes per case that `tests` attributes may reserve room for: real reports spend
/// well over this on each `<testcase>`.
const RESERVE_BYTES_PER_CASE: u64 = 64;
/// The most cases all `tests` attributes together may reserve room for (about 77 MB of
/// `TestCase`s); beyond it the case lists just grow as cases arrive.
const MAX_RESERVED_CASES: usize = 1 << 18;

/// Where an error happened, for a message with line and column.
pub(crate) type Locate<'a> = &'a dyn Fn(u64) -> (u64, u64);

/// Where the reader puts each case it completes.
pub(crate) trait Cases {
    /// True when cases are kept in their suites, so a suite's `tests` attribute may size its
    /// case list.
    const KEEPS_CASES: bool;

    /// Why the output may stop a read.
    type Stop;

    /// A case of `suites[suite]` is complete: `builder` makes a `TestCase` of it when one is
    /// needed. The output may swap the buffer for another; the reader resets whichever it
    /// gets back. An error stops the read.
    fn push(
        &mut self,
        suites: &mut [SuiteSlot],
        suite: usize,
        case: &mut OpenCase,
        builder: &mut Builder,
    ) -> Result<(), Self::Stop>;

    /// `suites[suite]` has closed: every case of it has been pushed. When cases are not
    /// kept, the reader drops the slot right after (the suites a stream holds are the open
    /// ones, not every suite of the report).
    fn suite_closed(&mut self, suites: &mut [SuiteSlot], suite: usize);

    /// The document has ended, whole or cut short. The suites still held are those that
    /// never closed, and, when cases are kept, every suite.
    fn end(&mut self, suites: &mut [SuiteSlot]);
}

/// A `<testsuite>` being read; nested suites get their own entry with a joined name.
#[derive(Debug)]
pub(crate) struct SuiteSlot {
    pub suite: TestSuite,
    /// How many suites the document opened before this one: what tells it from the others
    /// in every pass over the document, where its index in the slots does not (a stream
    /// reuses the slot of a closed suite).
    pub ordinal: usize,
    /// Nested suites that held no cases of their own are dropped at the end.
    has_children: bool,
    /// Cases completed in this suite.
    pub cases: usize,
}

impl SuiteSlot {
    /// Whether the suite is part of the report: a nested suite's parent that holds no case
    /// of its own is not.
    pub fn is_reported(&self) -> bool {
        !(self.has_children && self.cases == 0)
    }
}

/// What the reader leaves when the document is read: the report (its suites, with or without
/// their cases), and why it is partial.
pub(crate) struct Ending {
    pub report: Report,
    pub partial: Option<String>,
}

/// Where the reader takes its tokens from: the tokenizer on this thread, or the chunks it
/// sends from another.
pub(super) trait Tokens {
    /// The next token and its offset in the input.
    fn next_located(&mut self) -> Result<(u64, Token<'_>), XmlError>;
}

impl<R: Read> Tokens for Tokenizer<R> {
    fn next_located(&mut self) -> Result<(u64, Token<'_>), XmlError> {
        Tokenizer::next_located(self)
    }
}

impl Tokens for ChunkTokens {
    fn next_located(&mut self) -> Result<(u64, Token<'_>), XmlError> {
        ChunkTokens::next_located(self)
    }
}

/// Reads a JUnit report. `locate` maps a byte offset to line and column and is only called
/// when something is wrong. `Ok(Err(stop))` is a read that `cases` stopped. A large report
/// is tokenized on a thread of its own while it is read here.
pub(crate) fn read<R: Read + Send, C: Cases>(
    input: R,
    input_size: u64,
    locate: Locate<'_>,
    fields: Fields,
    cases: &mut C,
) -> Result<Result<Ending, C::Stop>, ParseError> {
    let input = if input_size >= THREADED_FROM_BYTES {
        let threaded = with_tokenizer_thread(input, |tokens| {
            read_tokens(tokens, input_size, locate, fields, &mut *cases)
        });
        match threaded {
            Ok(read) => return read,
            Err(input) => input,
        }
    } else {
        input
    };
    read_tokens(
        &mut Tokenizer::for_size(input, input_size),
        input_size,
        locate,
        fields,
        cases,
    )
}

fn read_tokens<T: Tokens, C: Cases>(
    tokens: &mut T,
    input_size: u64,
    locate: Locate<'_>,
    fields: Fields,
    cases: &mut C,
) -> Result<Result<Ending, C::Stop>, ParseError> {
    let mut state = State::new(fields, input_size, C::KEEPS_CASES);
    loop {
        // Problems found in a token are reported where it starts.
        let (at, token) = match tokens.next_located() {
            Ok(located) => located,
            Err(error) => {
                if let XmlErrorKind::Truncated(_) = error.kind {
                    if state.seen_root {
                        return Ok(Ok(state.finish_truncated(&error.kind.to_string(), cases)));
                    }
                }
                let (line, column) = locate(error.offset);
                return Err(ParseError::Xml {
                    line,
                    column,
                    message: error.kind.to_string(),
                });
            }
        };
        let result = match token {
            Token::Start(tag) => state.open(&tag, cases),
            Token::End => state.close(cases).map_err(Stop::Cases),
            Token::Text(raw) => state.text(raw).map_err(Stop::from),
            Token::CData(raw) => {
                state.literal(raw);
                Ok(())
            }
            Token::DocType(doctype) => {
                if memchr::memmem::find(doctype, b"ENTITY").is_some() {
                    Err(Stop::Input(Problem::Refused(
                        "a document type that declares entities is refused (entity expansion and external entities are not supported)",
                    )))
                } else {
                    Ok(())
                }
            }
            Token::Eof => break,
        };
        match result {
            Ok(()) => {}
            Err(Stop::Cases(stop)) => return Ok(Err(stop)),
            Err(Stop::Input(problem)) => {
                let (line, column) = locate(at);
                return Err(problem.into_error(line, column));
            }
        }
    }
    if !state.seen_root {
        return Err(ParseError::NotThisFormat {
            format: "JUnit XML",
            reason: "no <testsuites> or <testsuite> element".to_owned(),
        });
    }
    Ok(Ok(if state.stack.is_empty() {
        state.finish(None, cases)
    } else {
        state.finish_truncated("the document ends before its elements are closed", cases)
    }))
}

/// Why reading stopped early: a problem with the input, or the output's `S`.
enum Stop<S> {
    Input(Problem),
    Cases(S),
}

/// What is wrong with the input.
enum Problem {
    Refused(&'static str),
    TooDeep,
    Reference(String),
}

impl<S> From<BadReference> for Stop<S> {
    fn from(bad: BadReference) -> Self {
        Stop::Input(Problem::Reference(bad.0))
    }
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
            Problem::Reference(message) => ParseError::Xml {
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

/// A `<property>` being read: its name, and its value unless that is the element's text.
enum OpenProperty {
    /// Of the open case, kept in its text.
    Case { name: Span, value: Option<Span> },
    /// Of a suite: names and short values repeat from suite to suite, so they are shared.
    Suite {
        name: XmlString,
        value: Option<XmlString>,
    },
}

struct State {
    fields: Fields,
    report_name: Option<String>,
    report_time: Option<std::time::Duration>,
    report_timestamp: Option<chrono::DateTime<chrono::FixedOffset>>,
    seen_root: bool,
    stack: Vec<Element>,
    suites: Vec<SuiteSlot>,
    /// Suites opened so far.
    opened: usize,
    /// The name of the first suite: the report's name when it is the only one.
    first_suite: Option<String>,
    /// Whether cases are kept in their suites (a whole read), so suites are too.
    keeps_cases: bool,
    /// The suite that collects cases written directly under `<testsuites>` (node:test).
    loose_suite: Option<usize>,
    case: Option<OpenCase>,
    /// The buffer the next case is read into.
    spare: OpenCase,
    text: String,
    /// The open `<property>`.
    property: Option<OpenProperty>,
    builder: Builder,
    /// Cases that `tests` attributes may still reserve room for, over all suites: bounded by
    /// the input's size, so a lying attribute (or a thousand of them) cannot allocate more
    /// than the input could hold. Zero when cases are not kept.
    reserve_budget: usize,
}

impl State {
    fn new(fields: Fields, input_size: u64, keeps_cases: bool) -> Self {
        let reserve_budget = if keeps_cases {
            usize::try_from(input_size / RESERVE_BYTES_PER_CASE)
                .unwrap_or(usize::MAX)
                .min(MAX_RESERVED_CASES)
        } else {
            0
        };
        Self {
            fields,
            report_name: None,
            report_time: None,
            report_timestamp: None,
            seen_root: false,
            stack: Vec::new(),
            suites: Vec::new(),
            opened: 0,
            first_suite: None,
            keeps_cases,
            loose_suite: None,
            case: None,
            spare: OpenCase::default(),
            text: String::new(),
            property: None,
            builder: Builder::default(),
            reserve_budget,
        }
    }

    fn open<C: Cases>(&mut self, tag: &Tag<'_>, cases: &mut C) -> Result<(), Stop<C::Stop>> {
        if self.stack.len() >= MAX_DEPTH {
            return Err(Stop::Input(Problem::TooDeep));
        }
        let name = tag.local_name();
        let in_case = self.case.is_some();
        let element = match name {
            b"testsuites" if self.stack.is_empty() => {
                self.seen_root = true;
                for (key, raw) in tag.attributes() {
                    match key {
                        b"name" => self.report_name = Some(values::attribute(raw)?.into_owned()),
                        b"time" => self.report_time = values::seconds(&values::attribute(raw)?),
                        b"timestamp" => {
                            self.report_timestamp = values::timestamp(&values::attribute(raw)?);
                        }
                        _ => {}
                    }
                }
                Element::Testsuites
            }
            b"testsuite" => {
                self.seen_root = true;
                Element::Testsuite(self.open_suite(tag)?)
            }
            b"testcase" if !in_case => {
                let suite = match self.current_suite() {
                    Some(suite) => suite,
                    None => self.loose_suite(),
                };
                let mut case = std::mem::take(&mut self.spare);
                open_case(&mut case, tag, suite)?;
                self.case = Some(case);
                Element::Testcase
            }
            b"properties" => Element::Properties,
            b"property"
                if self.stack.last() == Some(&Element::Properties)
                    && (self.fields.properties || !in_case) =>
            {
                self.property = Some(self.open_property(tag)?);
                self.text.clear();
                Element::Property
            }
            b"system-out" | b"system-err" if self.fields.output => {
                let stream = if name == b"system-out" {
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
            b"stackTrace"
                if self.stack.last() == Some(&Element::Result) && self.fields.descriptions =>
            {
                self.text.clear();
                Element::StackTrace
            }
            other => match (ResultKind::of(other), self.stack.last()) {
                (Some(kind), Some(Element::Testcase)) => {
                    let result = ResultElement::open(kind, tag)?;
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
        if tag.empty {
            self.close(cases).map_err(Stop::Cases)?;
        }
        Ok(())
    }

    fn open_property(&mut self, tag: &Tag<'_>) -> Result<OpenProperty, BadReference> {
        let (mut name, mut value) = (None, None);
        for (key, raw) in tag.attributes() {
            match key {
                b"name" => name = Some(values::attribute(raw)?),
                b"value" => value = Some(values::attribute(raw)?),
                _ => {}
            }
        }
        let name = name.unwrap_or_default();
        Ok(match &mut self.case {
            Some(case) => OpenProperty::Case {
                name: case.keep(&name),
                value: value.map(|value| case.keep(&value)),
            },
            None => {
                let interner = self.builder.interner();
                OpenProperty::Suite {
                    name: interner.get(&name),
                    value: value.map(|value| interner.get(&value)),
                }
            }
        })
    }

    fn open_suite(&mut self, tag: &Tag<'_>) -> Result<usize, BadReference> {
        let parent = self.current_suite();
        let mut suite = TestSuite::new("");
        let mut name = String::new();
        for (key, raw) in tag.attributes() {
            let value = values::attribute(raw)?;
            match key {
                b"name" => name = value.into_owned(),
                b"time" => suite.time = values::seconds(&value),
                b"timestamp" => suite.timestamp = values::timestamp(&value),
                // Counts are recomputed from the cases (Surefire's include every attempt);
                // `tests` only sizes the case list, within what the input can hold.
                b"tests" => {
                    let claimed: usize = value.trim().parse().unwrap_or(0);
                    let granted = claimed.min(self.reserve_budget);
                    self.reserve_budget -= granted;
                    suite.test_cases.reserve(granted);
                }
                b"failures" | b"errors" | b"skipped" | b"disabled" => {}
                _ => {
                    suite.extra.insert(
                        XmlString::new(values::utf8_lossy(key)),
                        XmlString::new(value),
                    );
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
        Ok(self.push_suite(suite))
    }

    fn push_suite(&mut self, suite: TestSuite) -> usize {
        if self.opened == 0 {
            self.first_suite = Some(suite.name.as_str().to_owned());
        }
        self.suites.push(SuiteSlot {
            suite,
            ordinal: self.opened,
            has_children: false,
            cases: 0,
        });
        self.opened += 1;
        self.suites.len() - 1
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
        let index = self.push_suite(TestSuite::new(name));
        self.loose_suite = Some(index);
        index
    }

    fn text(&mut self, raw: &[u8]) -> Result<(), BadReference> {
        self.scan_result_text(raw);
        if self.captures_text() {
            values::push_text(&mut self.text, raw)?;
        }
        Ok(())
    }

    fn literal(&mut self, raw: &[u8]) {
        self.scan_result_text(raw);
        if self.captures_text() {
            values::push_literal(&mut self.text, raw);
        }
    }

    /// A result's text is looked at (for Playwright's retries) even when it is not kept.
    fn scan_result_text(&mut self, raw: &[u8]) {
        if self.stack.last() == Some(&Element::Result) {
            if let Some(result) = self.case.as_mut().and_then(|c| c.results.last_mut()) {
                result.scan_text(raw);
            }
        }
    }

    fn captures_text(&self) -> bool {
        match self.stack.last() {
            Some(Element::Result) => self.fields.descriptions,
            Some(Element::Output(..) | Element::StackTrace | Element::Property) => true,
            _ => false,
        }
    }

    fn close<C: Cases>(&mut self, cases: &mut C) -> Result<(), C::Stop> {
        let Some(element) = self.stack.pop() else {
            return Ok(());
        };
        match element {
            Element::Testcase => {
                if let Some(mut case) = self.case.take() {
                    let suite = case.suite;
                    self.suites[suite].cases += 1;
                    let pushed = cases.push(&mut self.suites, suite, &mut case, &mut self.builder);
                    self.spare = case;
                    pushed?;
                }
            }
            Element::Property => match self.property.take() {
                Some(OpenProperty::Case { name, value }) => {
                    if let Some(case) = &mut self.case {
                        let value = value.unwrap_or_else(|| case.keep(&self.text));
                        case.add_property(name, value);
                    }
                }
                Some(OpenProperty::Suite { name, value }) => {
                    let value =
                        value.unwrap_or_else(|| XmlString::new(std::mem::take(&mut self.text)));
                    if let Some(suite) = self.current_suite() {
                        let property = Property::new(name, value);
                        self.suites[suite].suite.properties.push(property);
                    }
                }
                None => {}
            },
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
                            let text = Some(view::clean(text));
                            match stream {
                                OutputStream::Out => case.system_out = text,
                                OutputStream::Err => case.system_err = text,
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
            Element::Testsuite(index) => {
                cases.suite_closed(&mut self.suites, index);
                // A closed suite is the last slot: the suites opened inside it closed first.
                if !self.keeps_cases && index + 1 == self.suites.len() {
                    self.suites.pop();
                }
            }
            Element::Testsuites | Element::Properties | Element::Other => {}
        }
        Ok(())
    }

    fn finish_truncated<C: Cases>(mut self, why: &str, cases: &mut C) -> Ending {
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
        self.finish(Some(reason), cases)
    }

    fn finish<C: Cases>(mut self, partial: Option<String>, cases: &mut C) -> Ending {
        cases.end(&mut self.suites);
        let mut report = Report::new(
            self.report_name
                .clone()
                .or_else(|| self.first_suite.take().filter(|_| self.opened == 1))
                .unwrap_or_default(),
        );
        report.time = self.report_time;
        report.timestamp = self.report_timestamp;
        report.test_suites = self
            .suites
            .into_iter()
            .filter(SuiteSlot::is_reported)
            .map(|slot| slot.suite)
            .collect();
        Ending { report, partial }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parsed::Parsed;
    use quick_junit::{NonSuccessKind, TestCaseStatus};

    fn parse_str(xml: &str) -> Result<Parsed, ParseError> {
        let locate = |offset: u64| crate::input::line_column(xml.as_bytes(), offset);
        super::super::parse(xml.as_bytes(), xml.len() as u64, &locate)
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
