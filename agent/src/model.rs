//! The run model that flows end to end: a suite execution (or reports another job wrote) with
//! the report it left, its cases as they are read (`quick_junit` cases in batches, which is how
//! plugins see them through `plugin::conversions`), and what the agent keeps of the run once
//! its report is read: retry-aware totals (`testmeter_parse::Summary`), never the cases.

pub mod trace;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use testmeter_parse::{Format, Limits, Parsed, Summary};

pub use trace::{RunTrace, TraceContext};

/// A file the suite wrote that matched one of its artifact globs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Artifact {
    /// Path relative to the suite's working directory.
    pub name: String,
    pub content: Vec<u8>,
    /// Written during the run (always, unless the suite takes older files too:
    /// `artifacts_fresh = false`).
    pub fresh: bool,
}

/// A file that matched an artifact glob but was not handed to plugins, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DroppedArtifact {
    /// Path relative to the suite's working directory.
    pub name: String,
    /// Low-cardinality reason for `testmeter_artifacts_dropped_total{reason}`: `too_large`
    /// (over `artifact_max_bytes`), `total_cap` (over `artifact_max_total_bytes`),
    /// `not_regular` (a link, FIFO, device or directory), `outside` (resolves outside the
    /// working dir), `unreadable`.
    pub reason: &'static str,
    /// What happened, for the log.
    pub detail: String,
}

/// Where a run's report is.
#[derive(Debug, Clone)]
pub enum ReportSource {
    /// Report files (a suite's report file, or the reports another job wrote), read in
    /// order as one report.
    Files(Vec<PathBuf>),
    /// A report held in memory: a suite's stdout, or standard input.
    Bytes { what: String, bytes: Vec<u8> },
    /// A report already read.
    Parsed(Parsed),
    /// No report: the suite writes none (`report = false`). The run has no cases and is
    /// judged by its exit code; its plugins read its artifacts.
    None,
}

/// A run's report, still to be read.
#[derive(Debug, Clone)]
pub struct RunReport {
    pub source: ReportSource,
    pub format: Format,
    pub limits: Limits,
}

impl RunReport {
    /// A report already read (tests, benchmarks).
    pub fn parsed(parsed: Parsed) -> Self {
        RunReport {
            source: ReportSource::Parsed(parsed),
            format: Format::Junit,
            limits: Limits::default(),
        }
    }
}

/// One completed execution of a suite, whose report is still to be read.
#[derive(Debug, Clone)]
pub struct SuiteRun {
    pub suite: String,
    pub system: String,
    pub labels: BTreeMap<String, String>,
    /// When the run started; `None` takes the report's timestamp (reports another job
    /// wrote), else the time it is read.
    pub started: Option<SystemTime>,
    /// How long the run took; `None` takes the sum of the report's suite times.
    pub duration: Option<Duration>,
    /// None when the process was killed by a signal.
    pub exit_code: Option<i32>,
    /// Peak RSS of the suite's process tree (largest process), when measured.
    pub peak_rss_bytes: Option<u64>,
    /// Why the run ended early before its report was read (a timeout); the report may add
    /// its own reason (a file cut short).
    pub partial: Option<String>,
    /// The suite hit this timeout and was killed: a report that cannot be read is then
    /// counted as the timeout.
    pub timed_out: Option<Duration>,
    /// How the suite's process ended (`exit code 1`), for errors; `None` for reports another
    /// job wrote.
    pub status: Option<String>,
    pub artifacts: Vec<Artifact>,
    /// Files that matched an artifact glob but were not handed to plugins.
    pub dropped_artifacts: Vec<DroppedArtifact>,
    pub report: RunReport,
}

/// How one test ended in a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Passed,
    Failed,
    Errored,
    Skipped,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Passed => "passed",
            Self::Failed => "failed",
            Self::Errored => "errored",
            Self::Skipped => "skipped",
        }
    }

    /// Failed or errored.
    pub fn is_failure(self) -> bool {
        matches!(self, Self::Failed | Self::Errored)
    }
}

/// One test of a run with its attempts folded, as the consumers that follow tests one by one
/// (the per-test history) receive it, in batches, while the report is read.
#[derive(Debug, Clone, PartialEq)]
pub struct CaseResult {
    /// The `<testsuite>` it was reported in (nested suites joined with ` > `).
    pub report_suite: String,
    pub classname: String,
    pub name: String,
    pub outcome: Outcome,
    pub attempts: u32,
    /// Passed on a retry.
    pub flaky: bool,
    pub duration: Option<Duration>,
    /// The first line of its failure, error or skip message, at most
    /// [`CaseResult::MESSAGE_BYTES`].
    pub message: Option<String>,
    /// The `type` of its failure or error (an exception class, say), at most
    /// [`CaseResult::MESSAGE_BYTES`].
    pub kind: Option<String>,
    /// When it started, when the report says (a `timestamp` on the case).
    pub started: Option<SystemTime>,
}

impl CaseResult {
    pub const MESSAGE_BYTES: usize = 512;

    /// A case of a pytest report for tests: `tests.test_x::name`, one attempt, `millis` long,
    /// and a failure message when it failed or errored.
    #[cfg(test)]
    pub fn of_test(name: &str, outcome: Outcome, millis: u64) -> Self {
        CaseResult {
            report_suite: "pytest".into(),
            classname: "tests.test_x".into(),
            name: name.into(),
            outcome,
            attempts: 1,
            flaky: false,
            duration: Some(Duration::from_millis(millis)),
            message: outcome.is_failure().then(|| format!("{name} broke")),
            kind: None,
            started: None,
        }
    }
}

/// A failed or errored test, as people read it in a summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedCase {
    /// `classname::name`, or the name alone.
    pub name: String,
    /// The first line of its message, or `(no message)`.
    pub message: String,
}

/// What the agent keeps of a run once its report is read: its facts and totals.
#[derive(Debug, Clone)]
pub struct RunRecord {
    pub suite: String,
    pub system: String,
    pub labels: BTreeMap<String, String>,
    pub started: SystemTime,
    pub duration: Duration,
    pub exit_code: Option<i32>,
    pub peak_rss_bytes: Option<u64>,
    /// Totals by final outcome; each test counts once however often it was retried.
    pub summary: Summary,
    /// The suite writes no report (`report = false`): the run passed when it exited 0.
    pub judged_by_exit_code: bool,
    /// The first [`RunRecord::FAILURES_KEPT`] failed or errored tests, in report order.
    pub failures: Vec<FailedCase>,
    /// Why the run ended early, when it did (a timeout, a crash, a truncated report); the
    /// totals then count the cases that completed.
    pub partial: Option<String>,
}

impl RunRecord {
    /// Failed tests kept for people to read; the rest are counted in `summary`.
    pub const FAILURES_KEPT: usize = 50;

    /// No test failed or errored, or, for a suite that writes no report, it exited 0.
    pub fn passed(&self) -> bool {
        if self.judged_by_exit_code {
            self.exit_code == Some(0)
        } else {
            self.summary.all_green()
        }
    }
}
