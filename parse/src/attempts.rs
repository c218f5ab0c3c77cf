//! Folds the attempts of one test into one case, and recounts totals from the cases.
//!
//! Runners record retries in different ways: pytest-rerunfailures and gotestsum write every
//! attempt as its own `<testcase>` (or event), Surefire and nextest nest earlier attempts as
//! `<flakyFailure>`/`<rerunFailure>`. Parsers hand every attempt over as a `TestCase` in the
//! order it ran; `fold_retries` turns each group of attempts with the same classname and name
//! into one case whose earlier attempts are its flaky runs (it passed at last) or reruns (it
//! never passed). Totals are then counted from cases, never from a runner's own attributes,
//! so a retried test counts once.

use foldhash::{HashMap, HashMapExt as _};

use quick_junit::{
    FlakyOrRerun, NonSuccessKind, Report, TestCase, TestCaseStatus, TestRerun, TestSuite,
};

/// What an earlier attempt that shows no failure means, which depends on the runner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum EarlierPass {
    /// A failed attempt written bare: pytest-rerunfailures writes earlier attempts as plain
    /// `<testcase>` elements, and a test is only run again because it did not pass.
    #[default]
    Failed,
    /// A real pass: the runner runs every test several times (`go test -count=N`), and its
    /// events say how each attempt ended. A passing earlier attempt is no failure: it is not
    /// kept, so a test that passed every time is one passing test, not a flaky one.
    Passed,
}

/// The classname and name that tell one test's attempts from another test's.
pub(crate) fn identity(case: &TestCase) -> (&str, &str) {
    (
        case.classname.as_ref().map_or("", |c| c.as_str()),
        case.name.as_str(),
    )
}

/// Folds attempts of the same (classname, name) into one case, keeping first-seen order.
pub(crate) fn fold_retries(cases: Vec<TestCase>, earlier: EarlierPass) -> Vec<TestCase> {
    if cases.len() < 2 {
        return cases;
    }
    let mut group_of = Vec::with_capacity(cases.len());
    let mut groups = 0usize;
    {
        let mut first_seen: HashMap<(&str, &str), usize> = HashMap::with_capacity(cases.len());
        for case in &cases {
            let key = identity(case);
            let group = *first_seen.entry(key).or_insert_with(|| {
                groups += 1;
                groups - 1
            });
            group_of.push(group);
        }
    }
    if groups == cases.len() {
        return cases;
    }
    let mut grouped: Vec<Vec<TestCase>> = (0..groups).map(|_| Vec::new()).collect();
    for (case, group) in cases.into_iter().zip(group_of) {
        grouped[group].push(case);
    }
    grouped
        .into_iter()
        .filter_map(|attempts| merge_attempts(attempts, earlier))
        .collect()
}

/// One case from its attempts in run order: the last attempt decides the outcome.
pub(crate) fn merge_attempts(mut attempts: Vec<TestCase>, pass: EarlierPass) -> Option<TestCase> {
    let mut last = attempts.pop()?;
    if attempts.is_empty() {
        return Some(last);
    }
    let mut earlier: Vec<TestRerun> = Vec::new();
    for attempt in attempts {
        let failed = matches!(attempt.status, TestCaseStatus::NonSuccess { .. });
        if failed || pass == EarlierPass::Failed {
            earlier.extend(into_reruns(attempt));
        }
    }
    match &mut last.status {
        TestCaseStatus::Success { flaky_runs } => {
            earlier.append(flaky_runs);
            *flaky_runs = earlier;
        }
        TestCaseStatus::NonSuccess { reruns, .. } => {
            earlier.append(&mut reruns.runs);
            reruns.runs = earlier;
            reruns.kind = FlakyOrRerun::Rerun;
        }
        // A test retried and then skipped (a skip decided at run time) is reported as
        // skipped; its earlier attempts have no place in the model.
        TestCaseStatus::Skipped { .. } => {}
    }
    Some(last)
}

/// An earlier attempt as the rerun records it leaves behind. An attempt was only retried
/// because it did not pass, so one recorded without a failure (pytest-rerunfailures writes
/// earlier attempts as bare `<testcase>` elements) counts as a failed attempt.
fn into_reruns(attempt: TestCase) -> Vec<TestRerun> {
    let (kind, message, ty, description, mut nested) = match attempt.status {
        TestCaseStatus::NonSuccess {
            kind,
            message,
            ty,
            description,
            reruns,
        } => (kind, message, ty, description, reruns.runs),
        TestCaseStatus::Success { flaky_runs } => {
            (NonSuccessKind::Failure, None, None, None, flaky_runs)
        }
        TestCaseStatus::Skipped { .. } => (NonSuccessKind::Failure, None, None, None, Vec::new()),
    };
    let mut rerun = TestRerun::new(kind);
    rerun.time = attempt.time;
    rerun.timestamp = attempt.timestamp;
    rerun.message = message;
    rerun.ty = ty;
    rerun.description = description;
    rerun.system_out = attempt.system_out;
    rerun.system_err = attempt.system_err;
    nested.push(rerun);
    nested
}

/// Sets a suite's counts from its cases: one per test, whatever its attempts.
pub(crate) fn recount_suite(suite: &mut TestSuite) {
    let (mut failures, mut errors, mut skipped) = (0, 0, 0);
    for case in &suite.test_cases {
        match &case.status {
            TestCaseStatus::Success { .. } => {}
            TestCaseStatus::NonSuccess {
                kind: NonSuccessKind::Failure,
                ..
            } => failures += 1,
            TestCaseStatus::NonSuccess {
                kind: NonSuccessKind::Error,
                ..
            } => errors += 1,
            TestCaseStatus::Skipped { .. } => skipped += 1,
        }
    }
    suite.tests = suite.test_cases.len();
    suite.failures = failures;
    suite.errors = errors;
    suite.skipped = skipped;
    suite.disabled = None;
}

/// Folds retries in every suite, recounts it, and sums the report's totals.
pub(crate) fn finish_report(mut report: Report, earlier: EarlierPass) -> Report {
    let (mut tests, mut failures, mut errors, mut skipped) = (0, 0, 0, 0);
    for suite in &mut report.test_suites {
        let cases = std::mem::take(&mut suite.test_cases);
        suite.test_cases = fold_retries(cases, earlier);
        recount_suite(suite);
        tests += suite.tests;
        failures += suite.failures;
        errors += suite.errors;
        skipped += suite.skipped;
    }
    report.tests = tests;
    report.failures = failures;
    report.errors = errors;
    report.skipped = skipped;
    report.disabled = None;
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    fn case(name: &str, status: TestCaseStatus) -> TestCase {
        let mut case = TestCase::new(name, status);
        case.set_classname("c");
        case
    }

    #[test]
    fn a_failure_then_a_pass_is_one_flaky_case() {
        let cases = vec![
            case("a", TestCaseStatus::non_success(NonSuccessKind::Failure)),
            case("b", TestCaseStatus::success()),
            case("a", TestCaseStatus::success()),
        ];
        let folded = fold_retries(cases, EarlierPass::Failed);
        assert_eq!(folded.len(), 2);
        assert_eq!(folded[0].name.as_str(), "a");
        match &folded[0].status {
            TestCaseStatus::Success { flaky_runs } => assert_eq!(flaky_runs.len(), 1),
            other => panic!("expected a flaky pass, got {other:?}"),
        }
    }

    #[test]
    fn bare_earlier_attempts_count_as_failed_attempts() {
        let cases = vec![
            case("a", TestCaseStatus::success()),
            case("a", TestCaseStatus::success()),
            case("a", TestCaseStatus::non_success(NonSuccessKind::Failure)),
        ];
        let folded = fold_retries(cases, EarlierPass::Failed);
        assert_eq!(folded.len(), 1);
        match &folded[0].status {
            TestCaseStatus::NonSuccess { reruns, .. } => {
                assert_eq!(reruns.runs.len(), 2);
                assert_eq!(reruns.runs[0].kind, NonSuccessKind::Failure);
            }
            other => panic!("expected a failure with reruns, got {other:?}"),
        }
    }

    #[test]
    fn repeated_passes_are_one_passing_test_when_every_attempt_says_how_it_ended() {
        let cases = vec![
            case("a", TestCaseStatus::success()),
            case("a", TestCaseStatus::success()),
            case("b", TestCaseStatus::non_success(NonSuccessKind::Failure)),
            case("b", TestCaseStatus::success()),
        ];
        let folded = fold_retries(cases, EarlierPass::Passed);
        match &folded[0].status {
            TestCaseStatus::Success { flaky_runs } => assert!(flaky_runs.is_empty()),
            other => panic!("expected a plain pass, got {other:?}"),
        }
        match &folded[1].status {
            TestCaseStatus::Success { flaky_runs } => assert_eq!(flaky_runs.len(), 1),
            other => panic!("expected a flaky pass, got {other:?}"),
        }
    }

    #[test]
    fn same_name_in_another_class_is_another_test() {
        let mut other = case("a", TestCaseStatus::success());
        other.set_classname("d");
        let folded = fold_retries(
            vec![case("a", TestCaseStatus::success()), other],
            EarlierPass::Failed,
        );
        assert_eq!(folded.len(), 2);
    }
}
