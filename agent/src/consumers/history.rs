//! Records every run in the per-test history: its cases as they are read, then its verdicts
//! when it finishes, and the number of tests in each state as `testmeter_history_tests`. A
//! store that cannot be opened or written is logged with its path and counted in
//! `testmeter_history_errors_total`; runs and metric export go on without it.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use crate::ci::Revision;
use crate::config::{HistoryConfig, SuiteConfig};
use crate::export::SelfMetrics;
use crate::history::store::{Recording, Retention, RunEntry, RunVerdicts};
use crate::history::{HistoryError, Rules, State, Store};
use crate::log::error_chain;
use crate::pipeline::reading::Cases;
use crate::pipeline::{Consumer, Event, SuiteOutcome};

/// After a failure to open the store, how long before trying again.
const REOPEN_AFTER: Duration = Duration::from_secs(60);

/// Tests of each notable state a verdict lists (for the log and the summary).
const LISTED: usize = 20;

/// The history consumer.
pub struct History {
    path: PathBuf,
    config: HistoryConfig,
    rules: Rules,
    revision: Revision,
    metrics: Option<Arc<SelfMetrics>>,
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for History {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("History")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

#[derive(Default)]
struct Inner {
    store: Option<Store>,
    /// When opening last failed, so a broken store is not retried on every run.
    failed_at: Option<Instant>,
    /// Runs being recorded, by suite: `None` once writing one of them failed.
    open: BTreeMap<String, Option<Recording>>,
    /// The verdicts of each suite's latest run, when it was recorded.
    latest: BTreeMap<String, RunVerdicts>,
}

impl History {
    /// The history consumer for `config`, or `None` when history is off or no path can be
    /// named. The store is opened here, and again later if this fails.
    pub fn new(config: &HistoryConfig, metrics: Option<Arc<SelfMetrics>>) -> Option<Self> {
        let path = config.effective_path()?;
        let history = History {
            path,
            config: config.clone(),
            rules: Rules::from(config),
            revision: Revision::from_env(),
            metrics,
            inner: Mutex::default(),
        };
        drop(history.store());
        Some(history)
    }

    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// The verdicts of a suite's latest run; `None` when that run was not recorded.
    pub fn latest(&self, suite: &str) -> Option<RunVerdicts> {
        self.lock().latest.get(suite).cloned()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The open store, opening it if it is not (and did not just fail to).
    fn store(&self) -> MutexGuard<'_, Inner> {
        let mut inner = self.lock();
        let retry = inner
            .failed_at
            .is_none_or(|at| at.elapsed() >= REOPEN_AFTER);
        if inner.store.is_none() && retry {
            match Store::open(&self.path) {
                Ok(store) => {
                    tracing::debug!(path = %self.path.display(), "history store open");
                    inner.store = Some(store);
                    inner.failed_at = None;
                }
                Err(error) => {
                    self.failed(
                        &error,
                        "history store not opened; runs are not recorded until it opens",
                    );
                    inner.failed_at = Some(Instant::now());
                }
            }
        }
        inner
    }

    fn failed(&self, error: &HistoryError, what: &str) {
        if let Some(metrics) = &self.metrics {
            metrics.history_error(error.reason());
        }
        tracing::error!(path = %self.path.display(), reason = error.reason(), error = %error_chain(error), "{what}");
    }

    fn cases(&self, suite: &SuiteConfig, cases: Cases<'_>) {
        let (suite, system) = (suite.name.as_str(), suite.system.as_str());
        let mut inner = self.store();
        let Inner { store, open, .. } = &mut *inner;
        let Some(store) = store.as_mut() else {
            return;
        };
        let recording = match open.entry(suite.to_owned()).or_insert_with(|| {
            store
                .begin(suite, system, SystemTime::now())
                .map_err(|error| self.failed(&error, "history: the run is not recorded"))
                .ok()
        }) {
            Some(recording) => recording,
            None => return,
        };
        let written = match cases {
            Cases::Read(cases) => store.add(recording, cases),
            Cases::Restart => store.restart(recording),
        };
        if let Err(error) = written {
            let _ = store.abandon(recording.run());
            open.insert(suite.to_owned(), None);
            self.failed(&error, "history: the run is not recorded");
        }
    }

    fn finished(&self, outcome: &SuiteOutcome) {
        let mut inner = self.store();
        let Inner {
            store,
            open,
            latest,
            ..
        } = &mut *inner;
        // Until this run is recorded, the suite has no verdicts: a run the store failed to
        // record must not be read (by the traces, by a gate) as the one before it.
        latest.remove(&outcome.suite);
        let begun = open.remove(&outcome.suite);
        let Some(store) = store.as_mut() else {
            return;
        };
        let mut recording = match begun {
            Some(None) => return,
            Some(Some(recording)) => recording,
            None => match store.begin(&outcome.suite, &outcome.system, SystemTime::now()) {
                Ok(recording) => recording,
                Err(error) => {
                    self.failed(&error, "history: the run is not recorded");
                    return;
                }
            },
        };
        let run = recording.run();
        // A run whose report could not be read made no verdicts: its cases, if some were read
        // before the error, are not its results.
        if outcome.run.is_err() {
            if let Err(error) = store.restart(&mut recording) {
                let _ = store.abandon(run);
                self.failed(&error, "history: the run is not recorded");
                return;
            }
        }
        let counts = outcome.run.as_ref().map(|r| r.summary).unwrap_or_default();
        let entry = RunEntry {
            suite: &outcome.suite,
            system: &outcome.system,
            started: outcome
                .run
                .as_ref()
                .map_or(outcome.finished_at - outcome.duration, |r| r.started),
            duration: outcome.duration,
            result: outcome.result(),
            tests: counts.tests as u64,
            failed: counts.failed as u64,
            errored: counts.errored as u64,
            skipped: counts.skipped as u64,
            flaky: counts.flaky as u64,
            commit: self.revision.commit.clone(),
            branch: self.revision.branch.clone(),
        };
        let retention = Retention {
            keep_runs: self.config.keep_runs,
            keep_for: self.config.keep_for,
        };
        let recorded = store.finish(
            recording,
            &entry,
            &self.rules,
            LISTED,
            retention,
            SystemTime::now(),
        );
        match recorded {
            Ok(verdicts) => {
                if verdicts.duplicates > 0 {
                    tracing::debug!(
                        suite = outcome.suite,
                        duplicates = verdicts.duplicates,
                        "tests reported twice in one run: the first result is kept"
                    );
                }
                if let Some(metrics) = &self.metrics {
                    for state in State::ALL {
                        let count = verdicts.counts.get(&state).copied().unwrap_or(0);
                        metrics.history_tests(&outcome.suite, state.as_str(), count);
                    }
                }
                let count = |state| verdicts.counts.get(&state).copied().unwrap_or(0);
                tracing::info!(
                    suite = outcome.suite,
                    new_failures = count(State::NewFailure),
                    failing = count(State::Failing),
                    fixed = count(State::Fixed),
                    flaky = count(State::Flaky),
                    slower = count(State::Slower),
                    quarantined = count(State::Quarantined),
                    "run recorded in the history"
                );
                latest.insert(outcome.suite.clone(), verdicts);
            }
            Err(error) => {
                let _ = store.abandon(run);
                self.failed(&error, "history: the run is not recorded");
            }
        }
    }
}

impl Consumer for History {
    fn on(&self, event: &Event<'_>) {
        match event {
            Event::Cases { suite, cases } => self.cases(suite, *cases),
            Event::SuiteFinished { outcome, .. } => self.finished(outcome),
            Event::PluginsLoaded { .. }
            | Event::SuiteStarted { .. }
            | Event::SuiteSkipped { .. } => {}
        }
    }

    fn follows_cases(&self) -> bool {
        true
    }
}
