//! The run model that flows end to end: one suite execution with its parsed JUnit report and
//! the artifacts it wrote. Plugins see it through `plugin::conversions`.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

/// A file the suite wrote that matched one of its artifact globs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Artifact {
    /// Path relative to the suite's working directory.
    pub name: String,
    pub content: Vec<u8>,
}

/// One completed execution of a suite whose report could be read.
#[derive(Debug, Clone)]
pub struct SuiteRun {
    pub suite: String,
    pub system: String,
    pub labels: BTreeMap<String, String>,
    pub started: SystemTime,
    pub duration: Duration,
    /// None when the process was killed by a signal.
    pub exit_code: Option<i32>,
    /// Peak RSS of the suite's process tree (largest process), when measured.
    pub peak_rss_bytes: Option<u64>,
    pub report: quick_junit::Report,
    pub artifacts: Vec<Artifact>,
}

/// Test counts of a report, by final outcome; retried attempts are not counted twice.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutcomeCounts {
    pub passed: usize,
    pub failed: usize,
    pub errored: usize,
    pub skipped: usize,
}

impl OutcomeCounts {
    pub fn of(report: &quick_junit::Report) -> Self {
        use quick_junit::{NonSuccessKind, TestCaseStatus};
        let mut counts = Self::default();
        let cases = report.test_suites.iter().flat_map(|s| &s.test_cases);
        for case in cases {
            match &case.status {
                TestCaseStatus::Success { .. } => counts.passed += 1,
                TestCaseStatus::NonSuccess {
                    kind: NonSuccessKind::Failure,
                    ..
                } => counts.failed += 1,
                TestCaseStatus::NonSuccess {
                    kind: NonSuccessKind::Error,
                    ..
                } => counts.errored += 1,
                TestCaseStatus::Skipped { .. } => counts.skipped += 1,
            }
        }
        counts
    }

    pub fn total(&self) -> usize {
        self.passed + self.failed + self.errored + self.skipped
    }

    /// True when no test failed or errored.
    pub fn all_green(&self) -> bool {
        self.failed == 0 && self.errored == 0
    }
}
