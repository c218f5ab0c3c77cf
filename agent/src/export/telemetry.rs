//! Builds the one `SdkMeterProvider` over a shared `Resource` and every telemetry sink: the
//! Prometheus reader always, the OTLP push reader when on, and the spans of runs when traces
//! are on. Each sink is one module with its own setup (an `attach`) and health; adding one is a
//! module and a line here.

use std::sync::Arc;

use opentelemetry::KeyValue;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::Resource;

use super::openmetrics::{Exemplars, OpenMetrics};
use super::otlp::{self, OtlpError, OtlpTarget};
use super::prometheus::PrometheusError;
use super::self_metrics::{PLUGIN_DURATION, SUITE_RUN_DURATION};
use super::sink::Sink;
use super::traces::Spans;
use crate::config::{OtlpConfig, TracesConfig};

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
    /// The duration histograms that carry the trace of a run as an exemplar.
    pub exemplars: Arc<Exemplars>,
    /// The registry (and the exemplars) as OpenMetrics, for a scraper that asks for it.
    pub openmetrics: Arc<OpenMetrics>,
    /// Where OTLP pushes, when it is on.
    pub otlp: Option<OtlpTarget>,
    /// Where the spans of runs go, when traces are on.
    pub spans: Option<Arc<Spans>>,
    pub sinks: Vec<Sink>,
}

impl Telemetry {
    pub fn init(
        otlp_config: Option<&OtlpConfig>,
        traces: &TracesConfig,
    ) -> Result<Self, ExportError> {
        let resource = resource();
        let builder = SdkMeterProvider::builder().with_resource(resource.clone());
        let (builder, registry, prometheus) = super::prometheus::attach(builder)?;
        let (builder, otlp) = otlp::attach(builder, otlp_config)?;
        let (otlp, otlp_sink) = otlp.unzip();
        // Spans carry the CI pipeline and repository too; metrics do not, as the semantic
        // conventions ask (a pipeline run's id on every series would be a new series per run).
        let ci = crate::ci::resource_attributes(&|name| std::env::var(name).ok())
            .into_iter()
            .map(|(key, value)| KeyValue::new(key, value));
        let span_resource = Resource::builder_empty()
            .with_attributes(
                resource
                    .iter()
                    .map(|(k, v)| KeyValue::new(k.clone(), v.clone())),
            )
            .with_attributes(ci)
            .build();
        let (spans, spans_sink) = Spans::attach(otlp_config, traces, &span_resource)?.unzip();
        let sinks = std::iter::once(prometheus)
            .chain(otlp_sink)
            .chain(spans_sink)
            .collect();
        let exemplars = Arc::new(Exemplars::new(&[
            (SUITE_RUN_DURATION.name, SUITE_RUN_DURATION.buckets),
            (PLUGIN_DURATION.name, PLUGIN_DURATION.buckets),
        ]));
        let openmetrics = Arc::new(OpenMetrics::new(registry.clone(), Arc::clone(&exemplars)));
        Ok(Self {
            provider: builder.build(),
            registry,
            exemplars,
            openmetrics,
            otlp,
            spans: spans.map(Arc::new),
            sinks,
        })
    }

    /// Pushes everything recorded so far to the OTLP collector: metrics and spans.
    pub fn flush(&self) -> Result<(), ExportError> {
        if let Some(spans) = &self.spans {
            spans
                .flush()
                .map_err(|e| ExportError::Flush(e.to_string()))?;
        }
        self.provider
            .force_flush()
            .map_err(|e| ExportError::Flush(e.to_string()))
    }

    /// Flushes OTLP and stops the readers and the span processor. Runs on a blocking thread:
    /// the gRPC exporter's shutdown waits on the async workers and would stall if it ran on
    /// one of them.
    pub async fn shutdown(&self) -> Result<(), ExportError> {
        let provider = self.provider.clone();
        let spans = self.spans.clone();
        tokio::task::spawn_blocking(move || {
            let spans = spans.map_or(Ok(()), |spans| spans.shutdown());
            let metrics = provider.shutdown();
            spans.and(metrics)
        })
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
