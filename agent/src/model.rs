//! The run model that flows end to end: one suite execution with its parsed JUnit report and
//! the artifacts it wrote. Plugins see it through `plugin::conversions`; totals come from
//! `testmeter_parse::Summary`, which counts each test once however often it was retried.

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
    /// Why the run ended early, when it did (a timeout, a crash, a truncated report); the
    /// report then holds the cases that completed.
    pub partial: Option<String>,
    pub artifacts: Vec<Artifact>,
}
