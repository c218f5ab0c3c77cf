//! Builds the one `SdkMeterProvider`: a shared `Resource`, the Prometheus reader (names exactly
//! as declared: no unit or `_total` suffixes, no scope labels) and, when on, a periodic OTLP reader.

use opentelemetry::KeyValue;
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider};
use opentelemetry_sdk::Resource;

use std::sync::Arc;

use super::health::{ExportHealth, WatchedExporter};
use super::otlp::{self, OtlpError, OtlpTarget};
use crate::config::OtlpConfig;

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Otlp(#[from] OtlpError),
    #[error("failed to build the Prometheus exporter: {0}")]
    Prometheus(String),
    #[error("failed to flush metrics: {0}")]
    Flush(String),
}

/// The meter provider and the registry `/metrics` reads.
#[derive(Debug)]
pub struct Telemetry {
    pub provider: SdkMeterProvider,
    pub registry: prometheus::Registry,
    pub otlp: Option<OtlpTarget>,
    /// Outcomes of OTLP exports, when OTLP is on.
    pub otlp_health: Option<Arc<ExportHealth>>,
}

impl Telemetry {
    pub fn init(otlp_config: Option<&OtlpConfig>) -> Result<Self, ExportError> {
        let registry = prometheus::Registry::new();
        let prometheus_reader = opentelemetry_prometheus::exporter()
            .with_registry(registry.clone())
            .without_units()
            .without_counter_suffixes()
            .scope_info_enabled(false)
            .build()
            .map_err(|e| ExportError::Prometheus(e.to_string()))?;
        let mut builder = SdkMeterProvider::builder()
            .with_resource(resource())
            .with_reader(prometheus_reader);
        let otlp = otlp::resolve(otlp_config, &|name| std::env::var(name).ok())?;
        let mut otlp_health = None;
        if let Some(target) = &otlp {
            let health = Arc::new(ExportHealth::default());
            let exporter = WatchedExporter::new("otlp", target.build()?, Arc::clone(&health));
            otlp_health = Some(health);
            let mut reader = PeriodicReader::builder(exporter);
            if let Some(interval) = target.interval {
                reader = reader.with_interval(interval);
            }
            builder = builder.with_reader(reader.build());
        }
        Ok(Self {
            provider: builder.build(),
            registry,
            otlp,
            otlp_health,
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
