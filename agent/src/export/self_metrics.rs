//! The agent's own metrics (`testmeter_*`): their declarations, and the instruments for suite
//! runs, durations, plugin calls and errors, rejected samples and the last successful run.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use opentelemetry::metrics::{Counter, Gauge, Histogram, Meter, MeterProvider};
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_sdk::metrics::SdkMeterProvider;

use super::health::ExportHealth;
use super::openmetrics::Exemplars;
use crate::catalog::{MetricDecl, MetricKind, Rejection};
use crate::model::TraceContext;
use crate::plugin::PluginError;
use testmeter_parse::Summary;

const RUN_DURATION_BUCKETS: &[f64] = &[
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0,
];
const PLUGIN_DURATION_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
];

/// The declaration of one of the agent's own metrics: the source of its instrument, and of
/// its entry in the metric contract that dashboards, alerts and `check` use.
#[derive(Debug, Clone, Copy)]
pub struct SelfMetricSpec {
    pub name: &'static str,
    pub kind: MetricKind,
    pub unit: &'static str,
    pub description: &'static str,
    pub labels: &'static [&'static str],
    pub buckets: &'static [f64],
}

impl SelfMetricSpec {
    const fn new(
        name: &'static str,
        kind: MetricKind,
        unit: &'static str,
        labels: &'static [&'static str],
        description: &'static str,
    ) -> Self {
        Self {
            name,
            kind,
            unit,
            description,
            labels,
            buckets: &[],
        }
    }

    pub fn decl(&self) -> MetricDecl {
        MetricDecl {
            name: self.name.to_owned(),
            kind: self.kind,
            unit: self.unit.to_owned(),
            description: self.description.to_owned(),
            label_keys: self.labels.iter().map(|l| (*l).to_owned()).collect(),
            buckets: self.buckets.to_vec(),
        }
    }
}

use MetricKind::{Counter as C, Gauge as G, Histogram as H};

pub const BUILD_INFO: SelfMetricSpec = SelfMetricSpec::new(
    "testmeter_build_info",
    G,
    "",
    &["version"],
    "Always 1; labels carry the agent's version",
);
pub const EXPORT_ERRORS: SelfMetricSpec = SelfMetricSpec::new(
    "testmeter_export_errors_total",
    C,
    "",
    &["exporter"],
    "Failed exports to the OTLP collector: exporter otlp (metrics) or otlp_traces (spans)",
);
pub const SUITE_RUNS: SelfMetricSpec = SelfMetricSpec::new(
    "testmeter_suite_runs_total",
    C,
    "",
    &["suite", "result"],
    "Suite runs by result: passed, failed (tests failed), or why no report was read",
);
pub const SUITE_SKIPS: SelfMetricSpec = SelfMetricSpec::new(
    "testmeter_suite_runs_skipped_total",
    C,
    "",
    &["suite", "reason"],
    "Runs not started because the suite's previous run was still going when they were due",
);
pub const SUITE_RUN_DURATION: SelfMetricSpec = SelfMetricSpec {
    buckets: RUN_DURATION_BUCKETS,
    ..SelfMetricSpec::new(
        "testmeter_suite_run_duration_seconds",
        H,
        "s",
        &["suite"],
        "Wall time of suite runs",
    )
};
pub const SUITE_TESTS: SelfMetricSpec = SelfMetricSpec::new(
    "testmeter_suite_tests",
    G,
    "",
    &["suite", "outcome"],
    "Test cases of the suite's latest report, by outcome",
);
pub const SUITE_PEAK_RSS: SelfMetricSpec = SelfMetricSpec::new(
    "testmeter_suite_peak_rss_bytes",
    G,
    "By",
    &["suite"],
    "Peak resident set size of the largest process of the suite's latest run, as the agent measured it (absent for reports another job wrote)",
);
pub const ARTIFACTS_DROPPED: SelfMetricSpec = SelfMetricSpec::new(
    "testmeter_artifacts_dropped_total",
    C,
    "",
    &["suite", "reason"],
    "Files that matched a suite's artifact globs but were not handed to plugins: too_large, total_cap, not_regular, outside, unreadable",
);
pub const LAST_SUCCESS: SelfMetricSpec = SelfMetricSpec::new(
    "testmeter_last_success_timestamp_seconds",
    G,
    "s",
    &["suite"],
    "Unix time of the suite's last run that produced a report every plugin derived",
);
pub const PLUGIN_CALLS: SelfMetricSpec = SelfMetricSpec::new(
    "testmeter_plugin_calls_total",
    C,
    "",
    &["plugin"],
    "Plugin derivations, one per run and plugin",
);
pub const PLUGIN_ERRORS: SelfMetricSpec = SelfMetricSpec::new(
    "testmeter_plugin_errors_total",
    C,
    "",
    &["plugin", "reason"],
    "Plugin load and derive failures by reason",
);
pub const PLUGIN_DURATION: SelfMetricSpec = SelfMetricSpec {
    buckets: PLUGIN_DURATION_BUCKETS,
    ..SelfMetricSpec::new(
        "testmeter_plugin_duration_seconds",
        H,
        "s",
        &["plugin"],
        "Time in a plugin's calls for one run: instantiation, its start, every batch of cases and its finish",
    )
};
pub const SAMPLES_REJECTED: SelfMetricSpec = SelfMetricSpec::new(
    "testmeter_samples_rejected_total",
    C,
    "",
    &["plugin", "reason"],
    "Plugin samples dropped because they did not match the plugin's declarations",
);
pub const PLUGIN_LOGS_SUPPRESSED: SelfMetricSpec = SelfMetricSpec::new(
    "testmeter_plugin_log_lines_suppressed_total",
    C,
    "",
    &["plugin"],
    "Lines a plugin wrote through host.log past its log budget ([sandbox] max_log_lines, max_log_bytes, max_log_lines_per_minute), not logged",
);
pub const HTTP_CONNECTION_ERRORS: SelfMetricSpec = SelfMetricSpec::new(
    "testmeter_http_connection_errors_total",
    C,
    "",
    &["reason"],
    "Connections to the /metrics endpoint refused or closed early, by reason (evicted: idle longest when a new one needed room at [prometheus] max_connections; limit: refused there, every connection serving a request; accept: accept failed, e.g. out of descriptors; timeout: no request headers or TLS handshake within header_read_timeout)",
);
pub const PLUGIN_RELOADS: SelfMetricSpec = SelfMetricSpec::new(
    "testmeter_plugin_reloads_total",
    C,
    "",
    &["result"],
    "Reloads of the plugin set after the plugins dir changed, by result (ok: every plugin loaded; partial: some failed to load)",
);
pub const PLUGIN_QUARANTINED: SelfMetricSpec = SelfMetricSpec::new(
    "testmeter_plugin_quarantined",
    G,
    "",
    &["plugin"],
    "1 while the plugin is quarantined after consecutive failures, else 0",
);
pub const PLUGIN_INFO: SelfMetricSpec = SelfMetricSpec::new(
    "testmeter_plugin_info",
    G,
    "",
    &["plugin", "version", "wit"],
    "Always 1 for each loaded plugin; labels carry its name, its version and the WIT version it was built against",
);

/// Every metric the agent exports about itself.
pub const HISTORY_TESTS: SelfMetricSpec = SelfMetricSpec::new(
    "testmeter_history_tests",
    G,
    "",
    &["suite", "state"],
    "Tests of the suite's latest recorded run by history state: passed, skipped, new_failure, failing, fixed, flaky, slower, quarantined",
);

pub const HISTORY_ERRORS: SelfMetricSpec = SelfMetricSpec::new(
    "testmeter_history_errors_total",
    C,
    "",
    &["reason"],
    "Runs the history store could not record: locked, corrupt, read_only, disk_full, open, schema, other",
);

pub const SPANS_DROPPED: SelfMetricSpec = SelfMetricSpec::new(
    "testmeter_spans_dropped_total",
    C,
    "",
    &[],
    "Spans of runs and cases dropped because the span queue was full ([traces] queue)",
);

pub const CASE_SPANS_CUT: SelfMetricSpec = SelfMetricSpec::new(
    "testmeter_case_spans_cut_total",
    C,
    "",
    &["suite"],
    "Cases that trace_cases chose but that got no span, past [traces] max_case_spans of their run",
);

pub const DECLARED: &[SelfMetricSpec] = &[
    BUILD_INFO,
    EXPORT_ERRORS,
    SUITE_RUNS,
    SUITE_SKIPS,
    SUITE_RUN_DURATION,
    SUITE_TESTS,
    SUITE_PEAK_RSS,
    ARTIFACTS_DROPPED,
    LAST_SUCCESS,
    PLUGIN_CALLS,
    PLUGIN_ERRORS,
    PLUGIN_DURATION,
    SAMPLES_REJECTED,
    PLUGIN_LOGS_SUPPRESSED,
    HTTP_CONNECTION_ERRORS,
    PLUGIN_RELOADS,
    PLUGIN_QUARANTINED,
    PLUGIN_INFO,
    HISTORY_TESTS,
    HISTORY_ERRORS,
    SPANS_DROPPED,
    CASE_SPANS_CUT,
];

/// Instruments of the agent's own health.
pub struct SelfMetrics {
    suite_runs: Counter<u64>,
    suite_skips: Counter<u64>,
    suite_run_duration: Histogram<f64>,
    suite_tests: Gauge<u64>,
    suite_peak_rss: Gauge<u64>,
    artifacts_dropped: Counter<u64>,
    last_success: Gauge<f64>,
    plugin_calls: Counter<u64>,
    plugin_errors: Counter<u64>,
    plugin_duration: Histogram<f64>,
    samples_rejected: Counter<u64>,
    plugin_logs_suppressed: Counter<u64>,
    http_connection_errors: Counter<u64>,
    plugin_info: Gauge<u64>,
    plugin_quarantined: Gauge<u64>,
    plugin_reloads: Counter<u64>,
    history_tests: Gauge<u64>,
    history_errors: Counter<u64>,
    spans_dropped: Counter<u64>,
    case_spans_cut: Counter<u64>,
    /// The duration histograms again, with the run's trace as exemplar (OpenMetrics).
    exemplars: Option<Arc<Exemplars>>,
}

impl std::fmt::Debug for SelfMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SelfMetrics").finish_non_exhaustive()
    }
}

fn kv(key: &'static str, value: &str) -> KeyValue {
    KeyValue::new(key, value.to_owned())
}

fn counter(meter: &Meter, spec: &SelfMetricSpec) -> Counter<u64> {
    meter
        .u64_counter(spec.name)
        .with_description(spec.description)
        .build()
}

fn u64_gauge(meter: &Meter, spec: &SelfMetricSpec) -> Gauge<u64> {
    meter
        .u64_gauge(spec.name)
        .with_description(spec.description)
        .build()
}

fn histogram(meter: &Meter, spec: &SelfMetricSpec) -> Histogram<f64> {
    meter
        .f64_histogram(spec.name)
        .with_unit(spec.unit)
        .with_description(spec.description)
        .with_boundaries(spec.buckets.to_vec())
        .build()
}

impl SelfMetrics {
    pub fn new(provider: &SdkMeterProvider, sinks: &[super::sink::Sink]) -> Self {
        let scope = InstrumentationScope::builder("testmeter")
            .with_version(env!("CARGO_PKG_VERSION"))
            .build();
        let meter = provider.meter_with_scope(scope);
        u64_gauge(&meter, &BUILD_INFO).record(1, &[kv("version", env!("CARGO_PKG_VERSION"))]);
        let watched: Vec<(&'static str, Arc<ExportHealth>)> = sinks
            .iter()
            .filter_map(|sink| Some((sink.name, Arc::clone(sink.health.as_ref()?))))
            .collect();
        if !watched.is_empty() {
            // Registered once; the SDK keeps the callback for the provider's lifetime.
            let _export_errors = meter
                .u64_observable_counter(EXPORT_ERRORS.name)
                .with_description(EXPORT_ERRORS.description)
                .with_callback(move |observer| {
                    for (name, health) in &watched {
                        observer.observe(health.failures(), &[kv("exporter", name)]);
                    }
                })
                .build();
        }
        Self {
            suite_runs: counter(&meter, &SUITE_RUNS),
            suite_skips: counter(&meter, &SUITE_SKIPS),
            suite_run_duration: histogram(&meter, &SUITE_RUN_DURATION),
            suite_tests: u64_gauge(&meter, &SUITE_TESTS),
            artifacts_dropped: counter(&meter, &ARTIFACTS_DROPPED),
            suite_peak_rss: meter
                .u64_gauge(SUITE_PEAK_RSS.name)
                .with_unit(SUITE_PEAK_RSS.unit)
                .with_description(SUITE_PEAK_RSS.description)
                .build(),
            last_success: meter
                .f64_gauge(LAST_SUCCESS.name)
                .with_unit(LAST_SUCCESS.unit)
                .with_description(LAST_SUCCESS.description)
                .build(),
            plugin_calls: counter(&meter, &PLUGIN_CALLS),
            plugin_errors: counter(&meter, &PLUGIN_ERRORS),
            plugin_duration: histogram(&meter, &PLUGIN_DURATION),
            samples_rejected: counter(&meter, &SAMPLES_REJECTED),
            plugin_logs_suppressed: counter(&meter, &PLUGIN_LOGS_SUPPRESSED),
            http_connection_errors: counter(&meter, &HTTP_CONNECTION_ERRORS),
            plugin_reloads: counter(&meter, &PLUGIN_RELOADS),
            plugin_quarantined: u64_gauge(&meter, &PLUGIN_QUARANTINED),
            plugin_info: u64_gauge(&meter, &PLUGIN_INFO),
            history_tests: u64_gauge(&meter, &HISTORY_TESTS),
            history_errors: counter(&meter, &HISTORY_ERRORS),
            spans_dropped: counter(&meter, &SPANS_DROPPED),
            case_spans_cut: counter(&meter, &CASE_SPANS_CUT),
            exemplars: None,
        }
    }

    /// Also records the duration histograms into `exemplars`, each observation with the trace
    /// of the run it observed, for `/metrics` in OpenMetrics.
    pub fn with_exemplars(mut self, exemplars: Arc<Exemplars>) -> Self {
        self.exemplars = Some(exemplars);
        self
    }

    /// A run of `suite` ended; `trace` is its span when it was traced.
    pub fn suite_run(
        &self,
        suite: &str,
        result: &str,
        duration: Duration,
        trace: Option<&TraceContext>,
    ) {
        self.suite_runs
            .add(1, &[kv("suite", suite), kv("result", result)]);
        self.suite_run_duration
            .record(duration.as_secs_f64(), &[kv("suite", suite)]);
        if let Some(exemplars) = &self.exemplars {
            exemplars.observe(
                SUITE_RUN_DURATION.name,
                &[("suite", suite)],
                duration.as_secs_f64(),
                trace,
            );
        }
    }

    /// Starts the span counters at 0 when traces are on, so `rate()` sees the first drop.
    pub fn traces_on(&self, suites: &[&str]) {
        self.spans_dropped.add(0, &[]);
        for suite in suites {
            self.case_spans_cut.add(0, &[kv("suite", suite)]);
        }
    }

    pub fn spans_dropped(&self, count: u64) {
        self.spans_dropped.add(count, &[]);
    }

    pub fn case_spans_cut(&self, suite: &str, count: u64) {
        self.case_spans_cut.add(count, &[kv("suite", suite)]);
    }

    pub fn suite_skipped(&self, suite: &str, reason: &str, count: u64) {
        self.suite_skips
            .add(count, &[kv("suite", suite), kv("reason", reason)]);
    }

    pub fn suite_tests(&self, suite: &str, counts: &Summary) {
        for (outcome, count) in [
            ("passed", counts.passed),
            ("failed", counts.failed),
            ("errored", counts.errored),
            ("skipped", counts.skipped),
        ] {
            self.suite_tests.record(
                u64::try_from(count).unwrap_or(u64::MAX),
                &[kv("suite", suite), kv("outcome", outcome)],
            );
        }
    }

    pub fn suite_peak_rss(&self, suite: &str, bytes: u64) {
        self.suite_peak_rss.record(bytes, &[kv("suite", suite)]);
    }

    pub fn artifact_dropped(&self, suite: &str, reason: &str) {
        self.artifacts_dropped
            .add(1, &[kv("suite", suite), kv("reason", reason)]);
    }

    pub fn suite_success(&self, suite: &str, at: SystemTime) {
        let seconds = at
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        self.last_success.record(seconds, &[kv("suite", suite)]);
    }

    /// A plugin derived a run; `trace` is the run's span when it was traced.
    pub fn plugin_call(&self, plugin: &str, duration: Duration, trace: Option<&TraceContext>) {
        self.plugin_calls.add(1, &[kv("plugin", plugin)]);
        self.plugin_duration
            .record(duration.as_secs_f64(), &[kv("plugin", plugin)]);
        if let Some(exemplars) = &self.exemplars {
            exemplars.observe(
                PLUGIN_DURATION.name,
                &[("plugin", plugin)],
                duration.as_secs_f64(),
                trace,
            );
        }
    }

    pub fn plugin_error(&self, plugin: &str, reason: &str) {
        self.plugin_errors
            .add(1, &[kv("plugin", plugin), kv("reason", reason)]);
    }

    pub fn sample_rejected(&self, plugin: &str, reason: &str) {
        self.samples_rejected
            .add(1, &[kv("plugin", plugin), kv("reason", reason)]);
    }

    /// Records a loaded plugin, and starts its error and rejection counters at 0 for every
    /// reason, so `rate()` sees the first failure and dashboards show 0 rather than no data.
    pub fn plugin_loaded(&self, plugin: &str, version: &str, wit: &str) {
        self.plugin_info.record(
            1,
            &[kv("plugin", plugin), kv("version", version), kv("wit", wit)],
        );
        self.plugin_quarantined(plugin, false);
        for reason in PluginError::REASONS {
            self.plugin_errors
                .add(0, &[kv("plugin", plugin), kv("reason", reason)]);
        }
        for reason in Rejection::REASONS {
            self.samples_rejected
                .add(0, &[kv("plugin", plugin), kv("reason", reason)]);
        }
        self.plugin_logs_suppressed.add(0, &[kv("plugin", plugin)]);
    }

    /// What counts the endpoint's refused and failed connections, each reason from 0 (the
    /// server's `OnConnectionError`).
    pub fn connection_errors(&self) -> Arc<dyn Fn(&'static str) + Send + Sync> {
        let counter = self.http_connection_errors.clone();
        for reason in ["limit", "evicted", "accept", "timeout"] {
            counter.add(0, &[kv("reason", reason)]);
        }
        Arc::new(move |reason: &'static str| counter.add(1, &[kv("reason", reason)]))
    }

    /// What counts the `host.log` lines a plugin wrote past its budget, for the plugin runtime.
    pub fn log_suppression(&self) -> crate::plugin::host::OnSuppressed {
        let counter = self.plugin_logs_suppressed.clone();
        Arc::new(move |plugin: &str, lines: u64| counter.add(lines, &[kv("plugin", plugin)]))
    }

    pub fn plugin_reload(&self, result: &str) {
        self.plugin_reloads.add(1, &[kv("result", result)]);
    }

    /// The tests of a suite's latest recorded run in one history state.
    pub fn history_tests(&self, suite: &str, state: &str, count: u64) {
        self.history_tests
            .record(count, &[kv("suite", suite), kv("state", state)]);
    }

    pub fn history_error(&self, reason: &'static str) {
        self.history_errors.add(1, &[kv("reason", reason)]);
    }

    pub fn plugin_quarantined(&self, plugin: &str, quarantined: bool) {
        self.plugin_quarantined
            .record(u64::from(quarantined), &[kv("plugin", plugin)]);
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use prometheus::Encoder;

    use super::*;
    use crate::export::telemetry::Telemetry;

    /// Every instrument, recorded once, exposes exactly the name, kind and label keys that
    /// `DECLARED` says, so the contract never drifts from what `/metrics` shows.
    #[test]
    fn the_declarations_match_the_exposition() {
        let telemetry =
            Telemetry::init(None, &crate::config::TracesConfig::default()).expect("telemetry");
        let otlp = crate::export::Sink {
            name: "otlp",
            health: Some(Arc::new(ExportHealth::default())),
        };
        let metrics = SelfMetrics::new(&telemetry.provider, &[otlp]);
        metrics.suite_run("s", "passed", Duration::from_millis(5), None);
        metrics.suite_skipped("s", "overlap", 1);
        metrics.suite_tests("s", &Summary::default());
        metrics.suite_peak_rss("s", 1 << 20);
        metrics.artifact_dropped("s", "too_large");
        metrics.suite_success("s", SystemTime::now());
        metrics.plugin_call("p", Duration::from_millis(1), None);
        metrics.plugin_error("p", "trap");
        metrics.sample_rejected("p", "labels");
        metrics.plugin_loaded("p", "1.0.0", "0.2.0");
        metrics.plugin_reload("ok");
        metrics.history_tests("s", "flaky", 2);
        metrics.history_error("locked");
        metrics.traces_on(&["s"]);
        metrics.spans_dropped(1);
        metrics.case_spans_cut("s", 3);
        metrics.connection_errors()("limit");
        let mut body = Vec::new();
        prometheus::TextEncoder::new()
            .encode(&telemetry.registry.gather(), &mut body)
            .expect("encode");
        let text = String::from_utf8(body).expect("utf-8");
        let mut exposed: BTreeMap<String, (String, BTreeSet<String>)> = BTreeMap::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').expect("type line");
                exposed.entry(name.to_owned()).or_default().0 = kind.to_owned();
            } else if !line.starts_with('#') {
                let (series, _) = line.rsplit_once(' ').expect("sample line");
                let (name, labels) = series.split_once('{').unwrap_or((series, ""));
                let family = ["_bucket", "_sum", "_count"]
                    .iter()
                    .find_map(|suffix| {
                        name.strip_suffix(suffix)
                            .filter(|base| exposed.contains_key(*base))
                    })
                    .unwrap_or(name);
                let keys = labels
                    .trim_end_matches('}')
                    .split(',')
                    .filter_map(|pair| pair.split_once('=').map(|(k, _)| k.to_owned()))
                    .filter(|k| k != "le" && !k.starts_with("otel_scope"));
                exposed.entry(family.to_owned()).or_default().1.extend(keys);
            }
        }
        exposed.remove("target_info");
        let declared: BTreeMap<String, (String, BTreeSet<String>)> = DECLARED
            .iter()
            .map(|spec| {
                (
                    spec.name.to_owned(),
                    (
                        spec.kind.as_str().to_owned(),
                        spec.labels.iter().map(|l| (*l).to_owned()).collect(),
                    ),
                )
            })
            .collect();
        assert_eq!(exposed, declared);
    }
}
