//! Telemetry sinks: one `SdkMeterProvider` whose readers are the sinks (the Prometheus registry
//! behind `/metrics`, a periodic OTLP push), the spans of runs (OTLP traces), the instruments
//! plugins' samples are recorded into, and the agent's own metrics.

pub mod health;
pub mod instruments;
pub mod openmetrics;
pub mod otlp;
pub mod prometheus;
pub mod self_metrics;
pub mod sink;
pub mod telemetry;
pub mod traces;

pub use instruments::{PluginInstruments, RunStamp, SeriesStore};
pub use openmetrics::{Exemplars, OpenMetrics};
pub use self_metrics::SelfMetrics;
pub use sink::Sink;
pub use telemetry::{ExportError, Telemetry};
pub use traces::Spans;
