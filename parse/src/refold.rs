//! Folding the attempts of tests that appear again far apart (a gotestsum rerun written after
//! every other test, one name repeated late in a huge report) without holding the report.
//!
//! A streamed read hands each test on as soon as its next sibling starts, so a test that shows
//! up again later cannot be folded on the way. The streamed read's filter of the tests seen
//! names the tests that may have repeated; one more pass (`count`) tells which of them really
//! occur more than once (`Repeated`). When one does, instead of reading the whole report into
//! memory, it is read twice more, each pass holding only what it must:
//!
//! 1. **Gather**: the attempts of the repeated tests only, built and folded as a whole read
//!    folds them (a teardown error merged into the attempt right before it in its suite, then
//!    every attempt of one classname and name folded into one case).
//! 2. **Emit**: every test in document order, as the whole read orders them: a test read once
//!    is handed on as a view of the reader's buffer, a repeated one as its folded case at its
//!    first place, and its later places are skipped.
//!
//! Memory is the streamed read's filter plus the attempts of repeated tests, whatever the
//! report's size. A hash collision can only make two tests' attempts be gathered together;
//! they are told apart by their names again before folding, so it never folds two tests into
//! one.

use std::hash::BuildHasher;
use std::io::Read;

use quick_junit::TestCase;

use crate::attempts::{merge_attempts, EarlierPass};
use crate::error::ParseError;
use crate::junit::{self, merge_teardown, Builder, Cases, OpenCase, SuiteSlot};
use crate::parsed::Summary;
use crate::seen::Count;
use crate::stream::{hand_on_one, hand_on_suite, Fields, Streamed};
use crate::view::CaseView;

/// The keys of the tests that occur more than once in a report.
pub(crate) type Repeated = foldhash::HashSet<u64>;

/// Opens the report again for one more pass: its input and size.
pub(crate) type Reopen<'a, R> = &'a dyn Fn() -> Result<(R, u64), ParseError>;

/// Streams a JUnit report whose `repeated` tests are far apart into `sink`, in two passes.
pub(crate) fn stream_junit<R: Read + Send>(
    reopen: Reopen<'_, R>,
    locate: junit::Locate<'_>,
    fields: Fields,
    repeated: Repeated,
    sink: &mut dyn crate::stream::CaseSink,
) -> Result<Streamed, ParseError> {
    // A fixed seed: every pass must hash each test as the streamed read did.
    let hasher = foldhash::fast::FixedState::default();
    let mut gather = Gather {
        hasher: hasher.clone(),
        fields,
        attempts: repeated.into_iter().map(|key| (key, Vec::new())).collect(),
        last_in_suite: Vec::new(),
    };
    let (input, size) = reopen()?;
    let Ok(_) = junit::read(input, size, locate, fields, &mut gather)?;
    let folded = gather
        .attempts
        .into_iter()
        .map(|(key, attempts)| (key, Some(fold(attempts))))
        .collect();

    let mut emit = Emit {
        hasher,
        fields,
        sink,
        folded,
        summary: Summary::default(),
    };
    let (input, size) = reopen()?;
    let Ok(ending) = junit::read(input, size, locate, fields, &mut emit)?;
    Ok(Streamed::of(ending, emit.summary))
}

/// Which of the `suspects` (keys that may occur more than once) really do: one more pass.
pub(crate) fn count<R: Read + Send>(
    reopen: Reopen<'_, R>,
    locate: junit::Locate<'_>,
    fields: Fields,
    suspects: foldhash::HashSet<u64>,
) -> Result<Repeated, ParseError> {
    let mut counting = Counting {
        hasher: foldhash::fast::FixedState::default(),
        count: Count::new(suspects),
    };
    let (input, size) = reopen()?;
    let Ok(_) = junit::read(input, size, locate, fields, &mut counting)?;
    Ok(counting.count.repeated())
}

/// Counts the suspects' occurrences.
struct Counting {
    hasher: foldhash::fast::FixedState,
    count: Count,
}

impl Cases for Counting {
    const KEEPS_CASES: bool = false;
    type Stop = std::convert::Infallible;

    fn push(
        &mut self,
        suites: &mut [SuiteSlot],
        suite: usize,
        case: &mut OpenCase,
        _builder: &mut Builder,
    ) -> Result<(), Self::Stop> {
        self.count
            .add(key(&self.hasher, suites[suite].ordinal, case));
        Ok(())
    }

    fn suite_closed(&mut self, _suites: &mut [SuiteSlot], _suite: usize) {}

    fn end(&mut self, _suites: &mut [SuiteSlot]) {}
}

/// The key a test's attempts share: its suite (by `SuiteSlot::ordinal`), classname and name.
pub(crate) fn key(hasher: &foldhash::fast::FixedState, suite: usize, case: &OpenCase) -> u64 {
    hasher.hash_one((suite, case.classname().unwrap_or(""), case.name()))
}

/// One case per test among the attempts gathered under one key, in first-seen order, each
/// test's attempts folded as the whole read folds them.
fn fold(attempts: Vec<TestCase>) -> Vec<TestCase> {
    let mut tests: Vec<Vec<TestCase>> = Vec::new();
    for attempt in attempts {
        let same =
            |other: &TestCase| other.name == attempt.name && other.classname == attempt.classname;
        match tests
            .iter_mut()
            .find(|group| group.first().is_some_and(same))
        {
            Some(group) => group.push(attempt),
            None => tests.push(vec![attempt]),
        }
    }
    tests
        .into_iter()
        .filter_map(|attempts| merge_attempts(attempts, EarlierPass::Failed))
        .collect()
}

/// The attempts of the repeated tests, a teardown error merged into the attempt right
/// before it in its suite.
struct Gather {
    hasher: foldhash::fast::FixedState,
    fields: Fields,
    attempts: foldhash::HashMap<u64, Vec<TestCase>>,
    /// The key of each suite's latest case.
    last_in_suite: Vec<Option<u64>>,
}

impl Cases for Gather {
    const KEEPS_CASES: bool = false;
    type Stop = std::convert::Infallible;

    fn push(
        &mut self,
        suites: &mut [SuiteSlot],
        suite: usize,
        case: &mut OpenCase,
        builder: &mut Builder,
    ) -> Result<(), Self::Stop> {
        let key = key(&self.hasher, suites[suite].ordinal, case);
        if self.last_in_suite.len() <= suite {
            self.last_in_suite.resize(suite + 1, None);
        }
        let follows_itself = self.last_in_suite[suite] == Some(key);
        self.last_in_suite[suite] = Some(key);
        if let Some(attempts) = self.attempts.get_mut(&key) {
            let next = builder.build(case, self.fields);
            let previous = if follows_itself {
                attempts.last_mut()
            } else {
                None
            };
            if let Some(next) = merge_teardown(previous, next, self.fields) {
                attempts.push(next);
            }
        }
        Ok(())
    }

    fn suite_closed(&mut self, _suites: &mut [SuiteSlot], suite: usize) {
        // The slot is given to the next suite.
        if let Some(last) = self.last_in_suite.get_mut(suite) {
            *last = None;
        }
    }

    fn end(&mut self, _suites: &mut [SuiteSlot]) {}
}

/// Every test in document order, a repeated one at its first place.
struct Emit<'s> {
    hasher: foldhash::fast::FixedState,
    fields: Fields,
    sink: &'s mut dyn crate::stream::CaseSink,
    /// The folded cases of each repeated test; `None` once handed on.
    folded: foldhash::HashMap<u64, Option<Vec<TestCase>>>,
    summary: Summary,
}

impl Cases for Emit<'_> {
    const KEEPS_CASES: bool = false;
    type Stop = std::convert::Infallible;

    fn push(
        &mut self,
        suites: &mut [SuiteSlot],
        suite: usize,
        case: &mut OpenCase,
        _builder: &mut Builder,
    ) -> Result<(), Self::Stop> {
        let key = key(&self.hasher, suites[suite].ordinal, case);
        let slot = &mut suites[suite].suite;
        match self.folded.get_mut(&key) {
            None => {
                let status = case.status(self.fields);
                hand_on_one(&mut *self.sink, &mut self.summary, slot, case.view(&status));
            }
            Some(folded) => {
                for case in folded.take().unwrap_or_default() {
                    hand_on_one(
                        &mut *self.sink,
                        &mut self.summary,
                        slot,
                        CaseView::of(&case),
                    );
                }
            }
        }
        Ok(())
    }

    fn suite_closed(&mut self, suites: &mut [SuiteSlot], suite: usize) {
        hand_on_suite(&mut *self.sink, &suites[suite]);
    }

    fn end(&mut self, suites: &mut [SuiteSlot]) {
        for slot in suites.iter() {
            hand_on_suite(&mut *self.sink, slot);
        }
    }
}
