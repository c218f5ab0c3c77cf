//! The agent: loads plugins, runs suites, hands each run to the plugins of its system, checks
//! their samples against the catalog and records them for both exporters.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use opentelemetry::KeyValue;

use crate::catalog::{Catalog, CatalogError, Rejection, Sample};
use crate::config::{Config, SuiteConfig};
use crate::export::{ExportError, PluginInstruments, SelfMetrics, SeriesStore, Telemetry};

use crate::model::{RunRecord, SuiteRun};
use crate::plugin::quarantine::{Admission, Quarantine, Transition};
use crate::plugin::{LoadedPlugin, PluginError, PluginRuntime, SandboxLimits};
use crate::reading::{self, Derived};
use crate::runner::{self, RunError};

/// What one plugin made of one run.
#[derive(Debug)]
pub struct PluginOutcome {
    pub plugin: String,
    /// The accepted samples, or why the derivation failed.
    pub result: Result<Vec<Sample>, PluginError>,
    pub rejected: Vec<Rejection>,
}

/// Everything that happened to one suite in one round.
#[derive(Debug)]
pub struct SuiteOutcome {
    pub suite: String,
    pub system: String,
    pub duration: Duration,
    pub run: Result<RunRecord, RunError>,
    pub plugins: Vec<PluginOutcome>,
}

impl SuiteOutcome {
    /// True when the suite ran, its report was read and every plugin derived it.
    pub fn succeeded(&self) -> bool {
        self.run.is_ok() && self.plugins.iter().all(|p| p.result.is_ok())
    }
}

/// The plugins loaded from the plugins dir and what their declarations registered. The agent
/// replaces the whole set when the dir changes, so a run always sees one consistent set.
pub struct PluginSet {
    pub plugins: Vec<Arc<LoadedPlugin>>,
    pub load_failures: Vec<LoadFailure>,
    /// On a reload: files that failed to load within [`SETTLE`] of their last write, taken as
    /// still being copied in. Not reported yet; the watcher loads them again once they settle.
    pub pending: Vec<PathBuf>,
    pub catalog_errors: Vec<CatalogError>,
    catalog: Catalog,
    instruments: PluginInstruments,
}

impl PluginSet {
    /// The kind of `metric` if `plugin` declared it.
    pub fn catalog_kind(&self, plugin: &str, metric: &str) -> Option<crate::catalog::MetricKind> {
        self.catalog.get(plugin, metric).map(|decl| decl.kind)
    }
}

/// How long after its last write a `.wasm` that fails to load on a reload is taken as still
/// being written (a slow copy in place) rather than broken.
pub const SETTLE: Duration = Duration::from_secs(2);

/// True when `path` was written less than [`SETTLE`] ago.
fn still_being_written(path: &Path) -> bool {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|modified| modified.elapsed().ok())
        .is_some_and(|age| age < SETTLE)
}

/// A plugin file that failed to load.
#[derive(Debug)]
pub struct LoadFailure {
    pub path: PathBuf,
    pub error: PluginError,
}

pub struct Agent {
    pub config: Config,
    runtime: PluginRuntime,
    set: std::sync::RwLock<Arc<PluginSet>>,
    quarantine: Quarantine,
    /// Every plugin counter and gauge series, kept across reloads, aging out when unwritten.
    series: Arc<SeriesStore>,
    pub self_metrics: SelfMetrics,
    pub telemetry: Telemetry,
    /// Suites that have not run yet, for `/readyz`.
    pub readiness: Arc<crate::export::server::Readiness>,
    /// Each suite's latest run and SLO verdicts, for `/` and the `once` table.
    pub status: Arc<crate::status::StatusBoard>,
}

impl std::fmt::Debug for Agent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Agent")
            .field("plugins", &self.plugins().plugins)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error(transparent)]
    Export(#[from] ExportError),
    #[error(transparent)]
    Plugin(#[from] PluginError),
}

impl Agent {
    /// Sets up export, then loads every `*.wasm` in the plugins dir. A plugin that fails to
    /// load is logged and counted; the agent starts without it.
    pub async fn start(config: Config) -> Result<Self, AgentError> {
        let telemetry = Telemetry::init(config.otlp.as_ref())?;
        let self_metrics = SelfMetrics::new(&telemetry.provider, telemetry.otlp_health.clone());
        let mut runtime = PluginRuntime::new(SandboxLimits::from(&config.sandbox))?;
        runtime.count_suppressed_logs(self_metrics.log_suppression());
        if let Some(dir) = config.sandbox.effective_cache_dir() {
            if let Err(error) = runtime.enable_cache(&dir) {
                tracing::warn!(error = %error_chain(&error), "compiled-plugin cache off");
            }
        }
        let series = SeriesStore::new(config.sandbox.series_idle_runs);
        let set = load_set(&runtime, &config, &telemetry, &self_metrics, &series, None).await;
        let quarantine = Quarantine::new(
            config.sandbox.quarantine_after,
            config.sandbox.quarantine_backoff,
        );
        let readiness = Arc::new(crate::export::server::Readiness::new(
            config.suites.iter().map(|s| s.name.as_str()),
        ));
        let status = Arc::new(crate::status::StatusBoard::new(&config.suites));
        status.set_plugins(&set);
        Ok(Self {
            readiness,
            status,
            config,
            runtime,
            set: std::sync::RwLock::new(Arc::new(set)),
            quarantine,
            series,
            self_metrics,
            telemetry,
        })
    }

    /// The current plugin set (a snapshot: a reload swaps in a new one).
    pub fn plugins(&self) -> Arc<PluginSet> {
        let guard = self
            .set
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        Arc::clone(&guard)
    }

    /// Loads the plugins dir again and swaps the new set in whole. Runs in flight keep the set
    /// they started with. `since` is when the change was first seen, for the time-to-ready log.
    /// Returns how long to wait before loading again when a file is still being written.
    pub async fn reload_plugins(&self, since: Instant) -> Option<Duration> {
        let old = self.plugins();
        let set = load_set(
            &self.runtime,
            &self.config,
            &self.telemetry,
            &self.self_metrics,
            &self.series,
            Some(&old),
        )
        .await;
        let names = |set: &PluginSet| -> Vec<String> {
            set.plugins.iter().map(|p| p.decl.name.clone()).collect()
        };
        let (before, after) = (names(&old), names(&set));
        let added: Vec<&String> = after.iter().filter(|n| !before.contains(n)).collect();
        let removed: Vec<&String> = before.iter().filter(|n| !after.contains(n)).collect();
        let result = if set.load_failures.is_empty() {
            "ok"
        } else {
            "partial"
        };
        let pending: Vec<String> = set
            .pending
            .iter()
            .map(|path| path.display().to_string())
            .collect();
        self.status.set_plugins(&set);
        *self
            .set
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(set);
        self.self_metrics.plugin_reload(result);
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
        let reads_output = self
            .plugins()
            .plugins
            .iter()
            .filter(|plugin| plugin.handles(&suite.system))
            .any(|plugin| plugin.reads.output());
        let run = runner::execute(suite, reads_output).await;
        self.record_run(suite, run, started).await
    }

    /// Reads a run's report (executed here, or reports another job wrote) while every plugin
    /// of its system derives it, and records the samples and the agent's own metrics.
    pub async fn record_run(
        &self,
        suite: &SuiteConfig,
        run: Result<SuiteRun, RunError>,
        started: Instant,
    ) -> SuiteOutcome {
        let set = self.plugins();
        let handlers: Vec<&Arc<LoadedPlugin>> = set
            .plugins
            .iter()
            .filter(|p| p.handles(&suite.system))
            .collect();
        // Quarantined plugins sit this run out; the others derive it.
        let mut admitted = Vec::with_capacity(handlers.len());
        // In handler order: `None` for an admitted plugin, else its outcome.
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
                    }));
                }
                Admission::Allowed => {
                    admitted.push(plugin.as_ref());
                    blocked.push(None);
                }
            }
        }
        let (record, derived) = match run {
            Ok(run) => {
                for dropped in &run.dropped_artifacts {
                    self.self_metrics
                        .artifact_dropped(&suite.name, dropped.reason);
                }
                let reading = reading::read(&self.runtime, &admitted, run).await;
                (reading.record, reading.derived)
            }
            Err(error) => (Err(error), Vec::new()),
        };
        let mut plugins = Vec::new();
        match &record {
            Ok(record) => {
                let counts = &record.summary;
                self.self_metrics.suite_tests(&suite.name, counts);
                if let Some(bytes) = record.peak_rss_bytes {
                    self.self_metrics.suite_peak_rss(&suite.name, bytes);
                }
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
                                    &set,
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
                let result = if record.partial.is_some() {
                    "partial"
                } else if record.passed() {
                    "passed"
                } else {
                    "failed"
                };
                self.self_metrics
                    .suite_run(&suite.name, result, record.duration);
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
                self.self_metrics
                    .suite_run(&suite.name, error.reason(), started.elapsed());
                tracing::error!(suite = suite.name, error = %error_chain(error), "suite run failed");
            }
        }
        self.readiness.ran(&suite.name);
        let outcome = SuiteOutcome {
            suite: suite.name.clone(),
            system: suite.system.clone(),
            duration: started.elapsed(),
            run: record,
            plugins,
        };
        let now = std::time::SystemTime::now();
        if outcome.succeeded() {
            self.self_metrics.suite_success(&suite.name, now);
        }
        let contract = crate::contract::Contract::new(&set, &self.config);
        self.status
            .record(crate::status::SuiteStatus::of(&outcome, &contract, now));
        outcome
    }

    /// Checks and records one plugin's samples of a run, counts its failures and moves its
    /// quarantine.
    fn record_derived(
        &self,
        set: &PluginSet,
        plugin: &LoadedPlugin,
        suite: &str,
        derived: Derived,
        extra: &[KeyValue],
    ) -> PluginOutcome {
        let name = plugin.decl.name.clone();
        self.self_metrics.plugin_call(&name, derived.busy);
        let mut rejected = Vec::new();
        let result = derived.result.map(|samples| {
            let stamp = self.series.run(suite, &name);
            let mut accepted = Vec::with_capacity(samples.len());
            for sample in samples {
                let recorded = set
                    .catalog
                    .check(&name, &sample)
                    .and_then(|_| set.instruments.record(&sample, extra, stamp));
                match recorded {
                    Ok(()) => accepted.push(sample),
                    Err(rejection) => {
                        self.self_metrics.sample_rejected(&name, rejection.reason());
                        rejected.push(rejection);
                    }
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
            self.self_metrics.plugin_error(&name, error.reason());
            tracing::error!(plugin = name, suite = suite, error = %error_chain(error), "plugin derivation failed; its last good values stay exported");
        }
        match self
            .quarantine
            .record(&name, result.is_ok(), Instant::now())
        {
            Transition::Unchanged => {}
            Transition::Quarantined { failures, backoff } => {
                self.self_metrics.plugin_quarantined(&name, true);
                tracing::error!(
                    plugin = name,
                    failures,
                    ?backoff,
                    "plugin quarantined after consecutive failures"
                );
            }
            Transition::Released => {
                self.self_metrics.plugin_quarantined(&name, false);
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
        }
    }

    /// Runs every suite once, in config order.
    pub async fn run_all_once(&self) -> Vec<SuiteOutcome> {
        let mut outcomes = Vec::with_capacity(self.config.suites.len());
        for suite in &self.config.suites {
            outcomes.push(self.run_suite(suite).await);
        }
        outcomes
    }
}

/// Loads every plugin in the config's plugins dir, logs and counts what failed, and registers
/// the declarations: one consistent set.
async fn load_set(
    runtime: &PluginRuntime,
    config: &Config,
    telemetry: &Telemetry,
    self_metrics: &SelfMetrics,
    series: &Arc<SeriesStore>,
    previous: Option<&PluginSet>,
) -> PluginSet {
    let (loaded, failures) = load_plugins(runtime, &config.plugins_dir).await;
    let mut plugins: Vec<Arc<LoadedPlugin>> = loaded.into_iter().map(Arc::new).collect();
    // On a reload, a file written moments ago that fails to load is most likely still being
    // copied in: it waits for the next load instead of being reported.
    let (pending, mut load_failures): (Vec<LoadFailure>, Vec<LoadFailure>) = failures
        .into_iter()
        .partition(|failure| previous.is_some() && still_being_written(&failure.path));
    for failure in &pending {
        tracing::debug!(path = %failure.path.display(), error = %error_chain(&failure.error), "plugin file still being written; loading it again once it settles");
    }
    // A file that fails to load but loaded before (a replacement caught half-written, or a
    // broken new version) keeps its previous version serving; the failure is still logged and
    // counted below.
    let failed = pending.iter().map(|f| (f, false));
    for (failure, reported) in failed.chain(load_failures.iter().map(|f| (f, true))) {
        let kept = previous.and_then(|set| set.plugins.iter().find(|p| p.path == failure.path));
        if let Some(kept) = kept {
            if reported {
                tracing::warn!(path = %failure.path.display(), plugin = kept.decl.name, version = kept.decl.version, "the new file failed to load; the previous version keeps serving");
            }
            plugins.push(Arc::clone(kept));
        }
    }
    plugins.sort_by(|a, b| a.path.cmp(&b.path));
    let (plugins, refused) = one_file_per_name(plugins, previous);
    load_failures.extend(refused);
    let mut catalog = Catalog::default();
    let mut catalog_errors = Vec::new();
    for failure in &load_failures {
        tracing::error!(path = %failure.path.display(), error = %error_chain(&failure.error), "plugin not loaded");
        self_metrics.plugin_error(&file_label(&failure.path), failure.error.reason());
    }
    for plugin in &plugins {
        tracing::info!(
            plugin = plugin.decl.name,
            version = plugin.decl.version,
            wit = plugin.wit.as_str(),
            systems = ?plugin.decl.systems,
            metrics = plugin.decl.metrics.len(),
            path = %plugin.path.display(),
            load_time = ?plugin.load_time,
            cache = %plugin.cache,
            "plugin loaded"
        );
        self_metrics.plugin_loaded(&plugin.decl.name, &plugin.decl.version, plugin.wit.as_str());
    }
    let decls: Vec<_> = plugins.iter().map(|p| &p.decl).collect();
    let refused_slos = plugins.iter().flat_map(|p| p.refused_slos.iter().cloned());
    for error in refused_slos.chain(catalog.register_all(&decls)) {
        tracing::error!(%error, "metric declaration refused");
        self_metrics.plugin_error(error.plugin(), "invalid");
        catalog_errors.push(error);
    }
    let instruments = PluginInstruments::new(
        &telemetry.provider,
        &catalog,
        &decls,
        config.sandbox.max_series_per_metric,
        series,
    );
    if plugins
        .iter()
        .any(|p| !matches!(p.cache, crate::plugin::cache::CacheOutcome::Hit))
    {
        crate::plugin::trim_heap();
    }
    PluginSet {
        plugins,
        load_failures,
        pending: pending.into_iter().map(|failure| failure.path).collect(),
        catalog_errors,
        catalog,
        instruments,
    }
}

/// A plugin's identity is its declared name, and one file holds it, so no two files can merge
/// their self-metrics, own each other's metrics or share a quarantine. Of files that declare
/// the same name (`plugins` sorted by path):
/// - the file that held the name before this reload keeps it, and the others are refused;
/// - else, when they are byte-for-byte copies, `<name>.wasm` (or the first) keeps it and the
///   copies are refused;
/// - else every one of them is refused: which file sorts first must not decide who a plugin is.
fn one_file_per_name(
    plugins: Vec<Arc<LoadedPlugin>>,
    previous: Option<&PluginSet>,
) -> (Vec<Arc<LoadedPlugin>>, Vec<LoadFailure>) {
    let mut by_name: std::collections::BTreeMap<&str, Vec<&Arc<LoadedPlugin>>> =
        std::collections::BTreeMap::new();
    for plugin in &plugins {
        by_name.entry(&plugin.decl.name).or_default().push(plugin);
    }
    let mut refused = Vec::new();
    let mut kept_paths = Vec::new();
    for (name, files) in by_name {
        let [first, rest @ ..] = files.as_slice() else {
            continue;
        };
        if rest.is_empty() {
            kept_paths.push(first.path.clone());
            continue;
        }
        let holder = previous.and_then(|set| {
            set.plugins
                .iter()
                .find(|p| p.decl.name == name)
                .and_then(|held| files.iter().find(|f| f.path == held.path))
        });
        let copies = rest.iter().all(|f| f.digest == first.digest);
        let named = files
            .iter()
            .find(|f| f.path.file_stem().is_some_and(|stem| stem == name))
            .unwrap_or(first);
        let kept = holder.or(copies.then_some(named));
        for file in &files {
            if kept.is_some_and(|k| k.path == file.path) {
                continue;
            }
            let error = match kept {
                Some(kept) if kept.digest == file.digest => PluginError::Copy {
                    path: file.path.clone(),
                    of: kept.path.clone(),
                    name: name.to_owned(),
                },
                _ => PluginError::SameName {
                    path: file.path.clone(),
                    name: name.to_owned(),
                    others: files
                        .iter()
                        .filter(|other| other.path != file.path)
                        .map(|other| other.path.clone())
                        .collect(),
                    kept: kept.map(|k| k.path.clone()),
                },
            };
            refused.push(LoadFailure {
                path: file.path.clone(),
                error,
            });
        }
        kept_paths.extend(kept.map(|k| k.path.clone()));
    }
    let plugins = plugins
        .into_iter()
        .filter(|p| kept_paths.contains(&p.path))
        .collect();
    (plugins, refused)
}

async fn load_plugins(
    runtime: &PluginRuntime,
    dir: &Path,
) -> (Vec<LoadedPlugin>, Vec<LoadFailure>) {
    let mut paths: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "wasm") && p.is_file())
            .collect(),
        Err(error) => {
            tracing::error!(dir = %dir.display(), %error, "cannot read the plugins dir; no plugins loaded");
            Vec::new()
        }
    };
    paths.sort();
    let mut plugins = Vec::new();
    let mut failures = Vec::new();
    for path in paths {
        match runtime.load(&path).await {
            Ok(plugin) => plugins.push(plugin),
            Err(error) => failures.push(LoadFailure { path, error }),
        }
    }
    (plugins, failures)
}

/// The file stem names a plugin that could not tell its own name.
fn file_label(path: &Path) -> String {
    path.file_stem().map_or_else(
        || path.display().to_string(),
        |s| s.to_string_lossy().into_owned(),
    )
}

/// An error with its sources, `a: b: c`.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
