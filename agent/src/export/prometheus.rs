//! The Prometheus sink: a pull reader into the registry `/metrics` encodes, with names exactly as
//! declared (no unit or `_total` suffixes, no scope labels).

use opentelemetry_sdk::metrics::MeterProviderBuilder;
use prometheus::{Encoder as _, TextEncoder};

use super::sink::Sink;

#[derive(Debug, thiserror::Error)]
#[error("failed to build the Prometheus exporter: {0}")]
pub struct PrometheusError(String);

/// Adds the Prometheus reader to the provider being built; the registry is what it fills.
pub fn attach(
    builder: MeterProviderBuilder,
) -> Result<(MeterProviderBuilder, prometheus::Registry, Sink), PrometheusError> {
    let registry = prometheus::Registry::new();
    let reader = opentelemetry_prometheus::exporter()
        .with_registry(registry.clone())
        .without_units()
        .without_counter_suffixes()
        .scope_info_enabled(false)
        .build()
        .map_err(|e| PrometheusError(e.to_string()))?;
    // A pull sink has no exports of its own to fail: a scrape that cannot be encoded is the
    // endpoint's error, logged there.
    let sink = Sink {
        name: "prometheus",
        health: None,
    };
    Ok((builder.with_reader(reader), registry, sink))
}

/// The registry in the Prometheus text exposition format, as `/metrics` serves it.
pub fn exposition(registry: &prometheus::Registry) -> Result<Vec<u8>, prometheus::Error> {
    let mut body = Vec::new();
    TextEncoder::new().encode(&registry.gather(), &mut body)?;
    Ok(body)
}

/// The content type of [`exposition`].
pub fn content_type() -> String {
    TextEncoder::new().format_type().to_owned()
}
