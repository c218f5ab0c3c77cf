//! The guest side of `testmeter:plugin`: the generated bindings of the WIT world (one
//! `generate!` for every plugin), the `export_plugin!` macro, and the helpers each plugin
//! would otherwise write again: building samples, declaring metrics and SLOs, reading case
//! properties.
//!
//! A plugin implements [`Guest`] and calls `testmeter_plugin_sdk::export_plugin!(MyPlugin);`.

/// The generated bindings of the `metrics-plugin` world.
pub mod bindings {
    wit_bindgen::generate!({
        path: "../../wit/plugin.wit",
        world: "metrics-plugin",
        pub_export_macro: true,
        export_macro_name: "export_plugin",
        default_bindings_module: "testmeter_plugin_sdk::bindings",
    });
}

pub use bindings::testmeter::plugin::host::{log, LogLevel};
pub use bindings::testmeter::plugin::types::{
    Artifact, Metric, MetricKind, Outcome, Slo, TestCase,
};
pub use bindings::{export_plugin, Guest, PluginInfo, Sample, SuiteRun};

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};

/// Samples under construction. Every value pushed for one metric and label set goes into one
/// sample, so a histogram observed once per case is one sample per label set, not one per case.
#[derive(Debug, Default)]
pub struct Samples {
    samples: Vec<Sample>,
    /// Hash of (metric, labels) to the indexes of the samples with that hash.
    series: HashMap<u64, Vec<usize>>,
}

fn series_hash(metric: &str, labels: &[(&str, &str)]) -> u64 {
    let mut hasher = DefaultHasher::new();
    metric.hash(&mut hasher);
    labels.hash(&mut hasher);
    hasher.finish()
}

impl Samples {
    /// Adds one value: an increment of a counter, the new value of a gauge, or one observation
    /// of a histogram.
    pub fn push(&mut self, metric: &str, labels: &[(&str, &str)], value: f64) {
        let candidates = self.series.entry(series_hash(metric, labels)).or_default();
        let same = |sample: &Sample| {
            sample.metric == metric
                && sample.labels.len() == labels.len()
                && sample
                    .labels
                    .iter()
                    .zip(labels)
                    .all(|((k, v), (lk, lv))| k == lk && v == lv)
        };
        if let Some(&index) = candidates.iter().find(|&&i| same(&self.samples[i])) {
            self.samples[index].values.push(value);
            return;
        }
        candidates.push(self.samples.len());
        self.samples.push(Sample {
            metric: metric.to_owned(),
            labels: labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            values: vec![value],
        });
    }

    pub fn into_vec(self) -> Vec<Sample> {
        self.samples
    }
}

/// A metric declaration.
pub fn metric(
    name: &str,
    kind: MetricKind,
    unit: &str,
    description: &str,
    labels: &[&str],
    buckets: &[f64],
) -> Metric {
    Metric {
        name: name.to_owned(),
        kind,
        unit: unit.to_owned(),
        description: description.to_owned(),
        label_keys: labels.iter().map(|l| (*l).to_owned()).collect(),
        buckets: buckets.to_vec(),
    }
}

/// An SLO declaration: a PromQL alert expression and how long it must hold.
pub fn slo(name: &str, expr: &str, for_seconds: u32, severity: &str, summary: &str) -> Slo {
    Slo {
        name: name.to_owned(),
        expr: expr.to_owned(),
        for_seconds,
        severity: severity.to_owned(),
        summary: summary.to_owned(),
    }
}

/// A case property (`record_property` in pytest, `<property>` in JUnit).
pub fn property<'a>(case: &'a TestCase, key: &str) -> Option<&'a str> {
    case.properties
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// `100 × part / whole`, or `None` for an empty whole.
pub fn percent(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| 100.0 * part as f64 / whole as f64)
}

/// Passed and total counts.
#[derive(Debug, Default, Clone, Copy)]
pub struct Tally {
    pub passed: u64,
    pub total: u64,
}

impl Tally {
    pub fn count(&mut self, passed: bool) {
        self.total += 1;
        self.passed += u64::from(passed);
    }
}

/// Outcome counts of a set of cases; each case is one test however often it was retried.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Outcomes {
    pub passed: u64,
    pub failed: u64,
    pub errored: u64,
    pub skipped: u64,
}

impl Outcomes {
    pub fn add(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Passed => self.passed += 1,
            Outcome::Failed => self.failed += 1,
            Outcome::Errored => self.errored += 1,
            Outcome::Skipped => self.skipped += 1,
        }
    }

    pub fn of<'a>(cases: impl IntoIterator<Item = &'a TestCase>) -> Self {
        let mut outcomes = Outcomes::default();
        for case in cases {
            outcomes.add(case.outcome);
        }
        outcomes
    }

    pub fn total(&self) -> u64 {
        self.passed + self.failed + self.errored + self.skipped
    }
}
