//! The one interface between the pipeline and everything that reads a run: the pipeline emits
//! [`Event`]s in order, and each [`Consumer`] takes what it needs from them.

use crate::config::SuiteConfig;

use super::reading::Cases;
use super::{Loaded, SuiteOutcome};

/// What the pipeline tells its consumers, in the order it happens.
#[derive(Debug)]
pub enum Event<'a> {
    /// A plugin set is in use: at start (`reload: false`) and after each reload of the
    /// plugins dir.
    PluginsLoaded { loaded: &'a Loaded, reload: bool },
    /// A suite's command is about to start (not sent for ingested reports).
    SuiteStarted { suite: &'a SuiteConfig },
    /// Cases of a suite's run, in batches as its report is read, before it finishes: sent only
    /// when some consumer [follows cases](Consumer::follows_cases).
    Cases {
        suite: &'a SuiteConfig,
        cases: Cases<'a>,
    },
    /// A suite's run is read, derived and recorded; `loaded` is the plugin set that derived it.
    SuiteFinished {
        outcome: &'a SuiteOutcome,
        loaded: &'a Loaded,
    },
    /// Runs of a suite that fell due while its previous run was still going, and were skipped.
    SuiteSkipped {
        suite: &'a str,
        reason: &'static str,
        count: u64,
    },
}

/// Something that reads runs: self-metrics, the status board, readiness, the summary, the
/// progress lines. Called on the task that runs the pipeline, so it must be quick: hand slow
/// work (a file, a network) to a task of its own.
pub trait Consumer: Send + Sync {
    fn on(&self, event: &Event<'_>);

    /// Whether it wants each run's cases ([`Event::Cases`]); collecting them costs a copy of
    /// every case's names and message, so the pipeline does it only for those that do.
    fn follows_cases(&self) -> bool {
        false
    }
}
