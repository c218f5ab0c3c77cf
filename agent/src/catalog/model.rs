//! Host-side declarations: what a plugin says it exports, and the samples it emits.

/// How samples of a metric are interpreted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum MetricKind {
    /// Each sample is a non-negative increment.
    Counter,
    /// Each sample sets the current value.
    Gauge,
    /// Each sample is one observation.
    Histogram,
}

impl MetricKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MetricKind::Counter => "counter",
            MetricKind::Gauge => "gauge",
            MetricKind::Histogram => "histogram",
        }
    }
}

/// One declared metric.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricDecl {
    pub name: String,
    pub kind: MetricKind,
    pub unit: String,
    pub description: String,
    pub label_keys: Vec<String>,
    pub buckets: Vec<f64>,
}

/// One declared SLO, as a PromQL alert condition.
#[derive(Debug, Clone, PartialEq)]
pub struct SloDecl {
    pub name: String,
    pub expr: String,
    pub for_seconds: u32,
    pub severity: String,
    pub summary: String,
}

/// What a plugin's `describe()` returned.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginDecl {
    pub name: String,
    pub version: String,
    pub systems: Vec<String>,
    pub metrics: Vec<MetricDecl>,
    pub slos: Vec<SloDecl>,
}

/// What a plugin emitted for one label set of a declared metric.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub metric: String,
    pub labels: Vec<(String, String)>,
    pub values: SampleValues,
}

/// A sample's values: one by one, or a histogram's already counted.
#[derive(Debug, Clone, PartialEq)]
pub enum SampleValues {
    /// Applied in order: counter increments, gauge values (the last wins) or histogram
    /// observations.
    Values(Vec<f64>),
    /// A histogram's observations counted over the metric's declared buckets.
    Histogram(HistogramCounts),
}

impl SampleValues {
    /// How many values or observations the sample stands for.
    pub fn observations(&self) -> u64 {
        match self {
            SampleValues::Values(values) => values.len() as u64,
            SampleValues::Histogram(counts) => counts.count(),
        }
    }

    /// How many numbers it carries: what counts against the output limit (a counted histogram
    /// carries its buckets, however many observations they hold).
    pub fn carried(&self) -> usize {
        match self {
            SampleValues::Values(values) => values.len(),
            SampleValues::Histogram(counts) => counts.bucket_counts.len() + 3,
        }
    }
}

/// A histogram's observations counted over its declared bounds: `bucket_counts[i]` holds the
/// observations in (bound i-1, bound i], the last entry those above the last bound.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramCounts {
    pub bucket_counts: Vec<u64>,
    pub sum: f64,
    pub min: f64,
    pub max: f64,
}

impl HistogramCounts {
    /// Observations in all buckets.
    pub fn count(&self) -> u64 {
        self.bucket_counts
            .iter()
            .fold(0u64, |total, count| total.saturating_add(*count))
    }
}
