//! The agent's own metrics (`testmeter_*`): suite runs, durations, plugin calls and errors,
//! rejected samples and the last successful run per suite.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use opentelemetry::metrics::{Counter, Gauge, Histogram, MeterProvider};
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_sdk::metrics::SdkMeterProvider;

use super::health::ExportHealth;
use testmeter_parse::Summary;

const RUN_DURATION_BUCKETS: &[f64] = &[
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0,
];
const PLUGIN_DURATION_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
];

/// Instruments of the agent's own health.
pub struct SelfMetrics {
    suite_runs: Counter<u64>,
    suite_run_duration: Histogram<f64>,
    suite_tests: Gauge<u64>,
    last_success: Gauge<f64>,
    plugin_calls: Counter<u64>,
    plugin_errors: Counter<u64>,
    plugin_duration: Histogram<f64>,
    samples_rejected: Counter<u64>,
    plugin_info: Gauge<u64>,
    plugin_quarantined: Gauge<u64>,
    plugin_reloads: Counter<u64>,
}

impl std::fmt::Debug for SelfMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SelfMetrics").finish_non_exhaustive()
    }
}

fn kv(key: &'static str, value: &str) -> KeyValue {
    KeyValue::new(key, value.to_owned())
}

impl SelfMetrics {
    pub fn new(provider: &SdkMeterProvider, otlp_health: Option<Arc<ExportHealth>>) -> Self {
        let scope = InstrumentationScope::builder("testmeter")
            .with_version(env!("CARGO_PKG_VERSION"))
            .build();
        let meter = provider.meter_with_scope(scope);
        let build_info = meter
            .u64_gauge("testmeter_build_info")
            .with_description("Always 1; labels carry the agent's version")
            .build();
        build_info.record(1, &[kv("version", env!("CARGO_PKG_VERSION"))]);
        if let Some(health) = otlp_health {
            // Registered once; the SDK keeps the callback for the provider's lifetime.
            let _export_errors = meter
                .u64_observable_counter("testmeter_export_errors_total")
                .with_description("Failed metric exports to the OTLP collector")
                .with_callback(move |observer| {
                    observer.observe(health.failures(), &[kv("exporter", "otlp")]);
                })
                .build();
        }
        Self {
            suite_runs: meter
                .u64_counter("testmeter_suite_runs_total")
                .with_description("Suite runs by result: passed, failed (tests failed), or why no report was read")
                .build(),
            suite_run_duration: meter
                .f64_histogram("testmeter_suite_run_duration_seconds")
                .with_unit("s")
                .with_description("Wall time of suite runs")
                .with_boundaries(RUN_DURATION_BUCKETS.to_vec())
                .build(),
            suite_tests: meter
                .u64_gauge("testmeter_suite_tests")
                .with_description("Test cases of the suite's latest report, by outcome")
                .build(),
            last_success: meter
                .f64_gauge("testmeter_last_success_timestamp_seconds")
                .with_unit("s")
                .with_description("Unix time of the suite's last run that produced a report every plugin derived")
                .build(),
            plugin_calls: meter
                .u64_counter("testmeter_plugin_calls_total")
                .with_description("Plugin derive calls")
                .build(),
            plugin_errors: meter
                .u64_counter("testmeter_plugin_errors_total")
                .with_description("Plugin load and derive failures by reason")
                .build(),
            plugin_duration: meter
                .f64_histogram("testmeter_plugin_duration_seconds")
                .with_unit("s")
                .with_description("Time of plugin derive calls: instantiation, passing the run in and the samples out")
                .with_boundaries(PLUGIN_DURATION_BUCKETS.to_vec())
                .build(),
            samples_rejected: meter
                .u64_counter("testmeter_samples_rejected_total")
                .with_description("Plugin samples dropped because they did not match the plugin's declarations")
                .build(),
            plugin_reloads: meter
                .u64_counter("testmeter_plugin_reloads_total")
                .with_description("Reloads of the plugin set after the plugins dir changed, by result (ok: every plugin loaded; partial: some failed to load)")
                .build(),
            plugin_quarantined: meter
                .u64_gauge("testmeter_plugin_quarantined")
                .with_description("1 while the plugin is quarantined after consecutive failures, else 0")
                .build(),
            plugin_info: meter
                .u64_gauge("testmeter_plugin_info")
                .with_description("Always 1 for each loaded plugin; labels carry its name, its version and the WIT version it was built against")
                .build(),
        }
    }

    pub fn suite_run(&self, suite: &str, result: &str, duration: Duration) {
        self.suite_runs
            .add(1, &[kv("suite", suite), kv("result", result)]);
        self.suite_run_duration
            .record(duration.as_secs_f64(), &[kv("suite", suite)]);
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

    pub fn suite_success(&self, suite: &str, at: SystemTime) {
        let seconds = at
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        self.last_success.record(seconds, &[kv("suite", suite)]);
    }

    pub fn plugin_call(&self, plugin: &str, duration: Duration) {
        self.plugin_calls.add(1, &[kv("plugin", plugin)]);
        self.plugin_duration
            .record(duration.as_secs_f64(), &[kv("plugin", plugin)]);
    }

    pub fn plugin_error(&self, plugin: &str, reason: &str) {
        self.plugin_errors
            .add(1, &[kv("plugin", plugin), kv("reason", reason)]);
    }

    pub fn sample_rejected(&self, plugin: &str, reason: &str) {
        self.samples_rejected
            .add(1, &[kv("plugin", plugin), kv("reason", reason)]);
    }

    pub fn plugin_loaded(&self, plugin: &str, version: &str, wit: &str) {
        self.plugin_info.record(
            1,
            &[kv("plugin", plugin), kv("version", version), kv("wit", wit)],
        );
        self.plugin_quarantined(plugin, false);
    }

    pub fn plugin_reload(&self, result: &str) {
        self.plugin_reloads.add(1, &[kv("result", result)]);
    }

    pub fn plugin_quarantined(&self, plugin: &str, quarantined: bool) {
        self.plugin_quarantined
            .record(u64::from(quarantined), &[kv("plugin", plugin)]);
    }
}
