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

/// Values a plugin emitted for one label set of a declared metric, applied in order: counter
/// increments, gauge values (the last wins) or histogram observations.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub metric: String,
    pub labels: Vec<(String, String)>,
    pub values: Vec<f64>,
}
