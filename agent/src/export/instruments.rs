//! One OpenTelemetry instrument per declared plugin metric, and recording of validated samples
//! into them (counter: add, gauge: set, histogram: observe, or replay counted observations).

use std::collections::{BTreeMap, HashSet};
use std::sync::Mutex;

use opentelemetry::metrics::{Counter, Gauge, Histogram, Meter, MeterProvider};
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_sdk::metrics::SdkMeterProvider;

use crate::catalog::{
    Catalog, HistogramCounts, MetricDecl, MetricKind, PluginDecl, Rejection, Sample, SampleValues,
};

/// A sample's labels, sorted by key: one series of a metric.
type LabelSet = Vec<(String, String)>;

enum Instrument {
    Counter(Counter<f64>),
    Gauge(Gauge<f64>),
    /// With its declared bounds, to replay counted observations.
    Histogram(Histogram<f64>, Vec<f64>),
}

/// Instruments for every metric in the catalog, keyed by metric name, and the label sets each
/// has seen, so one metric cannot grow past its series budget.
pub struct PluginInstruments {
    instruments: BTreeMap<String, Instrument>,
    series: Mutex<BTreeMap<String, HashSet<LabelSet>>>,
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
    pub fn new(
        provider: &SdkMeterProvider,
        catalog: &Catalog,
        plugins: &[&PluginDecl],
        max_series_per_metric: usize,
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
        for (owner, decl) in catalog.metrics() {
            if let Some(meter) = meters.get(owner) {
                instruments.insert(decl.name.clone(), instrument(meter, decl));
            }
        }
        Self {
            instruments,
            series: Mutex::new(BTreeMap::new()),
            max_series_per_metric,
        }
    }

    /// Admits the sample's label set against the metric's series budget.
    fn admit(&self, sample: &Sample) -> Result<(), Rejection> {
        let mut labels = sample.labels.clone();
        labels.sort();
        let mut series = self
            .series
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let known = series.entry(sample.metric.clone()).or_default();
        if known.contains(&labels) {
            return Ok(());
        }
        if known.len() >= self.max_series_per_metric {
            return Err(Rejection::Cardinality {
                metric: sample.metric.clone(),
                limit: self.max_series_per_metric,
            });
        }
        known.insert(labels);
        Ok(())
    }

    /// Records one sample that the catalog accepted, with the suite's extra labels, unless it
    /// would start a series past the metric's budget.
    pub fn record(&self, sample: &Sample, extra_labels: &[KeyValue]) -> Result<(), Rejection> {
        let Some(instrument) = self.instruments.get(&sample.metric) else {
            return Ok(());
        };
        self.admit(sample)?;
        let mut attributes: Vec<KeyValue> = sample
            .labels
            .iter()
            .map(|(k, v)| KeyValue::new(k.clone(), v.clone()))
            .collect();
        // A suite's configured labels never override what the plugin declared and set.
        attributes.extend(
            extra_labels
                .iter()
                .filter(|extra| !sample.labels.iter().any(|(k, _)| k == extra.key.as_str()))
                .cloned(),
        );
        let values = match &sample.values {
            SampleValues::Values(values) => values.as_slice(),
            SampleValues::Histogram(counts) => {
                if let (Instrument::Histogram(histogram, bounds), true) =
                    (instrument, counts.count() > 0)
                {
                    let bound = histogram.bind(&attributes);
                    replay(counts, bounds, |value| bound.record(value));
                }
                return Ok(());
            }
        };
        match (instrument, values) {
            // Binding would make a series that was never recorded.
            (_, []) => {}
            (Instrument::Counter(counter), [value]) => counter.add(*value, &attributes),
            (Instrument::Gauge(gauge), [value]) => gauge.record(*value, &attributes),
            (Instrument::Histogram(histogram, _), [value]) => histogram.record(*value, &attributes),
            // Many values of one series (a histogram's observations over 100k cases): bound
            // once, each value is recorded without looking its attributes up again, which
            // was most of the cost of recording them.
            (Instrument::Counter(counter), values) => {
                let bound = counter.bind(&attributes);
                values.iter().for_each(|&value| bound.add(value));
            }
            (Instrument::Gauge(gauge), values) => {
                let bound = gauge.bind(&attributes);
                values.iter().for_each(|&value| bound.record(value));
            }
            (Instrument::Histogram(histogram, _), values) => {
                let bound = histogram.bind(&attributes);
                values.iter().for_each(|&value| bound.record(value));
            }
        }
        Ok(())
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

fn instrument(meter: &Meter, decl: &MetricDecl) -> Instrument {
    let name = decl.name.clone();
    let unit = decl.unit.clone();
    let description = decl.description.clone();
    match decl.kind {
        MetricKind::Counter => Instrument::Counter(
            meter
                .f64_counter(name)
                .with_unit(unit)
                .with_description(description)
                .build(),
        ),
        MetricKind::Gauge => Instrument::Gauge(
            meter
                .f64_gauge(name)
                .with_unit(unit)
                .with_description(description)
                .build(),
        ),
        MetricKind::Histogram => Instrument::Histogram(
            meter
                .f64_histogram(name)
                .with_unit(unit)
                .with_description(description)
                .with_boundaries(decl.buckets.clone())
                .build(),
            decl.buckets.clone(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
