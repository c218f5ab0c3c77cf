//! Reading a report case by case: each test, its attempts folded, goes to a [`CaseSink`] as
//! soon as it is complete, so a report of any size is read in constant memory.
//!
//! JUnit XML is streamed. Retries that follow their test directly (pytest-rerunfailures, a
//! pytest teardown error) fold on the way. A test that appears again after other tests (a
//! gotestsum rerun at the end) cannot: the sink is told to forget what it received and gets
//! every case again from three more passes over the report that hold only the repeated tests'
//! attempts (`crate::refold`), in the order a whole read gives. TAP is streamed line by line,
//! each test point handed on once complete (`tap::read`). The other text formats are read
//! whole, then handed on.

use std::path::Path;

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};

use crate::attempts::{merge_attempts, EarlierPass};
use crate::error::ParseError;
use crate::format::Format;
use crate::input::{self, Limits};
use crate::junit::{self, merge_teardown, Builder, Cases, OpenCase, SuiteSlot};
use crate::parsed::{Parsed, Summary};
use crate::refold;
use crate::tap;
use crate::view::CaseView;

/// The parts of each case a caller reads. The others are skipped while reading: less work,
/// less memory, and nothing handed on that nobody asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fields {
    /// `<property>` elements of cases (a suite's properties are always kept).
    pub properties: bool,
    /// `<system-out>` and `<system-err>`, of suites, cases and reruns.
    pub output: bool,
    /// The text of failures, errors and skips (tracebacks), and of rerun elements. Their
    /// `message` attributes are always kept.
    pub descriptions: bool,
}

impl Fields {
    pub const ALL: Fields = Fields {
        properties: true,
        output: true,
        descriptions: true,
    };
}

/// What receives a report's cases as they are read.
pub trait CaseSink {
    /// One test, its attempts folded into one case, in report order. `suite` is the name of
    /// its `<testsuite>` (nested suites joined with ` > `). The view borrows what the reader
    /// holds only until this returns: [`CaseView::to_case`] keeps it.
    fn case(&mut self, suite: &str, case: CaseView<'_>);

    /// Forget every case received so far: the report is read again from its start, whole.
    fn restart(&mut self);
}

/// What a streamed read leaves besides its cases.
#[derive(Debug, Clone, PartialEq)]
pub struct Streamed {
    /// The report's name, time and timestamp, and its suites with their properties and
    /// totals, but without their cases: those went to the sink.
    pub report: Report,
    /// Why the run behind the report was cut short, when it was.
    pub partial: Option<String>,
    /// Totals over every case the sink received (after its last restart).
    pub summary: Summary,
}

/// Streams a report file's cases into `sink`.
pub fn stream_file(
    path: &Path,
    format: Format,
    limits: Limits,
    fields: Fields,
    sink: &mut dyn CaseSink,
) -> Result<Streamed, ParseError> {
    let opened = input::open(path, format, limits)?;
    if opened.format == Format::Tap {
        let mut error = None;
        let lines = Lines {
            reader: opened.reader,
            buf: Vec::new(),
            error: &mut error,
        };
        let streamed = stream_tap(lines, sink);
        return match error {
            Some(source) => Err(ParseError::Read {
                path: path.to_path_buf(),
                source,
            }),
            None => streamed,
        };
    }
    if opened.format != Format::Junit {
        return Ok(hand_on(input::parse_opened(opened)?, sink));
    }
    let locate = input::locate_in_file(path);
    let size = opened.size;
    match stream_junit(opened.reader, size, &locate, fields, sink)? {
        Ok(streamed) => Ok(streamed),
        Err(repeated) => {
            sink.restart();
            let reopen = || {
                let opened = input::open(path, Format::Junit, limits)?;
                Ok((opened.reader, opened.size))
            };
            refold::stream_junit(&reopen, &locate, fields, repeated, sink)
        }
    }
}

/// Streams the cases of a report held in memory into `sink`.
pub fn stream_bytes(
    bytes: &[u8],
    format: Format,
    limits: Limits,
    fields: Fields,
    sink: &mut dyn CaseSink,
) -> Result<Streamed, ParseError> {
    let format = input::check_bytes(bytes, format, limits)?;
    if format == Format::Tap {
        // As `str::lines` splits: no last line after a final newline, `\r\n` ends a line too.
        let body = bytes.strip_suffix(b"\n").unwrap_or(bytes);
        let lines = body
            .split(|b| *b == b'\n')
            .map(|line| String::from_utf8_lossy(line.strip_suffix(b"\r").unwrap_or(line)));
        return stream_tap(lines, sink);
    }
    if format != Format::Junit {
        return Ok(hand_on(input::parse_bytes(bytes, format, limits)?, sink));
    }
    let locate = |offset: u64| input::line_column(bytes, offset);
    match stream_junit(bytes, bytes.len() as u64, &locate, fields, sink)? {
        Ok(streamed) => Ok(streamed),
        Err(repeated) => {
            sink.restart();
            let reopen = || Ok((bytes, bytes.len() as u64));
            refold::stream_junit(&reopen, &locate, fields, repeated, sink)
        }
    }
}

/// Hands every case of a whole report on, leaving the report without its cases.
pub fn hand_on(mut parsed: Parsed, sink: &mut dyn CaseSink) -> Streamed {
    let mut summary = Summary::default();
    for suite in &mut parsed.report.test_suites {
        for case in std::mem::take(&mut suite.test_cases) {
            summary.add(&case);
            sink.case(suite.name.as_str(), CaseView::of(&case));
        }
    }
    Streamed {
        report: parsed.report,
        partial: parsed.partial,
        summary,
    }
}

/// The report streamed, or, when a test appeared again after other tests, the keys of every
/// test that occurs more than once: the cases handed on are then to be forgotten and the
/// report read again by `crate::refold`.
fn stream_junit(
    input: impl std::io::Read + Send,
    size: u64,
    locate: junit::Locate<'_>,
    fields: Fields,
    sink: &mut dyn CaseSink,
) -> Result<Result<Streamed, refold::Repeated>, ParseError> {
    let mut stream = Stream {
        sink,
        fields,
        held: None,
        held_key: 0,
        single: OpenCase::default(),
        attempts: Vec::new(),
        seen: foldhash::HashSet::with_capacity_and_hasher(expected_cases(size), Default::default()),
        retried: foldhash::HashSet::default(),
        repeated: None,
        hasher: foldhash::fast::FixedState::default(),
        summary: Summary::default(),
    };
    let Ok(ending) = junit::read(input, size, locate, fields, &mut stream)?;
    if let Some(repeated) = stream.repeated {
        return Ok(Err(repeated));
    }
    Ok(Ok(Streamed::of(ending, stream.summary)))
}

impl Streamed {
    /// What a streamed read leaves: the report without its cases, its totals summed from its
    /// suites' counts of the cases handed on.
    pub(crate) fn of(ending: junit::Ending, summary: Summary) -> Streamed {
        Streamed::from_parts(ending.report, ending.partial, summary)
    }

    fn from_parts(mut report: Report, partial: Option<String>, summary: Summary) -> Streamed {
        report.tests = report.test_suites.iter().map(|s| s.tests).sum();
        report.failures = report.test_suites.iter().map(|s| s.failures).sum();
        report.errors = report.test_suites.iter().map(|s| s.errors).sum();
        report.skipped = report.test_suites.iter().map(|s| s.skipped).sum();
        report.disabled = None;
        Streamed {
            report,
            partial,
            summary,
        }
    }
}

/// Room for the test keys of a report of `size` bytes, so the set of keys is made once at its
/// final size instead of doubling as it fills: a doubling holds the old table and the new one
/// at once, which was a third of a 1M-case ingest's peak. A JUnit `<testcase>` with its name
/// and attributes takes about 256 bytes or more (pytest's take about 450), so this rarely
/// falls short; the pages of a table that is larger than needed are never touched, apart from
/// its control bytes (one per slot).
fn expected_cases(size: u64) -> usize {
    usize::try_from(size / 256)
        .unwrap_or(usize::MAX)
        .min(1 << 24)
}

/// A text report's cases handed on as they complete; its suites keep their counts only.
struct Handing<'s> {
    sink: &'s mut dyn CaseSink,
    suites: Vec<TestSuite>,
    summary: Summary,
}

impl Handing<'_> {
    /// The index of the suite named `name`, made if new. Cases of one suite come together, so
    /// the search starts from the latest suite.
    fn slot(&mut self, name: &str) -> usize {
        match self.suites.iter().rposition(|s| s.name.as_str() == name) {
            Some(index) => index,
            None => {
                self.suites.push(TestSuite::new(name));
                self.suites.len() - 1
            }
        }
    }
}

impl tap::CaseOut for Handing<'_> {
    fn suite(&mut self, name: &str) {
        self.slot(name);
    }

    fn push(&mut self, suite: &str, case: TestCase) {
        let index = self.slot(suite);
        hand_on_one(
            &mut *self.sink,
            &mut self.summary,
            &mut self.suites[index],
            CaseView::of(&case),
        );
    }
}

/// Streams TAP lines into `sink`: each test point is handed on once complete, so memory holds
/// one top-level point (with its subtests) at a time, not the report.
fn stream_tap<S: AsRef<str>>(
    lines: impl Iterator<Item = S>,
    sink: &mut dyn CaseSink,
) -> Result<Streamed, ParseError> {
    let mut out = Handing {
        sink,
        suites: Vec::new(),
        summary: Summary::default(),
    };
    let reasons = tap::read(lines, &mut out)?;
    let mut report = Report::new("tap");
    report.test_suites = out.suites;
    Ok(Streamed::from_parts(
        report,
        tap::joined(&reasons),
        out.summary,
    ))
}

/// The lines of a text read from `reader`, each decoded lossily (as a whole read decodes the
/// text), without their `\n` or `\r\n`. A read error ends the lines and is kept in `error`.
struct Lines<'e, R> {
    reader: R,
    buf: Vec<u8>,
    error: &'e mut Option<std::io::Error>,
}

impl<R: std::io::BufRead> Iterator for Lines<'_, R> {
    type Item = String;

    fn next(&mut self) -> Option<String> {
        self.buf.clear();
        match self.reader.read_until(b'\n', &mut self.buf) {
            Ok(0) => None,
            Ok(_) => {
                if self.buf.last() == Some(&b'\n') {
                    self.buf.pop();
                    if self.buf.last() == Some(&b'\r') {
                        self.buf.pop();
                    }
                }
                Some(String::from_utf8_lossy(&self.buf).into_owned())
            }
            Err(error) => {
                *self.error = Some(error);
                None
            }
        }
    }
}

/// Hands cases on as they complete, holding back the latest test until the next one starts:
/// its retry or teardown error, if it has one, comes next. A test read once (nearly all) is
/// handed on as a view of the reader's buffer; only one with several attempts is built into
/// `TestCase`s to be folded.
struct Stream<'s> {
    sink: &'s mut dyn CaseSink,
    fields: Fields,
    /// The suite of the latest test.
    held: Option<usize>,
    /// The key of the latest test.
    held_key: u64,
    /// The latest test while it has one attempt.
    single: OpenCase,
    /// The latest test's attempts once it has more than one (empty otherwise; kept in one
    /// list for the whole read).
    attempts: Vec<TestCase>,
    /// Hashes of (suite, classname, name) of every test handed on. A collision can only
    /// cause a needless refold, never a wrong fold.
    seen: foldhash::HashSet<u64>,
    /// Keys of the tests whose adjacent attempts were folded on the way: they occur more than
    /// once too, should the report have to be refolded.
    retried: foldhash::HashSet<u64>,
    /// Set once a test appeared again after other tests. From then on nothing is handed on:
    /// the rest of the report is only tallied, for every key that occurs more than once.
    repeated: Option<refold::Repeated>,
    hasher: foldhash::fast::FixedState,
    summary: Summary,
}

impl Stream<'_> {
    /// Whether `case` is another attempt of the held test (a retry or a teardown error).
    fn holds_test_of(&self, suite: usize, case: &OpenCase) -> bool {
        if self.held != Some(suite) {
            return false;
        }
        match self.attempts.last() {
            Some(last) => case.same_test(
                last.name.as_str(),
                last.classname.as_ref().map(|c| c.as_str()),
            ),
            None => case.same_test(self.single.name(), self.single.classname()),
        }
    }

    /// Folds the held test's attempts and hands it on.
    fn release(&mut self, suites: &mut [SuiteSlot]) {
        let Some(suite) = self.held.take() else {
            return;
        };
        let slot = &mut suites[suite].suite;
        if self.attempts.is_empty() {
            let status = self.single.status(self.fields);
            let case = self.single.view(&status);
            hand_on_one(&mut *self.sink, &mut self.summary, slot, case);
        } else if let Some(case) =
            merge_attempts(std::mem::take(&mut self.attempts), EarlierPass::Failed)
        {
            hand_on_one(
                &mut *self.sink,
                &mut self.summary,
                slot,
                CaseView::of(&case),
            );
        }
    }
}

/// Counts a test in its suite and in the summary, and gives it to the sink.
pub(crate) fn hand_on_one(
    sink: &mut dyn CaseSink,
    summary: &mut Summary,
    suite: &mut quick_junit::TestSuite,
    case: CaseView<'_>,
) {
    suite.tests += 1;
    match case.status {
        TestCaseStatus::Success { .. } => {}
        TestCaseStatus::NonSuccess {
            kind: NonSuccessKind::Failure,
            ..
        } => suite.failures += 1,
        TestCaseStatus::NonSuccess {
            kind: NonSuccessKind::Error,
            ..
        } => suite.errors += 1,
        TestCaseStatus::Skipped { .. } => suite.skipped += 1,
    }
    summary.count(case.status);
    sink.case(suite.name.as_str(), case);
}

impl Cases for Stream<'_> {
    const KEEPS_CASES: bool = false;
    type Stop = std::convert::Infallible;

    fn push(
        &mut self,
        suites: &mut [SuiteSlot],
        suite: usize,
        case: &mut OpenCase,
        builder: &mut Builder,
    ) -> Result<(), Self::Stop> {
        if let Some(repeated) = &mut self.repeated {
            let key = refold::key(&self.hasher, suite, case);
            if !self.seen.insert(key) {
                repeated.insert(key);
            }
            return Ok(());
        }
        if self.holds_test_of(suite, case) {
            self.retried.insert(self.held_key);
            if self.attempts.is_empty() {
                let first = builder.build(&mut self.single, self.fields);
                self.attempts.push(first);
            }
            let next = builder.build(case, self.fields);
            if let Some(next) = merge_teardown(self.attempts.last_mut(), next, self.fields) {
                self.attempts.push(next);
            }
            return Ok(());
        }
        self.release(suites);
        let key = refold::key(&self.hasher, suite, case);
        if !self.seen.insert(key) {
            let mut repeated = std::mem::take(&mut self.retried);
            repeated.insert(key);
            self.repeated = Some(repeated);
            return Ok(());
        }
        self.held = Some(suite);
        self.held_key = key;
        std::mem::swap(&mut self.single, case);
        Ok(())
    }

    fn end(&mut self, suites: &mut [SuiteSlot]) {
        if self.repeated.is_none() {
            self.release(suites);
        }
    }
}
