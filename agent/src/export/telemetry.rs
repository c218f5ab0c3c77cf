//! Builds the one `SdkMeterProvider` over a shared `Resource` and every telemetry sink: the
//! Prometheus reader always, the OTLP push reader when on. Each sink is one module with its own
//! setup (an `attach` that adds its reader) and health; adding one is a module and a line here.

use opentelemetry::KeyValue;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::Resource;

use super::otlp::{self, OtlpError, OtlpTarget};
use super::prometheus::PrometheusError;
use super::sink::Sink;
use crate::config::OtlpConfig;

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Otlp(#[from] OtlpError),
    #[error(transparent)]
    Prometheus(#[from] PrometheusError),
    #[error("failed to flush metrics: {0}")]
    Flush(String),
}

/// The meter provider, its sinks and the registry `/metrics` reads.
#[derive(Debug)]
pub struct Telemetry {
    pub provider: SdkMeterProvider,
    pub registry: prometheus::Registry,
    /// Where OTLP pushes, when it is on.
    pub otlp: Option<OtlpTarget>,
    pub sinks: Vec<Sink>,
}

impl Telemetry {
    pub fn init(otlp_config: Option<&OtlpConfig>) -> Result<Self, ExportError> {
        let builder = SdkMeterProvider::builder().with_resource(resource());
        let (builder, registry, prometheus) = super::prometheus::attach(builder)?;
        let (builder, otlp) = otlp::attach(builder, otlp_config)?;
        let (otlp, otlp_sink) = otlp.unzip();
        let sinks = std::iter::once(prometheus).chain(otlp_sink).collect();
        Ok(Self {
            provider: builder.build(),
            registry,
            otlp,
            sinks,
        })
    }

    /// Pushes everything recorded so far to the OTLP collector.
    pub fn flush(&self) -> Result<(), ExportError> {
        self.provider
            .force_flush()
            .map_err(|e| ExportError::Flush(e.to_string()))
    }

    /// Flushes OTLP and stops the readers. Runs on a blocking thread: the gRPC exporter's
    /// shutdown waits on the async workers and would stall if it ran on one of them.
    pub async fn shutdown(&self) -> Result<(), ExportError> {
        let provider = self.provider.clone();
        tokio::task::spawn_blocking(move || provider.shutdown())
            .await
            .map_err(|e| ExportError::Flush(e.to_string()))?
            .map_err(|e| ExportError::Flush(e.to_string()))
    }
}

/// `service.name` defaults to `testmeter` unless `OTEL_SERVICE_NAME` or
/// `OTEL_RESOURCE_ATTRIBUTES` name it; `service.instance.id` and `host.name` keep agents apart.
fn resource() -> Resource {
    let env_attributes = std::env::var("OTEL_RESOURCE_ATTRIBUTES").unwrap_or_default();
    let env_has = |key: &str| {
        env_attributes
            .split(',')
            .any(|pair| pair.split('=').next().map(str::trim) == Some(key))
    };
    let mut builder = Resource::builder();
    if std::env::var_os("OTEL_SERVICE_NAME").is_none() && !env_has("service.name") {
        builder = builder.with_service_name("testmeter");
    }
    let mut attributes = vec![KeyValue::new("service.version", env!("CARGO_PKG_VERSION"))];
    if !env_has("service.instance.id") {
        if let Some(id) = read_trimmed("/proc/sys/kernel/random/uuid") {
            attributes.push(KeyValue::new("service.instance.id", id));
        }
    }
    if !env_has("host.name") {
        if let Some(host) = read_trimmed("/proc/sys/kernel/hostname") {
            attributes.push(KeyValue::new("host.name", host));
        }
    }
    builder.with_attributes(attributes).build()
}

fn read_trimmed(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}
