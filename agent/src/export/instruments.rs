//! One OpenTelemetry instrument per declared plugin metric, and recording of validated samples
//! into them (counter: add, gauge: set, histogram: observe).

use std::collections::{BTreeMap, HashSet};
use std::sync::Mutex;

use opentelemetry::metrics::{Counter, Gauge, Histogram, Meter, MeterProvider};
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_sdk::metrics::SdkMeterProvider;

use crate::catalog::{Catalog, MetricDecl, MetricKind, PluginDecl, Rejection, Sample};

/// A sample's labels, sorted by key: one series of a metric.
type LabelSet = Vec<(String, String)>;

enum Instrument {
    Counter(Counter<f64>),
    Gauge(Gauge<f64>),
    Histogram(Histogram<f64>),
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
        match (instrument, sample.values.as_slice()) {
            // Binding would make a series that was never recorded.
            (_, []) => {}
            (Instrument::Counter(counter), [value]) => counter.add(*value, &attributes),
            (Instrument::Gauge(gauge), [value]) => gauge.record(*value, &attributes),
            (Instrument::Histogram(histogram), [value]) => histogram.record(*value, &attributes),
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
            (Instrument::Histogram(histogram), values) => {
                let bound = histogram.bind(&attributes);
                values.iter().for_each(|&value| bound.record(value));
            }
        }
        Ok(())
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
        ),
    }
}
