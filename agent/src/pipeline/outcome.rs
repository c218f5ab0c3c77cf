//! The outcome of one suite run: the one typed value the pipeline produces and every consumer
//! reads.

use std::time::{Duration, SystemTime};

use crate::catalog::{Rejection, Sample};
use crate::model::{DroppedArtifact, RunRecord, RunTrace};
use crate::plugin::quarantine::Transition;
use crate::plugin::PluginError;
use crate::runner::RunError;

/// What one plugin made of one run.
#[derive(Debug)]
pub struct PluginOutcome {
    pub plugin: String,
    /// The accepted samples, or why the derivation failed.
    pub result: Result<Vec<Sample>, PluginError>,
    pub rejected: Vec<Rejection>,
    /// Time spent in the plugin's calls; `None` when it sat the run out (quarantined).
    pub busy: Option<Duration>,
    /// How this derivation moved the plugin's quarantine.
    pub quarantine: Transition,
}

/// Everything that happened to one suite in one run.
#[derive(Debug)]
pub struct SuiteOutcome {
    pub suite: String,
    pub system: String,
    /// From the start of the run (or of the ingest) to the end of its derivations.
    pub duration: Duration,
    pub finished_at: SystemTime,
    /// Artifacts the run wrote that were not handed to plugins, and why.
    pub dropped_artifacts: Vec<DroppedArtifact>,
    pub run: Result<RunRecord, RunError>,
    /// One per plugin of the suite's system, in load order; empty when none handles it.
    pub plugins: Vec<PluginOutcome>,
    /// The run's span, when runs are traced.
    pub trace: Option<RunTrace>,
}

impl SuiteOutcome {
    /// True when the suite ran, its report was read and every plugin derived it.
    pub fn succeeded(&self) -> bool {
        self.run.is_ok() && self.plugins.iter().all(|p| p.result.is_ok())
    }

    /// The run's result in one word, as `testmeter_suite_runs_total{result}` counts it:
    /// `passed`, `failed` or `partial`, or why it did not run.
    pub fn result(&self) -> &'static str {
        match &self.run {
            Ok(record) if record.partial.is_some() => "partial",
            Ok(record) if record.passed() => "passed",
            Ok(_) => "failed",
            Err(error) => error.reason(),
        }
    }

    /// The run's span when its spans are sent: runs are traced and the caller's trace (if
    /// any) is sampled. Exemplars and spans name only such a trace.
    pub fn sent_trace(&self) -> Option<&RunTrace> {
        self.trace.as_ref().filter(|trace| trace.span.sampled)
    }

    /// Every sample the plugins accepted from this run.
    pub fn samples(&self) -> impl Iterator<Item = &Sample> {
        self.plugins
            .iter()
            .filter_map(|p| p.result.as_ref().ok())
            .flatten()
    }
}
