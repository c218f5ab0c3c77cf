//! The pipeline: a suite's run (executed here or ingested) is read and derived by every plugin of
//! its system (`reading.rs`), each sample is checked against the catalog and recorded into the
//! instruments, and the run ends as one [`SuiteOutcome`] that every [`Consumer`] receives.

pub mod consumer;
pub mod outcome;
pub mod reading;

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime};

use opentelemetry::KeyValue;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::trace::{IdGenerator, RandomIdGenerator};

use crate::config::{Config, SuiteConfig};
use crate::contract::Contract;
use crate::export::{PluginInstruments, SeriesStore};
use crate::log::error_chain;
use crate::model::{RunTrace, SuiteRun, TraceContext};
use crate::plugin::quarantine::{Admission, Quarantine, Transition};
use crate::plugin::set::SETTLE;
use crate::plugin::{LoadedPlugin, PluginError, PluginRuntime, PluginSet};
use crate::runner::{self, RunError};

pub use consumer::{Consumer, Event};
pub use outcome::{PluginOutcome, SuiteOutcome};
use reading::Derived;

/// A plugin set in use, with what is built from it once: the contract its declarations make
/// and the instruments their samples are recorded into. Swapped whole on a reload, so a run
/// always sees one consistent set.
#[derive(Debug)]
pub struct Loaded {
    pub set: PluginSet,
    pub contract: Contract,
    instruments: PluginInstruments,
}

/// Runs suites through the plugins and hands each outcome to the consumers.
pub struct Pipeline {
    pub config: Config,
    runtime: PluginRuntime,
    provider: SdkMeterProvider,
    loaded: RwLock<Arc<Loaded>>,
    quarantine: Quarantine,
    /// Every plugin counter and gauge series, kept across reloads, aging out when unwritten.
    series: Arc<SeriesStore>,
    consumers: Vec<Arc<dyn Consumer>>,
    /// When runs are traced: the span every run's span is a child of, if a caller gave one.
    traced: Option<Option<TraceContext>>,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("plugins", &self.plugins().set.plugins)
            .finish_non_exhaustive()
    }
}

impl Pipeline {
    /// Loads every `*.wasm` in the plugins dir into instruments of `provider` and tells the
    /// consumers. A plugin that fails to load is logged and reported; the pipeline starts
    /// without it.
    pub async fn start(
        config: Config,
        runtime: PluginRuntime,
        provider: SdkMeterProvider,
        consumers: Vec<Arc<dyn Consumer>>,
    ) -> Self {
        let series = SeriesStore::new(config.sandbox.series_idle_runs);
        let set = PluginSet::load(&runtime, &config.plugins_dir, None).await;
        let loaded = Arc::new(build(set, &config, &provider, &series));
        let quarantine = Quarantine::new(
            config.sandbox.quarantine_after,
            config.sandbox.quarantine_backoff,
        );
        let pipeline = Self {
            config,
            runtime,
            provider,
            loaded: RwLock::new(Arc::clone(&loaded)),
            quarantine,
            series,
            consumers,
            traced: None,
        };
        pipeline.emit(&Event::PluginsLoaded {
            loaded: &loaded,
            reload: false,
        });
        pipeline
    }

    /// Gives every run a span of its own (ids the suite's command gets as `TRACEPARENT` and
    /// the traces consumer writes the span with), a child of `parent` when given: the CI
    /// job's span that `once` and `ingest` read from their own `TRACEPARENT`.
    pub fn trace_runs(&mut self, parent: Option<TraceContext>) {
        self.traced = Some(parent);
    }

    /// The span of a run about to start, when runs are traced.
    fn run_trace(&self) -> Option<RunTrace> {
        let parent = self.traced?;
        let ids = RandomIdGenerator::default();
        let span = TraceContext {
            trace_id: parent.map_or_else(
                || u128::from_be_bytes(ids.new_trace_id().to_bytes()),
                |p| p.trace_id,
            ),
            span_id: u64::from_be_bytes(ids.new_span_id().to_bytes()),
            sampled: parent.is_none_or(|p| p.sampled),
        };
        Some(RunTrace { span, parent })
    }

    fn emit(&self, event: &Event<'_>) {
        for consumer in &self.consumers {
            consumer.on(event);
        }
    }

    /// The plugin set in use (a snapshot: a reload swaps in a new one).
    pub fn plugins(&self) -> Arc<Loaded> {
        let guard = self
            .loaded
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Arc::clone(&guard)
    }

    /// Loads the plugins dir again and swaps the new set in whole. Runs in flight keep the set
    /// they started with. `since` is when the change was first seen, for the time-to-ready log.
    /// Returns how long to wait before loading again when a file is still being written.
    pub async fn reload_plugins(&self, since: Instant) -> Option<Duration> {
        let old = self.plugins();
        let set = PluginSet::load(&self.runtime, &self.config.plugins_dir, Some(&old.set)).await;
        let names = |set: &PluginSet| -> Vec<String> {
            set.plugins.iter().map(|p| p.decl.name.clone()).collect()
        };
        let (before, after) = (names(&old.set), names(&set));
        let added: Vec<&String> = after.iter().filter(|n| !before.contains(n)).collect();
        let removed: Vec<&String> = before.iter().filter(|n| !after.contains(n)).collect();
        let pending: Vec<String> = set
            .pending
            .iter()
            .map(|path| path.display().to_string())
            .collect();
        let result = if set.load_failures.is_empty() {
            "ok"
        } else {
            "partial"
        };
        let loaded = Arc::new(build(set, &self.config, &self.provider, &self.series));
        *self
            .loaded
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::clone(&loaded);
        self.emit(&Event::PluginsLoaded {
            loaded: &loaded,
            reload: true,
        });
        tracing::info!(
            ?added,
            ?removed,
            ?pending,
            plugins = after.len(),
            result,
            time_to_ready = ?since.elapsed(),
            "plugins reloaded"
        );
        (!pending.is_empty()).then_some(SETTLE)
    }

    /// Runs one suite, derives its run with every plugin of its system and records the result.
    pub async fn run_suite(&self, suite: &SuiteConfig) -> SuiteOutcome {
        let started = Instant::now();
        tracing::info!(suite = suite.name, "suite started");
        self.emit(&Event::SuiteStarted { suite });
        let reads_output = self
            .plugins()
            .set
            .handling(&suite.system)
            .any(|plugin| plugin.reads.output());
        let trace = self.run_trace();
        let run = runner::execute(suite, reads_output, trace.as_ref().map(|t| &t.span)).await;
        self.record_traced(suite, run, started, trace).await
    }

    /// Runs every suite once, in config order.
    pub async fn run_all_once(&self) -> Vec<SuiteOutcome> {
        let mut outcomes = Vec::with_capacity(self.config.suites.len());
        for suite in &self.config.suites {
            outcomes.push(self.run_suite(suite).await);
        }
        outcomes
    }

    /// Tells the consumers that runs of `suite` that fell due were skipped.
    pub fn skipped(&self, suite: &str, reason: &'static str, count: u64) {
        self.emit(&Event::SuiteSkipped {
            suite,
            reason,
            count,
        });
    }

    /// Reads a run's report (executed here, or reports another job wrote) while every plugin
    /// of its system derives it, records the samples, and hands the outcome to the consumers.
    pub async fn record_run(
        &self,
        suite: &SuiteConfig,
        run: Result<SuiteRun, RunError>,
        started: Instant,
    ) -> SuiteOutcome {
        let trace = self.run_trace();
        self.record_traced(suite, run, started, trace).await
    }

    /// [`Pipeline::record_run`] of a run whose span was chosen when it started.
    async fn record_traced(
        &self,
        suite: &SuiteConfig,
        run: Result<SuiteRun, RunError>,
        started: Instant,
        trace: Option<RunTrace>,
    ) -> SuiteOutcome {
        let loaded = self.plugins();
        let handlers: Vec<&Arc<LoadedPlugin>> = loaded.set.handling(&suite.system).collect();
        // Quarantined plugins sit this run out; the others derive it. In handler order:
        // `None` for an admitted plugin, else its outcome.
        let mut admitted = Vec::with_capacity(handlers.len());
        let mut blocked = Vec::with_capacity(handlers.len());
        for plugin in &handlers {
            let name = plugin.decl.name.clone();
            match self.quarantine.admit(&name, Instant::now()) {
                Admission::Blocked { failures, retry_in } => {
                    tracing::debug!(
                        plugin = name,
                        suite = suite.name,
                        ?retry_in,
                        "plugin quarantined; derivation skipped"
                    );
                    blocked.push(Some(PluginOutcome {
                        plugin: name.clone(),
                        result: Err(PluginError::Quarantined {
                            plugin: name,
                            failures,
                            retry_in,
                        }),
                        rejected: Vec::new(),
                        busy: None,
                        quarantine: Transition::Unchanged,
                    }));
                }
                Admission::Allowed => {
                    admitted.push(plugin.as_ref());
                    blocked.push(None);
                }
            }
        }
        let (record, derived, dropped_artifacts) = match run {
            Ok(mut run) => {
                let dropped = std::mem::take(&mut run.dropped_artifacts);
                let follow = |cases: reading::Cases<'_>| {
                    self.emit(&Event::Cases { suite, cases });
                };
                let follows = self.consumers.iter().any(|c| c.follows_cases());
                let follow: Option<&(dyn Fn(reading::Cases<'_>) + Sync)> =
                    follows.then_some(&follow);
                let reading = reading::read(&self.runtime, &admitted, run, follow).await;
                (reading.record, reading.derived, dropped)
            }
            Err(error) => (Err(error), Vec::new(), Vec::new()),
        };
        let mut plugins = Vec::new();
        if record.is_ok() {
            let extra: Vec<KeyValue> = suite
                .labels
                .iter()
                .map(|(k, v)| KeyValue::new(k.clone(), v.clone()))
                .collect();
            let mut derived = admitted.iter().zip(derived);
            for slot in blocked {
                match slot {
                    Some(outcome) => plugins.push(outcome),
                    None => {
                        if let Some((plugin, derived)) = derived.next() {
                            plugins.push(self.record_derived(
                                &loaded,
                                plugin,
                                &suite.name,
                                derived,
                                &extra,
                            ));
                        }
                    }
                }
            }
            if handlers.is_empty() {
                tracing::warn!(
                    suite = suite.name,
                    system = suite.system,
                    "no plugin handles this system"
                );
            }
        }
        let outcome = SuiteOutcome {
            suite: suite.name.clone(),
            system: suite.system.clone(),
            duration: started.elapsed(),
            finished_at: SystemTime::now(),
            dropped_artifacts,
            run: record,
            plugins,
            trace,
        };
        match &outcome.run {
            Ok(record) => {
                let counts = &record.summary;
                tracing::info!(
                    suite = suite.name,
                    passed = counts.passed,
                    failed = counts.failed,
                    errored = counts.errored,
                    skipped = counts.skipped,
                    flaky = counts.flaky,
                    attempts = counts.attempts,
                    partial = record.partial.is_some(),
                    duration = ?record.duration,
                    "suite finished"
                );
            }
            Err(error) => {
                tracing::error!(suite = suite.name, error = %error_chain(error), "suite run failed");
            }
        }
        self.emit(&Event::SuiteFinished {
            outcome: &outcome,
            loaded: &loaded,
        });
        outcome
    }

    /// Checks and records one plugin's samples of a run and moves its quarantine.
    fn record_derived(
        &self,
        loaded: &Loaded,
        plugin: &LoadedPlugin,
        suite: &str,
        derived: Derived,
        extra: &[KeyValue],
    ) -> PluginOutcome {
        let name = plugin.decl.name.clone();
        let mut rejected = Vec::new();
        let result = derived.result.map(|samples| {
            let stamp = self.series.run(suite, &name);
            let mut accepted = Vec::with_capacity(samples.len());
            for sample in samples {
                let recorded = loaded
                    .set
                    .catalog
                    .check(&name, &sample)
                    .and_then(|_| loaded.instruments.record(&sample, extra, stamp));
                match recorded {
                    Ok(()) => accepted.push(sample),
                    Err(rejection) => rejected.push(rejection),
                }
            }
            let aged = self.series.end_run(stamp);
            if aged > 0 {
                tracing::debug!(
                    plugin = name,
                    suite,
                    aged,
                    "series no longer written aged out"
                );
            }
            accepted
        });
        if let Some(first) = rejected.first() {
            tracing::warn!(plugin = name, suite = suite, count = rejected.len(), first = %first, "samples rejected");
        }
        if let Err(error) = &result {
            tracing::error!(plugin = name, suite = suite, error = %error_chain(error), "plugin derivation failed; its last good values stay exported");
        }
        let quarantine = self
            .quarantine
            .record(&name, result.is_ok(), Instant::now());
        match quarantine {
            Transition::Unchanged => {}
            Transition::Quarantined { failures, backoff } => {
                tracing::error!(
                    plugin = name,
                    failures,
                    ?backoff,
                    "plugin quarantined after consecutive failures"
                );
            }
            Transition::Released => {
                tracing::info!(
                    plugin = name,
                    "plugin derived successfully again; quarantine lifted"
                );
            }
        }
        PluginOutcome {
            plugin: name,
            result,
            rejected,
            busy: Some(derived.busy),
            quarantine,
        }
    }
}

/// What is built from a plugin set once: its contract and its instruments.
fn build(
    set: PluginSet,
    config: &Config,
    provider: &SdkMeterProvider,
    series: &Arc<SeriesStore>,
) -> Loaded {
    let decls: Vec<_> = set.plugins.iter().map(|p| &p.decl).collect();
    let instruments = PluginInstruments::new(
        provider,
        &set.catalog,
        &decls,
        config.sandbox.max_series_per_metric,
        series,
    );
    let contract = Contract::new(&set, &config.suites);
    Loaded {
        set,
        contract,
        instruments,
    }
}
