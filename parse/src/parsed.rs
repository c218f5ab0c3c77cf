//! What every parser returns: the report, whether the run behind it was cut short, and
//! retry-aware totals.

use quick_junit::{NonSuccessKind, Report, TestCaseStatus};

/// A parsed report. `partial` is set when the input shows the run ended early (a truncated
/// file, a TAP plan that was not met, a crashed test binary, cargo stopping after the first
/// failing binary); the cases that did complete are all in `report`.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    pub report: Report,
    pub partial: Option<String>,
}

/// Totals by final outcome. Every test counts once however many attempts it took.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Summary {
    pub tests: usize,
    pub passed: usize,
    pub failed: usize,
    pub errored: usize,
    pub skipped: usize,
    /// Tests that failed at least once and then passed on a retry (also counted in `passed`).
    pub flaky: usize,
    /// Attempts over all tests: `tests` plus every retry.
    pub attempts: usize,
}

impl Summary {
    pub fn of(report: &Report) -> Self {
        let mut summary = Summary::default();
        for case in report.test_suites.iter().flat_map(|s| &s.test_cases) {
            summary.tests += 1;
            summary.attempts += 1;
            match &case.status {
                TestCaseStatus::Success { flaky_runs } => {
                    summary.passed += 1;
                    summary.attempts += flaky_runs.len();
                    if !flaky_runs.is_empty() {
                        summary.flaky += 1;
                    }
                }
                TestCaseStatus::NonSuccess { kind, reruns, .. } => {
                    summary.attempts += reruns.runs.len();
                    match kind {
                        NonSuccessKind::Failure => summary.failed += 1,
                        NonSuccessKind::Error => summary.errored += 1,
                    }
                }
                TestCaseStatus::Skipped { .. } => summary.skipped += 1,
            }
        }
        summary
    }
}
