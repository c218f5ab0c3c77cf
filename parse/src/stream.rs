//! Reading a report case by case: each test, its attempts folded, goes to a [`CaseSink`] as
//! soon as it is complete, and each suite once it has ended, so a report of any size is read
//! in constant memory.
//!
//! JUnit XML is streamed. Retries that follow their test directly (pytest-rerunfailures, a
//! pytest teardown error) fold on the way. A test that appears again after other tests (a
//! gotestsum rerun at the end) cannot: a filter of the tests seen (`crate::seen`) names the
//! tests that may have repeated, one more pass counts them, and when one really did, the sink
//! is told to forget what it received and gets every case again from two more passes that
//! hold only the repeated tests' attempts (`crate::refold`), in the order a whole read gives. The text formats are read
//! line by line, each test handed on once complete (`crate::handing`).

use std::path::Path;

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};

use crate::attempts::{merge_attempts, EarlierPass};
use crate::error::ParseError;
use crate::format::Format;
use crate::handing;
use crate::input::{self, Limits};
use crate::junit::{self, merge_teardown, Builder, Cases, OpenCase, SuiteSlot};
use crate::parsed::{Parsed, Summary};
use crate::refold;
use crate::seen::Seen;
use crate::text::Text;
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

    /// A suite is complete, after its last case: its name, time, properties, output and
    /// counts, without its cases. Suites come in the order they end (a nested suite before
    /// its parent), each once (after the last restart).
    fn suite(&mut self, suite: &TestSuite);

    /// Forget every case and suite received so far: the report is read again from its start.
    fn restart(&mut self);
}

/// What a streamed read leaves besides its cases and suites.
#[derive(Debug, Clone, PartialEq)]
pub struct Streamed {
    /// The report's name, time, timestamp and totals. Its suites went to the sink, each as it
    /// ended, so `test_suites` is empty: a report of 300,000 suites is not held either.
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
    let text = Text::File {
        path,
        format: opened.format,
        limits,
    };
    if let Some(streamed) = handing::stream_format(opened.format, &text, opened.size, sink) {
        return streamed.map(|(streamed, _)| streamed);
    }
    let locate = input::locate_in_file(path);
    let size = opened.size;
    let (streamed, found) = stream_junit(opened.reader, size, &locate, fields, sink)?;
    let reopen = || {
        let opened = input::open(path, Format::Junit, limits)?;
        Ok((opened.reader, opened.size))
    };
    settle(streamed, found, &reopen, &locate, fields, sink)
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
    let size = bytes.len() as u64;
    if let Some(streamed) = handing::stream_format(format, &Text::Bytes(bytes), size, sink) {
        return streamed.map(|(streamed, _)| streamed);
    }
    let locate = |offset: u64| input::line_column(bytes, offset);
    let (streamed, found) = stream_junit(bytes, size, &locate, fields, sink)?;
    let reopen = || Ok((bytes, size));
    settle(streamed, found, &reopen, &locate, fields, sink)
}

/// Hands every case and suite of a whole report on, leaving the report without them.
pub fn hand_on(mut parsed: Parsed, sink: &mut dyn CaseSink) -> Streamed {
    let mut summary = Summary::default();
    for mut suite in std::mem::take(&mut parsed.report.test_suites) {
        for case in std::mem::take(&mut suite.test_cases) {
            summary.add(&case);
            sink.case(suite.name.as_str(), CaseView::of(&case));
        }
        sink.suite(&suite);
    }
    Streamed::from_parts(parsed.report, parsed.partial, summary)
}

/// What a streamed read found out about repeated tests.
struct Found {
    /// Tests that may have appeared again after other tests (the filter's suspects).
    suspects: foldhash::HashSet<u64>,
    /// Tests whose adjacent attempts were folded on the way.
    retried: foldhash::HashSet<u64>,
}

/// The report streamed, every case handed on, with what it found out about repeated tests.
fn stream_junit(
    input: impl std::io::Read + Send,
    size: u64,
    locate: junit::Locate<'_>,
    fields: Fields,
    sink: &mut dyn CaseSink,
) -> Result<(Streamed, Found), ParseError> {
    let mut stream = Stream {
        sink,
        fields,
        held: None,
        held_key: 0,
        single: OpenCase::default(),
        attempts: Vec::new(),
        seen: Seen::new(expected_cases(size)),
        retried: foldhash::HashSet::default(),
        hasher: foldhash::fast::FixedState::default(),
        summary: Summary::default(),
    };
    let Ok(ending) = junit::read(input, size, locate, fields, &mut stream)?;
    let found = Found {
        suspects: stream.seen.into_suspects(),
        retried: stream.retried,
    };
    Ok((Streamed::of(ending, stream.summary), found))
}

/// A streamed read's result once its suspects are settled: when none of them repeats (the
/// filter's false positives), the cases handed on stand; when one does, the sink forgets them
/// and gets every case again from `crate::refold`, the repeated tests folded.
fn settle<R: std::io::Read + Send>(
    streamed: Streamed,
    found: Found,
    reopen: refold::Reopen<'_, R>,
    locate: junit::Locate<'_>,
    fields: Fields,
    sink: &mut dyn CaseSink,
) -> Result<Streamed, ParseError> {
    if found.suspects.is_empty() {
        return Ok(streamed);
    }
    let mut repeated = refold::count(reopen, locate, fields, found.suspects)?;
    if repeated.is_empty() {
        return Ok(streamed);
    }
    repeated.extend(found.retried);
    sink.restart();
    refold::stream_junit(reopen, locate, fields, repeated, sink)
}

impl Streamed {
    /// What a streamed read leaves: the report without its cases and suites, its totals
    /// those of the cases handed on.
    pub(crate) fn of(ending: junit::Ending, summary: Summary) -> Streamed {
        Streamed::from_parts(ending.report, ending.partial, summary)
    }

    pub(crate) fn from_parts(
        mut report: Report,
        partial: Option<String>,
        summary: Summary,
    ) -> Streamed {
        report.test_suites = Vec::new();
        report.tests = summary.tests;
        report.failures = summary.failed;
        report.errors = summary.errored;
        report.skipped = summary.skipped;
        report.disabled = None;
        Streamed {
            report,
            partial,
            summary,
        }
    }
}

/// About how many tests a JUnit report of `size` bytes holds, to size the filter of the tests
/// seen: a `<testcase>` with its name and attributes takes about 256 bytes or more (pytest's
/// take about 450), so this rarely falls short.
fn expected_cases(size: u64) -> usize {
    usize::try_from(size / 256)
        .unwrap_or(usize::MAX)
        .min(1 << 24)
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
    /// Hashes of (suite, classname, name) of every test handed on, in a filter. A collision
    /// can only cause a needless refold, never a wrong fold.
    seen: Seen,
    /// Keys of the tests whose adjacent attempts were folded on the way: they occur more than
    /// once too, should the report have to be refolded.
    retried: foldhash::HashSet<u64>,
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
        let key = refold::key(&self.hasher, suites[suite].ordinal, case);
        self.seen.insert(key);
        self.held = Some(suite);
        self.held_key = key;
        std::mem::swap(&mut self.single, case);
        Ok(())
    }

    fn suite_closed(&mut self, suites: &mut [SuiteSlot], suite: usize) {
        if self.held == Some(suite) {
            self.release(suites);
        }
        hand_on_suite(&mut *self.sink, &suites[suite]);
    }

    fn end(&mut self, suites: &mut [SuiteSlot]) {
        self.release(suites);
        for slot in suites.iter() {
            hand_on_suite(&mut *self.sink, slot);
        }
    }
}

/// Gives a closed suite to the sink, when it is part of the report.
pub(crate) fn hand_on_suite(sink: &mut dyn CaseSink, slot: &SuiteSlot) {
    if slot.is_reported() {
        sink.suite(&slot.suite);
    }
}
