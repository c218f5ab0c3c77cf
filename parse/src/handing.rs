//! Handing a text report's tests on as they complete, each test's attempts folded into one
//! case, in the order a whole read gives: the one path every text format takes, streamed or
//! read whole.
//!
//! A text parser ([`TextParser`]) reads its text line by line and gives each attempt (for
//! pytest, each outcome line) to an [`Out`]. The stream pass folds the attempts of a test
//! that follow one another (a retry right after its test) and hands the test on when the next
//! test starts. A test that appears again after other tests (`go test -count=2`, a gotestsum
//! rerun at the end) cannot be folded on the way. As for JUnit (`crate::stream`), a filter of
//! the tests seen (`crate::seen`) names the tests that may have repeated and one more pass
//! counts them; when one really did, the sink is told to forget what it received and the text
//! is read twice more: once to gather the repeated tests' attempts only, once to hand every
//! test on, a repeated one at its first place. Memory is the filter plus the attempts of
//! repeated tests, never the text.

use std::collections::BTreeMap;
use std::hash::BuildHasher;
use std::marker::PhantomData;

use quick_junit::{Report, TestCase, TestSuite};

use crate::attempts::{merge_attempts, EarlierPass};
use crate::error::ParseError;
use crate::format::Format;
use crate::go_json::GoJson;
use crate::libtest_json::LibtestJson;
use crate::libtest_text::LibtestText;
use crate::parsed::{Parsed, Summary};
use crate::pytest_text::PytestText;
use crate::seen::{Count, Seen};
use crate::stream::{hand_on_one, CaseSink, Streamed};
use crate::tap::Tap;
use crate::text::Text;
use crate::view::CaseView;

/// What reads one text format.
pub(crate) trait TextParser {
    /// What the text gives per attempt of a test.
    type Attempt: Attempt;

    /// The report's name.
    const NAME: &'static str;

    /// About the fewest bytes the text takes per test, to size the filter of tests seen;
    /// `None` when the parser gives every test a name of its own (TAP), so none can repeat.
    const BYTES_PER_TEST: Option<u64>;

    /// What an earlier attempt that passed means in this format.
    const EARLIER_PASS: EarlierPass = EarlierPass::Failed;

    /// Reads the text once, giving every attempt to `out` in the order the text has them.
    fn read(&self, text: &Text<'_>, out: &mut dyn Out<Self::Attempt>)
        -> Result<Ending, ParseError>;
}

/// One attempt of a test, as a text parser gives it.
pub(crate) trait Attempt: Sized {
    /// The classname and name of the test it belongs to.
    fn identity(&self) -> (&str, &str);

    /// One test's attempts, in the order they ran, as one case.
    fn fold(attempts: Vec<Self>, earlier: EarlierPass) -> Option<TestCase>;
}

impl Attempt for TestCase {
    fn identity(&self) -> (&str, &str) {
        crate::attempts::identity(self)
    }

    fn fold(attempts: Vec<Self>, earlier: EarlierPass) -> Option<TestCase> {
        merge_attempts(attempts, earlier)
    }
}

/// One test's attempts folded as parser `P` folds them.
fn fold<P: TextParser>(attempts: Vec<P::Attempt>) -> Option<TestCase> {
    P::Attempt::fold(attempts, P::EARLIER_PASS)
}

/// Where a text parser's attempts go.
pub(crate) trait Out<A> {
    /// The suite named `name`, made (after the others) if new: for its time and output.
    fn suite(&mut self, name: &str) -> &mut TestSuite;

    /// One attempt of a test of suite `suite`.
    fn attempt(&mut self, suite: &str, attempt: A);
}

/// A text report streamed, with the reasons it gives that concern one suite each.
pub(crate) type StreamedText = (Streamed, BTreeMap<String, String>);

/// What a pass leaves besides its attempts: why the run was cut short, when it was.
#[derive(Debug, Default)]
pub(crate) struct Ending {
    pub partial: Option<String>,
    /// Reasons that concern one suite each, by suite.
    pub suite_partial: BTreeMap<String, String>,
}

impl Ending {
    /// Every reason joined; none of them tied to a suite.
    pub(crate) fn of(reasons: Vec<String>) -> Ending {
        Ending {
            partial: (!reasons.is_empty()).then(|| reasons.join("; ")),
            suite_partial: BTreeMap::new(),
        }
    }
}

/// Streams a report in one of the text formats into `sink`; `None` for JUnit XML, which is
/// not read line by line. Also returns the reasons tied to suites.
pub(crate) fn stream_format(
    format: Format,
    text: &Text<'_>,
    size: u64,
    sink: &mut dyn CaseSink,
) -> Option<Result<StreamedText, ParseError>> {
    Some(match format {
        Format::PytestText => {
            PytestText::prepare(text).and_then(|parser| stream(&parser, text, size, sink))
        }
        Format::LibtestText => stream(&LibtestText, text, size, sink),
        Format::LibtestJson => stream(&LibtestJson, text, size, sink),
        Format::GoTestJson => stream(&GoJson, text, size, sink),
        Format::Tap => stream(&Tap, text, size, sink),
        Format::Junit | Format::Auto => return None,
    })
}

/// Reads a report in one of the text formats whole, its cases kept in their suites; `None`
/// for JUnit XML.
pub(crate) fn parse_format(
    format: Format,
    text: &Text<'_>,
    size: u64,
) -> Option<Result<Parsed, ParseError>> {
    let mut kept = Kept::default();
    let streamed = stream_format(format, text, size, &mut kept)?;
    Some(streamed.map(|(streamed, suite_partial)| {
        let mut report = streamed.report;
        report.test_suites = std::mem::take(&mut kept.suites);
        for suite in &mut report.test_suites {
            suite.test_cases = kept.cases.remove(suite.name.as_str()).unwrap_or_default();
        }
        Parsed {
            report,
            partial: streamed.partial,
            suite_partial,
        }
    }))
}

/// Streams a text report into `sink`. Also returns the reasons tied to suites.
fn stream<P: TextParser>(
    parser: &P,
    text: &Text<'_>,
    size: u64,
    sink: &mut dyn CaseSink,
) -> Result<StreamedText, ParseError> {
    let hasher = foldhash::fast::FixedState::default();
    let seen = P::BYTES_PER_TEST
        .map(|bytes| Seen::new(usize::try_from(size / bytes.max(1)).unwrap_or(usize::MAX)));
    let mut folding = Folding::<P> {
        parser: PhantomData,
        hand: Hand::new(sink),
        held: None,
        attempts: Vec::new(),
        seen,
        retried: foldhash::HashSet::default(),
        hasher: hasher.clone(),
    };
    let ending = parser.read(text, &mut folding)?;
    let (hand, suspects, retried) = folding.finish();
    let streamed = hand.streamed(P::NAME, ending);
    if suspects.is_empty() {
        return Ok(streamed);
    }
    let mut counting = Counting::<P> {
        parser: PhantomData,
        hasher: hasher.clone(),
        count: Count::new(suspects),
        scratch: TestSuite::new(""),
    };
    parser.read(text, &mut counting)?;
    let mut repeated = counting.count.repeated();
    if repeated.is_empty() {
        return Ok(streamed);
    }
    repeated.extend(retried);
    sink.restart();
    let mut gather = Gather::<P> {
        parser: PhantomData,
        hasher: hasher.clone(),
        tests: repeated.into_iter().map(|key| (key, Vec::new())).collect(),
        scratch: TestSuite::new(""),
    };
    parser.read(text, &mut gather)?;
    let mut emit = Emit::<P> {
        parser: PhantomData,
        hasher,
        hand: Hand::new(sink),
        tests: gather.tests,
    };
    let ending = parser.read(text, &mut emit)?;
    Ok(emit.hand.streamed(P::NAME, ending))
}

/// The suites of a whole read, and their cases by suite.
#[derive(Default)]
struct Kept {
    suites: Vec<TestSuite>,
    cases: foldhash::HashMap<String, Vec<TestCase>>,
}

impl CaseSink for Kept {
    fn case(&mut self, suite: &str, case: CaseView<'_>) {
        match self.cases.get_mut(suite) {
            Some(cases) => cases.push(case.to_case()),
            None => {
                self.cases.insert(suite.to_owned(), vec![case.to_case()]);
            }
        }
    }

    fn suite(&mut self, suite: &TestSuite) {
        self.suites.push(suite.clone());
    }

    fn restart(&mut self) {
        self.suites.clear();
        self.cases.clear();
    }
}

/// The suites of a pass, each with the counts of the cases handed on, and the cases handed
/// to the sink.
struct Hand<'s> {
    sink: &'s mut dyn CaseSink,
    suites: Vec<TestSuite>,
    summary: Summary,
}

impl<'s> Hand<'s> {
    fn new(sink: &'s mut dyn CaseSink) -> Self {
        Hand {
            sink,
            suites: Vec::new(),
            summary: Summary::default(),
        }
    }

    /// The index of the suite named `name`, made if new. Cases of one suite mostly come
    /// together, so the search starts from the latest suite.
    fn slot(&mut self, name: &str) -> usize {
        match self.suites.iter().rposition(|s| s.name.as_str() == name) {
            Some(index) => index,
            None => {
                self.suites.push(TestSuite::new(name));
                self.suites.len() - 1
            }
        }
    }

    /// The suite named `name`, made if new.
    fn suite(&mut self, name: &str) -> &mut TestSuite {
        let index = self.slot(name);
        &mut self.suites[index]
    }

    fn give(&mut self, suite: usize, case: Option<TestCase>) {
        if let Some(case) = case {
            hand_on_one(
                &mut *self.sink,
                &mut self.summary,
                &mut self.suites[suite],
                CaseView::of(&case),
            );
        }
    }

    /// Hands the suites on, after their cases.
    fn streamed(self, name: &str, ending: Ending) -> StreamedText {
        for suite in &self.suites {
            self.sink.suite(suite);
        }
        let report = Report::new(name);
        (
            Streamed::from_parts(report, ending.partial, self.summary),
            ending.suite_partial,
        )
    }
}

/// The key of a test: its suite, classname and name, hashed. A collision can only cause a
/// needless refold, never a wrong fold.
fn key(hasher: &foldhash::fast::FixedState, suite: &str, attempt: &impl Attempt) -> u64 {
    let (classname, name) = attempt.identity();
    hasher.hash_one((suite, classname, name))
}

/// The stream pass.
struct Folding<'s, 'p, P: TextParser> {
    /// The parser, whose attempts these are.
    parser: PhantomData<&'p P>,
    hand: Hand<'s>,
    /// The suite and key of the latest test, whose attempts are in `attempts`.
    held: Option<(usize, u64)>,
    attempts: Vec<P::Attempt>,
    /// The tests handed on; `None` when no test can repeat.
    seen: Option<Seen>,
    /// Keys of the tests whose adjacent attempts were folded on the way.
    retried: foldhash::HashSet<u64>,
    hasher: foldhash::fast::FixedState,
}

impl<'s, P: TextParser> Folding<'s, '_, P> {
    fn release(&mut self) {
        if let Some((suite, _)) = self.held.take() {
            let case = fold::<P>(std::mem::take(&mut self.attempts));
            self.hand.give(suite, case);
        }
    }

    /// The pass's suites and totals, the tests that may have repeated far apart, and those
    /// whose adjacent attempts were folded.
    fn finish(mut self) -> (Hand<'s>, foldhash::HashSet<u64>, foldhash::HashSet<u64>) {
        self.release();
        let suspects = self.seen.map(Seen::into_suspects).unwrap_or_default();
        (self.hand, suspects, self.retried)
    }
}

impl<P: TextParser> Out<P::Attempt> for Folding<'_, '_, P> {
    fn suite(&mut self, name: &str) -> &mut TestSuite {
        self.hand.suite(name)
    }

    fn attempt(&mut self, suite: &str, attempt: P::Attempt) {
        let key = key(&self.hasher, suite, &attempt);
        let index = self.hand.slot(suite);
        if self.held == Some((index, key)) {
            self.retried.insert(key);
            self.attempts.push(attempt);
            return;
        }
        self.release();
        if let Some(seen) = &mut self.seen {
            seen.insert(key);
        }
        self.held = Some((index, key));
        self.attempts.push(attempt);
    }
}

/// The pass that counts how often each suspect occurs.
struct Counting<'p, P: TextParser> {
    /// The parser, whose attempts these are.
    parser: PhantomData<&'p P>,
    hasher: foldhash::fast::FixedState,
    count: Count,
    scratch: TestSuite,
}

impl<P: TextParser> Out<P::Attempt> for Counting<'_, P> {
    fn suite(&mut self, _name: &str) -> &mut TestSuite {
        &mut self.scratch
    }

    fn attempt(&mut self, suite: &str, attempt: P::Attempt) {
        self.count.add(key(&self.hasher, suite, &attempt));
    }
}

/// The attempts of one repeated test, told apart from another test whose key collides.
struct Test<A> {
    suite: String,
    classname: String,
    name: String,
    /// `None` once handed on.
    attempts: Option<Vec<A>>,
}

impl<A> Test<A> {
    fn is(&self, suite: &str, (classname, name): (&str, &str)) -> bool {
        self.suite == suite && self.classname == classname && self.name == name
    }
}

/// The refold's first pass: the attempts of the repeated tests only.
struct Gather<'p, P: TextParser> {
    /// The parser, whose attempts these are.
    parser: PhantomData<&'p P>,
    hasher: foldhash::fast::FixedState,
    tests: foldhash::HashMap<u64, Vec<Test<P::Attempt>>>,
    /// Where suite details go in this pass: the emitting pass sets them.
    scratch: TestSuite,
}

impl<P: TextParser> Out<P::Attempt> for Gather<'_, P> {
    fn suite(&mut self, _name: &str) -> &mut TestSuite {
        &mut self.scratch
    }

    fn attempt(&mut self, suite: &str, attempt: P::Attempt) {
        let key = key(&self.hasher, suite, &attempt);
        let Some(tests) = self.tests.get_mut(&key) else {
            return;
        };
        let identity = attempt.identity();
        match tests.iter_mut().find(|test| test.is(suite, identity)) {
            Some(test) => test.attempts.get_or_insert_with(Vec::new).push(attempt),
            None => {
                let (classname, name) = identity;
                tests.push(Test {
                    suite: suite.to_owned(),
                    classname: classname.to_owned(),
                    name: name.to_owned(),
                    attempts: Some(vec![attempt]),
                });
            }
        }
    }
}

/// The refold's last pass: every test in text order, a repeated one folded at its first
/// place and skipped at the others.
struct Emit<'s, 'p, P: TextParser> {
    /// The parser, whose attempts these are.
    parser: PhantomData<&'p P>,
    hasher: foldhash::fast::FixedState,
    hand: Hand<'s>,
    tests: foldhash::HashMap<u64, Vec<Test<P::Attempt>>>,
}

impl<P: TextParser> Out<P::Attempt> for Emit<'_, '_, P> {
    fn suite(&mut self, name: &str) -> &mut TestSuite {
        self.hand.suite(name)
    }

    fn attempt(&mut self, suite: &str, attempt: P::Attempt) {
        let key = key(&self.hasher, suite, &attempt);
        let index = self.hand.slot(suite);
        let identity = attempt.identity();
        let gathered = self
            .tests
            .get_mut(&key)
            .and_then(|tests| tests.iter_mut().find(|test| test.is(suite, identity)));
        let case = match gathered {
            None => fold::<P>(vec![attempt]),
            Some(test) => match test.attempts.take() {
                Some(attempts) => fold::<P>(attempts),
                None => return,
            },
        };
        self.hand.give(index, case);
    }
}
