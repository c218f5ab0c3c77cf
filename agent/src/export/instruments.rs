//! One OpenTelemetry instrument per declared plugin metric, and recording of validated samples
//! into them (counter: add, gauge: set, histogram: observe, or replay counted observations),
//! each metric within its series budget. Counters and gauges are kept here, in a
//! [`SeriesStore`] read by observable instruments, so a series that its suite's runs stop
//! writing ages out of the export and of the budget; the SDK keeps a histogram's series.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use opentelemetry::metrics::{Histogram, Meter, MeterProvider};
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_sdk::metrics::SdkMeterProvider;

use crate::catalog::{
    Catalog, HistogramCounts, MetricDecl, MetricKind, PluginDecl, Rejection, Sample, SampleValues,
};

/// One series of a metric: its labels and the suite's, sorted by key.
type LabelSet = Vec<(String, String)>;

/// How many label sets one histogram may have had over the life of the process, as a multiple
/// of its series budget: the SDK cannot forget a histogram's series, so aged ones leave the
/// budget but stay exported, and this bounds what they can add up to.
const HISTOGRAM_LIFETIME_BUDGETS: usize = 4;

enum Instrument {
    /// Kept in the [`SeriesStore`] and observed from it.
    Observed,
    /// With its declared bounds, to replay counted observations.
    Histogram(Histogram<f64>, Vec<f64>),
}

/// Whose runs wrote a series: a suite's derivations by one plugin.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Owner {
    suite: String,
    plugin: String,
}

/// One series: its value (a counter's total or a gauge's last value; unused for a
/// histogram), and the run of its owner that last wrote it.
#[derive(Debug, Clone, Copy)]
struct Series {
    value: f64,
    owner: usize,
    generation: u64,
}

#[derive(Debug)]
struct MetricSeries {
    series: HashMap<LabelSet, Series>,
    /// Label sets that aged out (histograms: still exported by the SDK).
    retired: usize,
}

#[derive(Debug, Default)]
struct Store {
    metrics: HashMap<String, MetricSeries>,
    owners: HashMap<Owner, usize>,
    /// Successful derivations so far of each owner, by its index.
    generations: Vec<u64>,
    /// Metric names that have an observable instrument reading this store.
    observed: HashSet<String>,
}

/// The series of every plugin metric, kept for the life of the agent (across plugin reloads),
/// and how they age: a series its owner (a suite's runs derived by one plugin) did not write
/// in its last `idle_runs` successful derivations is dropped. A counter that comes back starts
/// from 0 again, which `rate()` and `increase()` read as a reset.
#[derive(Debug)]
pub struct SeriesStore {
    store: Mutex<Store>,
    idle_runs: u64,
}

/// One successful derivation whose samples are being recorded: see [`SeriesStore::run`].
#[derive(Debug, Clone, Copy)]
pub struct RunStamp {
    owner: usize,
    generation: u64,
}

impl SeriesStore {
    pub fn new(idle_runs: u64) -> Arc<Self> {
        Arc::new(Self {
            store: Mutex::new(Store::default()),
            idle_runs: idle_runs.max(1),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts recording a successful derivation of `suite`'s run by `plugin`.
    pub fn run(&self, suite: &str, plugin: &str) -> RunStamp {
        let mut store = self.lock();
        let owner = Owner {
            suite: suite.to_owned(),
            plugin: plugin.to_owned(),
        };
        let next = store.owners.len();
        let owner = *store.owners.entry(owner).or_insert(next);
        if owner == store.generations.len() {
            store.generations.push(0);
        }
        store.generations[owner] += 1;
        RunStamp {
            owner,
            generation: store.generations[owner],
        }
    }

    /// Ends the derivation of `stamp`: every series of its owner that none of the owner's last
    /// `idle_runs` derivations wrote ages out. Returns how many did.
    pub fn end_run(&self, stamp: RunStamp) -> usize {
        let Some(oldest_kept) = stamp.generation.checked_sub(self.idle_runs - 1) else {
            return 0;
        };
        let mut aged = 0;
        for metric in self.lock().metrics.values_mut() {
            let before = metric.series.len();
            metric
                .series
                .retain(|_, s| s.owner != stamp.owner || s.generation >= oldest_kept);
            let gone = before - metric.series.len();
            metric.retired += gone;
            aged += gone;
        }
        aged
    }

    /// The series of `metric` now, for its observable instrument.
    fn observe(&self, metric: &str, mut observe: impl FnMut(f64, &[KeyValue])) {
        let store = self.lock();
        let Some(series) = store.metrics.get(metric) else {
            return;
        };
        for (labels, series) in &series.series {
            let attributes: Vec<KeyValue> = labels
                .iter()
                .map(|(k, v)| KeyValue::new(k.clone(), v.clone()))
                .collect();
            observe(series.value, &attributes);
        }
    }

    /// Forgets the metrics no loaded plugin declares any more.
    fn keep_only(&self, declared: &HashSet<&str>) {
        self.lock()
            .metrics
            .retain(|name, _| declared.contains(name.as_str()));
    }

    /// Writes `values` into the series `labels` of `metric` within `budget` series: a counter
    /// adds them, a gauge keeps the last, a histogram only takes the label set (its values go
    /// to the SDK's instrument).
    fn write(
        &self,
        metric: &str,
        kind: MetricKind,
        labels: LabelSet,
        values: &[f64],
        stamp: RunStamp,
        budget: usize,
    ) -> Result<(), Rejection> {
        let mut store = self.lock();
        let entry = store
            .metrics
            .entry(metric.to_owned())
            .or_insert_with(|| MetricSeries {
                series: HashMap::new(),
                retired: 0,
            });
        let full = |entry: &MetricSeries| {
            entry.series.len() >= budget
                || (kind == MetricKind::Histogram
                    && entry.series.len() + entry.retired >= budget * HISTOGRAM_LIFETIME_BUDGETS)
        };
        if !entry.series.contains_key(&labels) && full(entry) {
            return Err(Rejection::Cardinality {
                metric: metric.to_owned(),
                limit: budget,
            });
        }
        let series = entry.series.entry(labels).or_insert(Series {
            value: 0.0,
            owner: stamp.owner,
            generation: stamp.generation,
        });
        series.owner = stamp.owner;
        series.generation = stamp.generation;
        match kind {
            MetricKind::Counter => series.value += values.iter().sum::<f64>(),
            MetricKind::Gauge => {
                if let Some(last) = values.last() {
                    series.value = *last;
                }
            }
            MetricKind::Histogram => {}
        }
        Ok(())
    }
}

/// Instruments for every metric in the catalog, keyed by metric name, recording into the
/// agent's [`SeriesStore`] within each metric's series budget.
pub struct PluginInstruments {
    instruments: BTreeMap<String, (MetricKind, Instrument)>,
    store: Arc<SeriesStore>,
    max_series_per_metric: usize,
}

impl std::fmt::Debug for PluginInstruments {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginInstruments")
            .field("metrics", &self.instruments.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl PluginInstruments {
    /// Creates the instruments; each plugin gets its own meter (its OTLP instrumentation scope).
    /// A counter or gauge gets its observable instrument the first time its name is seen; a
    /// reload reuses it, and its series carry on.
    pub fn new(
        provider: &SdkMeterProvider,
        catalog: &Catalog,
        plugins: &[&PluginDecl],
        max_series_per_metric: usize,
        store: &Arc<SeriesStore>,
    ) -> Self {
        let meters: BTreeMap<&str, Meter> = plugins
            .iter()
            .map(|p| {
                let scope = InstrumentationScope::builder(format!("testmeter.plugin.{}", p.name))
                    .with_version(p.version.clone())
                    .build();
                (p.name.as_str(), provider.meter_with_scope(scope))
            })
            .collect();
        let mut instruments = BTreeMap::new();
        let mut declared = HashSet::new();
        for (owner, decl) in catalog.metrics() {
            let Some(meter) = meters.get(owner) else {
                continue;
            };
            declared.insert(decl.name.as_str());
            let instrument = match decl.kind {
                MetricKind::Histogram => Instrument::Histogram(
                    meter
                        .f64_histogram(decl.name.clone())
                        .with_unit(decl.unit.clone())
                        .with_description(decl.description.clone())
                        .with_boundaries(decl.buckets.clone())
                        .build(),
                    decl.buckets.clone(),
                ),
                MetricKind::Counter | MetricKind::Gauge => {
                    if store.lock().observed.insert(decl.name.clone()) {
                        observed(meter, decl, Arc::clone(store));
                    }
                    Instrument::Observed
                }
            };
            instruments.insert(decl.name.clone(), (decl.kind, instrument));
        }
        store.keep_only(&declared);
        Self {
            instruments,
            store: Arc::clone(store),
            max_series_per_metric,
        }
    }

    /// Records one sample that the catalog accepted, with the suite's extra labels, as part of
    /// the derivation `stamp`, unless it would start a series past the metric's budget.
    pub fn record(
        &self,
        sample: &Sample,
        extra_labels: &[KeyValue],
        stamp: RunStamp,
    ) -> Result<(), Rejection> {
        let Some((kind, instrument)) = self.instruments.get(&sample.metric) else {
            return Ok(());
        };
        let mut labels: LabelSet = sample.labels.clone();
        // A suite's configured labels never override what the plugin declared and set.
        labels.extend(
            extra_labels
                .iter()
                .filter(|extra| !sample.labels.iter().any(|(k, _)| k == extra.key.as_str()))
                .map(|extra| (extra.key.to_string(), extra.value.to_string())),
        );
        labels.sort();
        let values = match &sample.values {
            SampleValues::Values(values) => values.as_slice(),
            SampleValues::Histogram(_) => &[],
        };
        let Instrument::Histogram(histogram, bounds) = instrument else {
            return self.store.write(
                &sample.metric,
                *kind,
                labels,
                values,
                stamp,
                self.max_series_per_metric,
            );
        };
        self.store.write(
            &sample.metric,
            *kind,
            labels.clone(),
            &[],
            stamp,
            self.max_series_per_metric,
        )?;
        let attributes: Vec<KeyValue> = labels
            .into_iter()
            .map(|(k, v)| KeyValue::new(k, v))
            .collect();
        match &sample.values {
            SampleValues::Histogram(counts) if counts.count() > 0 => {
                let bound = histogram.bind(&attributes);
                replay(counts, bounds, |value| bound.record(value));
            }
            SampleValues::Histogram(_) => {}
            // Binding would make a series that was never recorded.
            SampleValues::Values(values) => match values.as_slice() {
                [] => {}
                [value] => histogram.record(*value, &attributes),
                // Many values of one series (a histogram's observations over 100k cases):
                // bound once, each value is recorded without looking its attributes up again.
                values => {
                    let bound = histogram.bind(&attributes);
                    values.iter().for_each(|&value| bound.record(value));
                }
            },
        }
        Ok(())
    }
}

/// Registers the observable counter or gauge of `decl`, reading its series from `store` at
/// each collection: a series that aged out of the store is no longer exported.
fn observed(meter: &Meter, decl: &MetricDecl, store: Arc<SeriesStore>) {
    let name = decl.name.clone();
    match decl.kind {
        MetricKind::Counter => {
            let _counter = meter
                .f64_observable_counter(decl.name.clone())
                .with_unit(decl.unit.clone())
                .with_description(decl.description.clone())
                .with_callback(move |observer| {
                    store.observe(&name, |value, labels| observer.observe(value, labels));
                })
                .build();
        }
        MetricKind::Gauge | MetricKind::Histogram => {
            let _gauge = meter
                .f64_observable_gauge(decl.name.clone())
                .with_unit(decl.unit.clone())
                .with_description(decl.description.clone())
                .with_callback(move |observer| {
                    store.observe(&name, |value, labels| observer.observe(value, labels));
                })
                .build();
        }
    }
}

/// Observations that give exactly `counts` over `bounds`: the SDK's histogram only takes
/// observations, so counted ones are replayed as a set with the same bucket counts, count,
/// min and max, and the same sum (to floating-point rounding). Min and max are observed as
/// they are; the others are placed in their buckets at one common fraction of each bucket's
/// range (clamped to [min, max]) chosen so that everything adds up to the sum. The catalog
/// checked that such a set exists.
fn replay(counts: &HistogramCounts, bounds: &[f64], mut observe: impl FnMut(f64)) {
    let total = counts.count();
    if total == 0 {
        return;
    }
    if total == 1 {
        observe(counts.sum);
        return;
    }
    let bucket_of = |value: f64| {
        bounds
            .iter()
            .position(|&bound| value <= bound)
            .unwrap_or(bounds.len())
    };
    let mut rest = counts.bucket_counts.clone();
    for value in [counts.min, counts.max] {
        let bucket = bucket_of(value);
        rest[bucket] = rest[bucket].saturating_sub(1);
        observe(value);
    }
    // Each remaining observation of bucket i lies in [low_i, high_i].
    let ranges: Vec<(u64, f64, f64)> = rest
        .iter()
        .enumerate()
        .filter(|(_, count)| **count > 0)
        .map(|(bucket, &count)| {
            let low = if bucket == 0 {
                counts.min
            } else {
                bounds[bucket - 1].next_up().max(counts.min)
            };
            let high = bounds
                .get(bucket)
                .copied()
                .unwrap_or(f64::INFINITY)
                .min(counts.max);
            (count, low, high.max(low))
        })
        .collect();
    let least: f64 = ranges.iter().map(|(n, low, _)| *n as f64 * low).sum();
    let most: f64 = ranges.iter().map(|(n, _, high)| *n as f64 * high).sum();
    let wanted = counts.sum - counts.min - counts.max;
    let share = if most > least {
        ((wanted - least) / (most - least)).clamp(0.0, 1.0)
    } else {
        0.0
    };
    for (count, low, high) in ranges {
        let value = low + share * (high - low);
        for _ in 0..count {
            observe(value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decl(name: &str, kind: MetricKind) -> MetricDecl {
        MetricDecl {
            name: name.to_owned(),
            kind,
            unit: String::new(),
            description: "d".to_owned(),
            label_keys: vec!["category".to_owned()],
            buckets: if kind == MetricKind::Histogram {
                vec![1.0, 10.0]
            } else {
                vec![]
            },
        }
    }

    fn sample(metric: &str, category: &str, value: f64) -> Sample {
        Sample {
            metric: metric.to_owned(),
            labels: vec![("category".to_owned(), category.to_owned())],
            values: SampleValues::Values(vec![value]),
        }
    }

    /// One run with 5,000 junk categories fills each metric's budget of 100; real categories
    /// are refused only until the junk ages out, three good runs later, and the junk leaves
    /// the exposition with it (a histogram's stays exported; the SDK keeps it).
    #[test]
    fn a_junk_run_cannot_lock_a_metric_for_good() {
        let telemetry =
            crate::export::Telemetry::init(None, &crate::config::TracesConfig::default())
                .expect("telemetry");
        let plugin = PluginDecl {
            name: "p".to_owned(),
            version: "1".to_owned(),
            systems: vec![],
            metrics: vec![
                decl("p_tasks", MetricKind::Counter),
                decl("p_rate", MetricKind::Gauge),
                decl("p_seconds", MetricKind::Histogram),
            ],
            slos: vec![],
        };
        let mut catalog = Catalog::default();
        assert!(catalog.register_all(&[&plugin]).is_empty());
        let store = SeriesStore::new(3);
        let instruments =
            PluginInstruments::new(&telemetry.provider, &catalog, &[&plugin], 100, &store);
        let metrics = ["p_tasks", "p_rate", "p_seconds"];
        let run = |categories: &[String]| {
            let stamp = store.run("s", "p");
            let refused = categories
                .iter()
                .flat_map(|c| metrics.map(|m| instruments.record(&sample(m, c, 2.0), &[], stamp)))
                .filter(Result::is_err)
                .count();
            (refused, store.end_run(stamp))
        };
        let junk: Vec<String> = (0..5_000).map(|i| format!("junk-{i}")).collect();
        let real: Vec<String> = ["chrome", "os"].map(str::to_owned).to_vec();
        let exposed = |prefix: &str| {
            crate::export::prometheus::exposition(&telemetry.registry)
                .map(|body| String::from_utf8_lossy(&body).into_owned())
                .unwrap_or_default()
                .lines()
                .filter(|l| l.starts_with(prefix))
                .count()
        };
        assert_eq!(run(&junk), (3 * 4_900, 0), "the budget holds 100 of each");
        assert_eq!(exposed("p_tasks{"), 100);
        // Refused while the junk is fresh; the third good run ages it out.
        assert_eq!(run(&real), (6, 0));
        assert_eq!(run(&real), (6, 0));
        assert_eq!(run(&real), (6, 300));
        assert_eq!(run(&real), (0, 0), "real categories are admitted");
        assert_eq!(exposed("p_tasks{"), 2);
        assert_eq!(exposed("p_rate{"), 2);
        assert_eq!(
            exposed("p_seconds_count{"),
            102,
            "aged histogram series stay exported"
        );
        let tasks = crate::export::prometheus::exposition(&telemetry.registry)
            .map(|body| String::from_utf8_lossy(&body).into_owned())
            .unwrap_or_default();
        assert!(
            tasks.lines().any(|l| l == "p_tasks{category=\"chrome\"} 2"),
            "a counter counts from its first admitted run: {tasks}"
        );
    }

    /// The replayed observations give back the counts, min, max and sum they were replayed from.
    #[test]
    fn replayed_observations_give_back_the_counts() {
        let bounds = [1.0, 2.0, 5.0];
        let observations = [0.2, 0.9, 1.5, 1.5, 1.99, 2.5, 4.0, 7.0, 30.0];
        let mut counts = HistogramCounts {
            bucket_counts: vec![0; 4],
            sum: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
        };
        for &value in &observations {
            let bucket = bounds
                .iter()
                .position(|&b| value <= b)
                .unwrap_or(bounds.len());
            counts.bucket_counts[bucket] += 1;
            counts.sum += value;
            counts.min = counts.min.min(value);
            counts.max = counts.max.max(value);
        }
        let mut replayed = Vec::new();
        replay(&counts, &bounds, |value| replayed.push(value));
        let mut again = vec![0u64; 4];
        for &value in &replayed {
            again[bounds
                .iter()
                .position(|&b| value <= b)
                .unwrap_or(bounds.len())] += 1;
        }
        assert_eq!(again, counts.bucket_counts);
        assert_eq!(replayed.len(), observations.len());
        let sum: f64 = replayed.iter().sum();
        assert!((sum - counts.sum).abs() < 1e-9, "{sum} vs {}", counts.sum);
        assert_eq!(replayed.iter().copied().fold(f64::INFINITY, f64::min), 0.2);
        assert_eq!(
            replayed.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            30.0
        );
    }
}
