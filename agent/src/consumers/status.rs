//! What the agent knows about each suite's latest run: its outcome, its plugins' results and the
//! verdicts of their SLOs on that run. Feeds the `/` status page and the table `testmeter once`
//! ends with, so both show the same facts.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use testmeter_parse::Summary;

use crate::config::SuiteConfig;
use crate::contract::gate::{self, RunSamples, SloResult, Verdict};
use crate::contract::Contract;
use crate::log::error_chain;
use crate::pipeline::{Consumer, Event, SuiteOutcome};
use crate::plugin::PluginSet;

/// How a suite's latest run ended, in one word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// Every test passed (or was skipped) and every plugin derived the run.
    Passed,
    /// Tests failed or errored, or a plugin failed.
    Failed,
    /// The suite was cut short (a timeout, a truncated report); what ran is counted.
    Partial,
    /// The suite could not run or its report could not be read.
    Error,
}

impl Health {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Passed => "passed",
            Self::Failed => "failed",
            Self::Partial => "partial",
            Self::Error => "error",
        }
    }
}

/// The run itself: its counts, or why there are none.
#[derive(Debug, Clone)]
pub enum RunResult {
    Ran {
        counts: Summary,
        /// No test failed or errored (or the report-less suite exited 0: `RunRecord::passed`).
        passed: bool,
        partial: Option<String>,
    },
    NotRun {
        error: String,
    },
}

/// One plugin's result on the run.
#[derive(Debug, Clone)]
pub struct PluginResult {
    pub plugin: String,
    /// The first line of the error, when the derivation failed.
    pub error: Option<String>,
    pub rejected: usize,
}

/// A suite's latest run as the status page and the summary table show it.
#[derive(Debug, Clone)]
pub struct SuiteStatus {
    pub suite: String,
    pub system: String,
    pub finished_at: SystemTime,
    pub duration: Duration,
    pub result: RunResult,
    pub plugins: Vec<PluginResult>,
    /// The SLOs of the plugins that handle the suite's system, evaluated on this run alone (a
    /// run that produced no samples leaves them unknown, never met).
    pub slos: Vec<SloResult>,
}

impl SuiteStatus {
    /// Evaluates the SLOs of the suite's plugins on the samples they derived from this run.
    pub fn of(outcome: &SuiteOutcome, contract: &Contract) -> Self {
        let result = match &outcome.run {
            Ok(run) => RunResult::Ran {
                counts: run.summary,
                passed: run.passed(),
                partial: run.partial.clone(),
            },
            Err(error) => RunResult::NotRun {
                error: error_chain(error),
            },
        };
        let plugins = outcome
            .plugins
            .iter()
            .map(|p| PluginResult {
                plugin: p.plugin.clone(),
                error: p.result.as_ref().err().map(|error| {
                    let chain = error_chain(error);
                    chain.lines().next().unwrap_or_default().to_owned()
                }),
                rejected: p.rejected.len(),
            })
            .collect();
        let samples = outcome.samples();
        let watched: Vec<&crate::contract::model::ContractSlo> = contract
            .slos
            .iter()
            .filter(|slo| slo.systems.contains(&outcome.system))
            .collect();
        let slos = gate::evaluate_run(&RunSamples::new(contract, samples), &watched);
        Self {
            suite: outcome.suite.clone(),
            system: outcome.system.clone(),
            finished_at: outcome.finished_at,
            duration: outcome.duration,
            result,
            plugins,
            slos,
        }
    }

    pub fn health(&self) -> Health {
        match &self.result {
            RunResult::NotRun { .. } => Health::Error,
            RunResult::Ran {
                partial: Some(_), ..
            } => Health::Partial,
            RunResult::Ran { passed: true, .. }
                if self.plugins.iter().all(|p| p.error.is_none()) =>
            {
                Health::Passed
            }
            RunResult::Ran { .. } => Health::Failed,
        }
    }

    /// SLOs breached, and SLOs that could not be decided, on this run.
    pub fn slo_counts(&self) -> (usize, usize) {
        let breached = self
            .slos
            .iter()
            .filter(|s| matches!(s.verdict, Verdict::Breached { .. }))
            .count();
        let unknown = self
            .slos
            .iter()
            .filter(|s| matches!(s.verdict, Verdict::Unknown { .. }))
            .count();
        (breached, unknown)
    }
}

/// A loaded plugin, as the status page lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginInfo {
    pub name: String,
    pub version: String,
    pub wit: String,
    pub systems: Vec<String>,
}

/// A configured suite and its latest run, if it has run.
#[derive(Debug, Clone)]
pub struct SuiteRow {
    pub suite: String,
    pub system: String,
    /// `None` for a run that no configured suite made (`testmeter ingest`).
    pub interval: Option<Duration>,
    pub last: Option<SuiteStatus>,
}

/// A consistent copy of the board, to render without holding its lock.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub started_at: SystemTime,
    pub version: &'static str,
    pub plugins: Vec<PluginInfo>,
    pub suites: Vec<SuiteRow>,
}

#[derive(Debug, Default)]
struct Board {
    /// Configured suites in config order: (name, system, interval).
    configured: Vec<(String, String, Duration)>,
    latest: BTreeMap<String, SuiteStatus>,
    plugins: Vec<PluginInfo>,
}

/// The latest status of every suite; the agent writes it after each run.
#[derive(Debug)]
pub struct StatusBoard {
    started_at: SystemTime,
    board: Mutex<Board>,
}

impl StatusBoard {
    pub fn new(suites: &[SuiteConfig]) -> Self {
        let board = Self {
            started_at: SystemTime::now(),
            board: Mutex::new(Board::default()),
        };
        board.set_suites(suites);
        board
    }

    /// The configured suites (at start and after a SIGHUP); runs of removed suites are dropped.
    pub fn set_suites(&self, suites: &[SuiteConfig]) {
        let mut board = self.lock();
        let names: Vec<String> = suites.iter().map(|s| s.name.clone()).collect();
        let before: Vec<String> = board.configured.iter().map(|c| c.0.clone()).collect();
        board
            .latest
            .retain(|name, _| names.contains(name) || !before.contains(name));
        board.configured = suites
            .iter()
            .map(|s| (s.name.clone(), s.system.clone(), s.interval))
            .collect();
    }

    /// The plugins now loaded (at start and after each reload).
    pub fn set_plugins(&self, set: &PluginSet) {
        self.lock().plugins = set
            .plugins
            .iter()
            .map(|p| PluginInfo {
                name: p.decl.name.clone(),
                version: p.decl.version.clone(),
                wit: p.wit.as_str().to_owned(),
                systems: p.decl.systems.clone(),
            })
            .collect();
    }

    pub fn record(&self, status: SuiteStatus) {
        self.lock().latest.insert(status.suite.clone(), status);
    }

    pub fn snapshot(&self) -> Snapshot {
        let board = self.lock();
        Snapshot {
            started_at: self.started_at,
            version: env!("CARGO_PKG_VERSION"),
            plugins: board.plugins.clone(),
            suites: board
                .configured
                .iter()
                .map(|(suite, system, interval)| SuiteRow {
                    suite: suite.clone(),
                    system: system.clone(),
                    interval: Some(*interval),
                    last: board.latest.get(suite).cloned(),
                })
                .chain(
                    board
                        .latest
                        .values()
                        .filter(|s| !board.configured.iter().any(|(name, ..)| *name == s.suite))
                        .map(|s| SuiteRow {
                            suite: s.suite.clone(),
                            system: s.system.clone(),
                            interval: None,
                            last: Some(s.clone()),
                        }),
                )
                .collect(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Board> {
        self.board
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Consumer for StatusBoard {
    fn on(&self, event: &Event<'_>) {
        match event {
            Event::PluginsLoaded { loaded, .. } => self.set_plugins(&loaded.set),
            Event::SuiteFinished { outcome, loaded } => {
                self.record(SuiteStatus::of(outcome, &loaded.contract));
            }
            Event::SuiteStarted { .. } | Event::Cases { .. } | Event::SuiteSkipped { .. } => {}
        }
    }
}

/// A value as people read it: integers without a fraction, others to three decimals.
pub fn number(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{value:.0}")
    } else {
        format!("{value:.3}")
    }
}

/// What an SLO measured, short: the value alone for one series; otherwise each series as the
/// label values that tell them apart, then the value (at most three, then a count).
pub fn observed_text(observed: &[gate::Observed]) -> String {
    match observed {
        [] => String::new(),
        [one] => number(one.value),
        many => {
            let varying: Vec<&String> = many[0]
                .labels
                .keys()
                .filter(|key| {
                    many.iter()
                        .any(|o| o.labels.get(*key) != many[0].labels.get(*key))
                })
                .collect();
            let mut parts: Vec<String> = many
                .iter()
                .take(3)
                .map(|o| {
                    let name: Vec<&str> = varying
                        .iter()
                        .filter_map(|key| o.labels.get(*key).map(String::as_str))
                        .collect();
                    format!("{} {}", name.join("/"), number(o.value))
                })
                .collect();
            if many.len() > 3 {
                parts.push(format!("+{} more", many.len() - 3));
            }
            parts.join(", ")
        }
    }
}

/// A verdict in one word.
pub fn verdict_word(verdict: &Verdict) -> &'static str {
    match verdict {
        Verdict::Met => "met",
        Verdict::Breached { .. } => "breached",
        Verdict::Unknown { .. } => "unknown",
    }
}
