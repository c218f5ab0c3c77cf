//! What every parser returns: the report, whether the run behind it was cut short, and
//! retry-aware totals.

use std::collections::BTreeMap;

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus};

/// A parsed report. `partial` is set when the input shows the run ended early (a truncated
/// file, a TAP plan that was not met, a crashed test binary, cargo stopping after the first
/// failing binary); the cases that did complete are all in `report`.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    pub report: Report,
    /// Every reason the run is partial, joined: what the agent reports and counts.
    pub partial: Option<String>,
    /// The reasons that concern one suite of the report (a TAP file whose plan was not met),
    /// by suite name. Empty when every reason concerns the whole report (a truncated file).
    pub suite_partial: BTreeMap<String, String>,
}

impl Parsed {
    /// Several reports of one run (one per file another job wrote) as one: their suites in
    /// order, their totals summed, and every reason any of them was partial.
    pub fn merge(name: &str, parts: Vec<Parsed>) -> Parsed {
        let mut report = Report::new(name);
        let mut reasons = Vec::new();
        let mut suite_partial: BTreeMap<String, String> = BTreeMap::new();
        for part in parts {
            // A part's reasons become its own suites' once it stands beside other parts.
            let mut own = part.suite_partial;
            if let (true, Some(reason)) = (own.is_empty(), &part.partial) {
                for suite in &part.report.test_suites {
                    own.insert(suite.name.to_string(), reason.clone());
                }
            }
            for (suite, reason) in own {
                suite_partial
                    .entry(suite)
                    .and_modify(|r| {
                        r.push_str("; ");
                        r.push_str(&reason);
                    })
                    .or_insert(reason);
            }
            report.test_suites.extend(part.report.test_suites);
            reasons.extend(part.partial);
            if report.timestamp.is_none() {
                report.timestamp = part.report.timestamp;
            }
        }
        report.time = report
            .test_suites
            .iter()
            .filter_map(|s| s.time)
            .reduce(|a, b| a + b);
        Parsed {
            report: crate::attempts::finish_report(report, crate::attempts::EarlierPass::Failed),
            partial: (!reasons.is_empty()).then(|| reasons.join("; ")),
            suite_partial,
        }
    }

    /// Why one suite of the report is partial: its own reasons when the parser tied reasons
    /// to suites, else every reason of the report.
    pub fn partial_of(&self, suite: &str) -> Option<&str> {
        if self.suite_partial.is_empty() {
            self.partial.as_deref()
        } else {
            self.suite_partial.get(suite).map(String::as_str)
        }
    }
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
            summary.add(case);
        }
        summary
    }

    /// Counts one more test.
    pub fn add(&mut self, case: &TestCase) {
        self.count(&case.status);
    }

    /// Counts one more test with this outcome.
    pub(crate) fn count(&mut self, status: &TestCaseStatus) {
        self.tests += 1;
        self.attempts += 1;
        match status {
            TestCaseStatus::Success { flaky_runs } => {
                self.passed += 1;
                self.attempts += flaky_runs.len();
                if !flaky_runs.is_empty() {
                    self.flaky += 1;
                }
            }
            TestCaseStatus::NonSuccess { kind, reruns, .. } => {
                self.attempts += reruns.runs.len();
                match kind {
                    NonSuccessKind::Failure => self.failed += 1,
                    NonSuccessKind::Error => self.errored += 1,
                }
            }
            TestCaseStatus::Skipped { .. } => self.skipped += 1,
        }
    }

    /// Adds the totals of another part of the same run.
    pub fn merge(&mut self, other: &Summary) {
        self.tests += other.tests;
        self.passed += other.passed;
        self.failed += other.failed;
        self.errored += other.errored;
        self.skipped += other.skipped;
        self.flaky += other.flaky;
        self.attempts += other.attempts;
    }

    /// True when no test failed or errored.
    pub fn all_green(&self) -> bool {
        self.failed == 0 && self.errored == 0
    }
}
