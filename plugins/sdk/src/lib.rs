//! The guest side of `testmeter:plugin`: the generated bindings of the WIT world (one
//! `generate!` for every plugin), the [`Plugin`] trait and `export!` macro that turn a
//! plugin's per-run state into the WIT `derivation` resource, [`Case`], which reads a case of
//! a columnar batch as if it were a record, and the helpers each plugin would otherwise write
//! again: building samples, declaring metrics and SLOs, and reading captured output once
//! (`output`).
//!
//! A plugin implements [`Plugin`] on the state it keeps while a run's cases stream past, and
//! calls `testmeter_plugin_sdk::export!(MyPlugin);`.

/// The generated bindings of the `metrics-plugin` world.
pub mod bindings {
    wit_bindgen::generate!({
        // The repository's `wit/plugin.wit`, linked into the crate so it travels in the
        // package (`cargo package` copies a link's file).
        path: "wit/plugin.wit",
        world: "metrics-plugin",
        pub_export_macro: true,
        export_macro_name: "export_plugin",
        default_bindings_module: "testmeter_plugin_sdk::bindings",
    });
}

pub use bindings::testmeter::plugin::host::{log, LogLevel};
pub use bindings::testmeter::plugin::types::{
    Artifact, CaseBatch, CaseFields, HistogramCounts, Metric, MetricKind, Outcome, PluginInfo,
    RunEnd, RunStart, Sample, SampleValues, Slo,
};

use bindings::testmeter::plugin::types::{Span, TestCase};

mod output;
pub use output::{Output, Source};

use std::cell::RefCell;
use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};

use bindings::exports::testmeter::plugin::derive::GuestDerivation;

/// A plugin, implemented on the state of one run's derivation.
///
/// The agent calls [`Plugin::describe`] once when it loads the plugin. For every run of a
/// system the plugin declares, it calls [`Plugin::start`], then [`Plugin::case`] for each test
/// case in report order as the report is read, then [`Plugin::finish`] once. Keep what the
/// samples need (counts, observations), not the cases: the run is never held whole, so a
/// plugin's memory stays as small as its state.
pub trait Plugin: Sized + 'static {
    /// The plugin's name, version, systems, metrics, SLOs and the case fields it reads.
    fn describe() -> PluginInfo;

    /// A run begins: what the agent knows before its report is read.
    fn start(run: RunStart) -> Self;

    /// The next test case. An `Err` fails this run's derivation; nothing more is called.
    fn case(&mut self, case: Case<'_>) -> Result<(), String>;

    /// Every case has been seen: the samples of the run.
    fn finish(self, end: RunEnd) -> Result<Vec<Sample>, String>;
}

/// The WIT `derivation` resource over a [`Plugin`]'s state. Used by [`export!`].
#[doc(hidden)]
pub struct Derivation<P>(RefCell<Option<P>>);

impl<P: Plugin> GuestDerivation for Derivation<P> {
    fn new(run: RunStart) -> Self {
        Derivation(RefCell::new(Some(P::start(run))))
    }

    fn feed(&self, batch: CaseBatch) -> Result<(), String> {
        let mut state = self.0.borrow_mut();
        let state = state
            .as_mut()
            .ok_or_else(|| "cases fed to a finished derivation".to_owned())?;
        for case in cases(&batch) {
            state.case(case)?;
        }
        Ok(())
    }

    fn finish(&self, end: RunEnd) -> Result<Vec<Sample>, String> {
        let state = self
            .0
            .borrow_mut()
            .take()
            .ok_or_else(|| "derivation finished twice".to_owned())?;
        state.finish(end)
    }
}

/// Exports a [`Plugin`] as the component's `describe` and `derive` exports:
/// `testmeter_plugin_sdk::export!(MyPlugin);`.
#[macro_export]
macro_rules! export {
    ($plugin:ty) => {
        struct __TestmeterPluginExports;

        impl $crate::bindings::Guest for __TestmeterPluginExports {
            fn describe() -> $crate::PluginInfo {
                <$plugin as $crate::Plugin>::describe()
            }
        }

        impl $crate::bindings::exports::testmeter::plugin::derive::Guest
            for __TestmeterPluginExports
        {
            type Derivation = $crate::Derivation<$plugin>;
        }

        $crate::bindings::export_plugin!(__TestmeterPluginExports);
    };
}

/// Every case of a batch, in report order.
pub fn cases(batch: &CaseBatch) -> impl Iterator<Item = Case<'_>> {
    batch.cases.iter().map(move |raw| Case { batch, raw })
}

/// One test case of a batch, read through its batch: every string borrows the batch's text.
#[derive(Clone, Copy)]
pub struct Case<'b> {
    batch: &'b CaseBatch,
    raw: &'b TestCase,
}

impl std::fmt::Debug for Case<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Case")
            .field("classname", &self.classname())
            .field("name", &self.name())
            .field("outcome", &self.outcome())
            .finish_non_exhaustive()
    }
}

impl<'b> Case<'b> {
    /// The text of a span; an out-of-bounds span (which the agent never sends) reads as "".
    fn text(&self, span: Span) -> &'b str {
        let start = span.start as usize;
        let end = start.saturating_add(span.length as usize);
        self.batch.text.get(start..end).unwrap_or("")
    }

    /// Name of the `<testsuite>` the case belongs to.
    pub fn suite(&self) -> &'b str {
        self.text(self.raw.suite)
    }

    pub fn classname(&self) -> &'b str {
        self.text(self.raw.classname)
    }

    pub fn name(&self) -> &'b str {
        self.text(self.raw.name)
    }

    /// The final outcome, after retries.
    pub fn outcome(&self) -> Outcome {
        self.raw.outcome
    }

    /// Duration of the final attempt, in seconds; `None` when the report gave the case no
    /// time (leave it out of a duration histogram rather than observing 0).
    pub fn duration_seconds(&self) -> Option<f64> {
        self.raw.duration_seconds
    }

    /// How many times the case ran: 1 unless the runner retried it.
    pub fn attempts(&self) -> u32 {
        self.raw.attempts
    }

    /// True when an earlier attempt failed and a later one passed.
    pub fn flaky(&self) -> bool {
        self.raw.flaky
    }

    /// The failure, error or skip message (with `reads: CaseFields::MESSAGE`).
    pub fn message(&self) -> Option<&'b str> {
        self.raw.message.map(|span| self.text(span))
    }

    /// The case's properties in report order (with `reads: CaseFields::PROPERTIES`).
    pub fn properties(&self) -> impl Iterator<Item = (&'b str, &'b str)> + 'b {
        let case = *self;
        let first = self.raw.first_property as usize;
        let count = self.raw.property_count as usize;
        self.batch
            .properties
            .get(first..first.saturating_add(count))
            .unwrap_or(&[])
            .iter()
            .map(move |p| (case.text(p.name), case.text(p.value)))
    }

    /// The first property named `key` (`record_property` in pytest, `<property>` in JUnit).
    pub fn property(&self, key: &str) -> Option<&'b str> {
        self.properties().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    /// Captured standard output (with `reads: CaseFields::SYSTEM_OUT`).
    pub fn system_out(&self) -> Option<&'b str> {
        self.raw.system_out.map(|span| self.text(span))
    }

    /// Captured standard error (with `reads: CaseFields::SYSTEM_ERR`).
    pub fn system_err(&self) -> Option<&'b str> {
        self.raw.system_err.map(|span| self.text(span))
    }

    /// The captured output split by where it came from (pytest's captured log, stdout,
    /// stderr). A plugin that counts logged operations reads them with
    /// [`Output::read_once`], so a record that the project's logging copied to several
    /// places counts once.
    pub fn output(&self) -> Output<'b> {
        Output::new(self.system_out(), self.system_err())
    }
}

/// Samples under construction. Every value pushed for one metric and label set goes into one
/// sample. Made with [`Samples::declared`], the observations of a declared histogram are
/// counted over its buckets as they are pushed, so the sample stays the same size however many
/// cases a run has (and the plugin keeps no list of them).
#[derive(Debug, Default)]
pub struct Samples {
    samples: Vec<Sample>,
    /// Hash of (metric, labels) to the indexes of the samples with that hash.
    series: HashMap<u64, Vec<usize>>,
    /// Each counted histogram metric's index in `bounds`.
    histograms: HashMap<String, usize>,
    /// The declared bounds of each counted histogram metric.
    bounds: Vec<Vec<f64>>,
    /// For each sample, its metric's index in `bounds` when its observations are counted: the
    /// bounds of an observation are found without looking the metric up again.
    sample_bounds: Vec<Option<usize>>,
}

fn series_hash(metric: &str, labels: &[(&str, &str)]) -> u64 {
    let mut hasher = DefaultHasher::new();
    metric.hash(&mut hasher);
    labels.hash(&mut hasher);
    hasher.finish()
}

impl Samples {
    /// Samples that count the observations of the histograms `info` declares.
    pub fn declared(info: &PluginInfo) -> Self {
        let counted: Vec<&Metric> = info
            .metrics
            .iter()
            .filter(|m| m.kind == MetricKind::Histogram)
            .collect();
        Samples {
            histograms: counted
                .iter()
                .enumerate()
                .map(|(index, m)| (m.name.clone(), index))
                .collect(),
            bounds: counted.iter().map(|m| m.buckets.clone()).collect(),
            ..Samples::default()
        }
    }

    /// Adds one value: an increment of a counter, the new value of a gauge, or one observation
    /// of a histogram (counted into its bucket when the histogram is declared).
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
        let index = match candidates.iter().find(|&&i| same(&self.samples[i])) {
            Some(&index) => index,
            None => {
                candidates.push(self.samples.len());
                let counted = self.histograms.get(metric).copied();
                self.sample_bounds.push(counted);
                let values = match counted {
                    Some(bounds) => SampleValues::Histogram(HistogramCounts {
                        bucket_counts: vec![0; self.bounds[bounds].len() + 1],
                        sum: 0.0,
                        min: f64::INFINITY,
                        max: f64::NEG_INFINITY,
                    }),
                    None => SampleValues::Values(Vec::new()),
                };
                self.samples.push(Sample {
                    metric: metric.to_owned(),
                    labels: labels
                        .iter()
                        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                        .collect(),
                    values,
                });
                self.samples.len() - 1
            }
        };
        match &mut self.samples[index].values {
            SampleValues::Values(values) => values.push(value),
            SampleValues::Histogram(counts) => {
                let bounds = self.sample_bounds[index].map_or(&[][..], |b| &self.bounds[b][..]);
                // The first bucket whose bound is at least the value; the last holds the rest.
                let bucket = bounds.partition_point(|bound| *bound < value);
                if let Some(count) = counts.bucket_counts.get_mut(bucket) {
                    *count += 1;
                }
                counts.sum += value;
                counts.min = counts.min.min(value);
                counts.max = counts.max.max(value);
            }
        }
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

    pub fn total(&self) -> u64 {
        self.passed + self.failed + self.errored + self.skipped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> PluginInfo {
        PluginInfo {
            name: "p".to_owned(),
            version: "1".to_owned(),
            systems: vec![],
            metrics: vec![
                metric("h", MetricKind::Histogram, "s", "", &[], &[1.0, 2.0]),
                metric("g", MetricKind::Gauge, "1", "", &[], &[]),
            ],
            slos: vec![],
            reads: CaseFields::empty(),
        }
    }

    #[test]
    fn declared_histograms_are_counted_and_the_rest_listed() {
        let mut out = Samples::declared(&info());
        for value in [0.5, 1.0, 1.5, 7.0] {
            out.push("h", &[], value);
        }
        out.push("g", &[], 3.0);
        out.push("g", &[], 4.0);
        let samples = out.into_vec();
        match &samples[0].values {
            SampleValues::Histogram(counts) => {
                assert_eq!(counts.bucket_counts, [2, 1, 1]);
                assert_eq!((counts.sum, counts.min, counts.max), (10.0, 0.5, 7.0));
            }
            other => panic!("h is counted: {other:?}"),
        }
        match &samples[1].values {
            SampleValues::Values(values) => assert_eq!(values, &[3.0, 4.0]),
            other => panic!("g is listed: {other:?}"),
        }
        // Without declarations, a histogram's observations are listed as in 0.3.0.
        let mut listed = Samples::default();
        listed.push("h", &[], 0.5);
        match &listed.into_vec()[0].values {
            SampleValues::Values(values) => assert_eq!(values, &[0.5]),
            other => panic!("listed: {other:?}"),
        }
    }
}
