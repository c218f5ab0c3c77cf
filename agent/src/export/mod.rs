//! Metric export: one `SdkMeterProvider` with two readers, a periodic OTLP push and the
//! Prometheus registry behind the `/metrics` endpoint.

pub mod connections;
pub mod health;
pub mod instruments;
pub mod otlp;
pub mod self_metrics;
pub mod server;
pub mod status_page;
pub mod telemetry;
pub mod web;

pub use instruments::{PluginInstruments, RunStamp, SeriesStore};
pub use self_metrics::SelfMetrics;
pub use telemetry::{ExportError, Telemetry};
