//! The OTLP sink: its settings for each signal (the config file first, then the signal-specific
//! `OTEL_EXPORTER_OTLP_METRICS_*` or `..._TRACES_*` variables, then `OTEL_EXPORTER_OTLP_*`, then
//! OTLP defaults), the periodic push reader of metrics, the span exporter of traces, and the
//! health of their exports.

use std::sync::Arc;
use std::time::Duration;

use opentelemetry_otlp::{
    MetricExporter, Protocol, SpanExporter, WithExportConfig, WithTonicConfig,
};
use opentelemetry_sdk::metrics::{MeterProviderBuilder, PeriodicReader};

use super::health::{ExportHealth, WatchedExporter};
use super::sink::Sink;
use crate::config::{OtlpConfig, OtlpProtocol};

/// Errors building the OTLP exporter.
#[derive(Debug, thiserror::Error)]
pub enum OtlpError {
    #[error("unsupported OTLP protocol {value:?} in {variable} (use grpc or http/protobuf)")]
    Protocol {
        variable: &'static str,
        value: String,
    },
    #[error("failed to build the OTLP {protocol} exporter")]
    Build {
        protocol: &'static str,
        #[source]
        source: opentelemetry_otlp::ExporterBuildError,
    },
}

/// What OTLP carries: each has its own variables and its own path on an OTLP/HTTP collector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    Metrics,
    Traces,
}

impl Signal {
    /// `OTEL_METRICS_EXPORTER` or `OTEL_TRACES_EXPORTER`: `none` turns the signal off.
    fn exporter_variable(self) -> &'static str {
        match self {
            Signal::Metrics => "OTEL_METRICS_EXPORTER",
            Signal::Traces => "OTEL_TRACES_EXPORTER",
        }
    }

    fn endpoint_variable(self) -> &'static str {
        match self {
            Signal::Metrics => "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
            Signal::Traces => "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        }
    }

    fn protocol_variable(self) -> &'static str {
        match self {
            Signal::Metrics => "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL",
            Signal::Traces => "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
        }
    }

    /// The OTLP/HTTP path a base URL gets.
    fn http_path(self) -> &'static str {
        match self {
            Signal::Metrics => "/v1/metrics",
            Signal::Traces => "/v1/traces",
        }
    }
}

/// What the agent will push to, after resolution. `None` from [`resolve`] means OTLP is off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtlpTarget {
    pub signal: Signal,
    pub protocol: OtlpProtocol,
    /// Endpoint from the config file; `None` leaves it to the exporter's env handling.
    pub endpoint: Option<String>,
    pub interval: Option<Duration>,
    pub timeout: Option<Duration>,
}

/// Adds the periodic push reader when OTLP is on (the config or the environment says so), its
/// exporter watched by an [`ExportHealth`]. Returns the target it pushes to, if any.
pub fn attach(
    builder: MeterProviderBuilder,
    config: Option<&OtlpConfig>,
) -> Result<(MeterProviderBuilder, Option<(OtlpTarget, Sink)>), OtlpError> {
    let Some(target) = resolve(Signal::Metrics, config, &|name| std::env::var(name).ok())? else {
        return Ok((builder, None));
    };
    let health = Arc::new(ExportHealth::default());
    let exporter = WatchedExporter::new("otlp", target.build()?, Arc::clone(&health));
    let mut reader = PeriodicReader::builder(exporter);
    if let Some(interval) = target.interval {
        reader = reader.with_interval(interval);
    }
    let sink = Sink {
        name: "otlp",
        health: Some(health),
    };
    Ok((builder.with_reader(reader.build()), Some((target, sink))))
}

/// Reads an environment variable through `get`, treating empty values as unset.
fn var(get: &dyn Fn(&str) -> Option<String>, name: &str) -> Option<String> {
    get(name).filter(|v| !v.trim().is_empty())
}

/// Decides whether OTLP is on for `signal` and how, given the config and an environment lookup.
pub fn resolve(
    signal: Signal,
    config: Option<&OtlpConfig>,
    get: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<OtlpTarget>, OtlpError> {
    if var(get, signal.exporter_variable()).is_some_and(|v| v.trim() == "none") {
        return Ok(None);
    }
    let env_endpoint =
        var(get, signal.endpoint_variable()).or_else(|| var(get, "OTEL_EXPORTER_OTLP_ENDPOINT"));
    let enabled = match config {
        Some(config) => config.enabled,
        None => env_endpoint.is_some(),
    };
    if !enabled {
        return Ok(None);
    }
    let protocol = match config.and_then(|c| c.protocol) {
        Some(protocol) => protocol,
        None => env_protocol(signal, get)?,
    };
    Ok(Some(OtlpTarget {
        signal,
        protocol,
        endpoint: config.and_then(|c| c.endpoint.clone()),
        interval: config.and_then(|c| c.interval),
        timeout: config.and_then(|c| c.timeout),
    }))
}

fn env_protocol(
    signal: Signal,
    get: &dyn Fn(&str) -> Option<String>,
) -> Result<OtlpProtocol, OtlpError> {
    for variable in [signal.protocol_variable(), "OTEL_EXPORTER_OTLP_PROTOCOL"] {
        if let Some(value) = var(get, variable) {
            return match value.trim() {
                "grpc" => Ok(OtlpProtocol::Grpc),
                "http/protobuf" => Ok(OtlpProtocol::HttpProtobuf),
                _ => Err(OtlpError::Protocol { variable, value }),
            };
        }
    }
    // The OTLP specification's default transport.
    Ok(OtlpProtocol::HttpProtobuf)
}

impl OtlpTarget {
    pub fn protocol_name(&self) -> &'static str {
        match self.protocol {
            OtlpProtocol::Grpc => "grpc",
            OtlpProtocol::HttpProtobuf => "http/protobuf",
        }
    }

    /// A plain-text gRPC channel with HTTP/2 keepalive. A collector that accepts connections
    /// but never answers (a black hole) leaves every push queued on one connection that never
    /// completes its handshake; the exporter's timeout cancels the push, but the connection and
    /// what is queued on it stay, so memory grows with each failed push. Keepalive pings that
    /// go unanswered close that connection, and the next push connects anew. `None` (the
    /// exporter builds its own channel) for `https` endpoints.
    fn channel(&self) -> Option<tonic::transport::Channel> {
        let endpoint = self
            .endpoint
            .clone()
            .or_else(|| {
                var(
                    &|name| std::env::var(name).ok(),
                    self.signal.endpoint_variable(),
                )
            })
            .or_else(|| {
                var(
                    &|name| std::env::var(name).ok(),
                    "OTEL_EXPORTER_OTLP_ENDPOINT",
                )
            })
            .unwrap_or_else(|| "http://localhost:4317".to_owned());
        if !endpoint.starts_with("http://") {
            return None;
        }
        let patience = self.timeout.unwrap_or(Duration::from_secs(10));
        let channel = tonic::transport::Endpoint::from_shared(endpoint)
            .ok()?
            .connect_timeout(patience)
            .http2_keep_alive_interval(patience)
            .keep_alive_timeout(patience)
            .keep_alive_while_idle(true)
            .connect_lazy();
        Some(channel)
    }

    /// Sets what the config names on an OTLP/gRPC exporter's builder: the endpoint, the
    /// keepalive channel and the timeout.
    fn grpc<B: WithExportConfig + WithTonicConfig>(&self, mut builder: B) -> B {
        if let Some(endpoint) = &self.endpoint {
            builder = builder.with_endpoint(endpoint.clone());
        }
        if let Some(channel) = self.channel() {
            builder = builder.with_channel(channel);
        }
        if let Some(timeout) = self.timeout {
            builder = builder.with_timeout(timeout);
        }
        builder
    }

    /// Sets what the config names on an OTLP/HTTP exporter's builder: protobuf, the endpoint
    /// with the signal's path, and the timeout.
    fn http<B: WithExportConfig>(&self, builder: B) -> B {
        let mut builder = builder.with_protocol(Protocol::HttpBinary);
        if let Some(endpoint) = &self.endpoint {
            builder = builder.with_endpoint(http_url(endpoint, self.signal));
        }
        if let Some(timeout) = self.timeout {
            builder = builder.with_timeout(timeout);
        }
        builder
    }

    fn build_error(&self) -> impl Fn(opentelemetry_otlp::ExporterBuildError) -> OtlpError + '_ {
        |source| OtlpError::Build {
            protocol: self.protocol_name(),
            source,
        }
    }

    /// Builds the span exporter of a traces target. Env variables the config left open are
    /// read by the exporter itself.
    pub fn build_spans(&self) -> Result<SpanExporter, OtlpError> {
        match self.protocol {
            OtlpProtocol::Grpc => self.grpc(SpanExporter::builder().with_tonic()).build(),
            OtlpProtocol::HttpProtobuf => self.http(SpanExporter::builder().with_http()).build(),
        }
        .map_err(self.build_error())
    }

    /// Builds the metric exporter. Env variables the config left open are read by the exporter
    /// itself.
    pub fn build(&self) -> Result<MetricExporter, OtlpError> {
        match self.protocol {
            OtlpProtocol::Grpc => self.grpc(MetricExporter::builder().with_tonic()).build(),
            OtlpProtocol::HttpProtobuf => self.http(MetricExporter::builder().with_http()).build(),
        }
        .map_err(self.build_error())
    }
}

/// A configured base URL gets the signal's OTLP/HTTP path, like `OTEL_EXPORTER_OTLP_ENDPOINT`
/// does.
fn http_url(endpoint: &str, signal: Signal) -> String {
    let base = endpoint.trim_end_matches('/');
    if base.ends_with(signal.http_path()) {
        base.to_owned()
    } else {
        format!("{base}{}", signal.http_path())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| map.get(name).cloned()
    }

    fn config(protocol: Option<OtlpProtocol>, endpoint: Option<&str>) -> OtlpConfig {
        OtlpConfig {
            enabled: true,
            endpoint: endpoint.map(str::to_owned),
            protocol,
            interval: None,
            timeout: None,
        }
    }

    #[test]
    fn off_without_config_or_env_endpoint() {
        assert_eq!(
            resolve(Signal::Metrics, None, &env(&[])).expect("resolves"),
            None
        );
    }

    #[test]
    fn env_endpoint_turns_it_on_with_env_protocol() {
        let target = resolve(
            Signal::Metrics,
            None,
            &env(&[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4317"),
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            ]),
        )
        .expect("resolves")
        .expect("on");
        assert_eq!(target.protocol, OtlpProtocol::Grpc);
        assert_eq!(
            target.endpoint, None,
            "the exporter reads the env endpoint itself"
        );
    }

    #[test]
    fn config_wins_over_env_and_signal_env_wins_over_generic() {
        let get = env(&[
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            ("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "http/protobuf"),
        ]);
        let from_env = resolve(Signal::Metrics, Some(&config(None, None)), &get)
            .expect("ok")
            .expect("on");
        assert_eq!(from_env.protocol, OtlpProtocol::HttpProtobuf);
        let from_config = resolve(
            Signal::Metrics,
            Some(&config(Some(OtlpProtocol::Grpc), Some("http://x:1"))),
            &get,
        )
        .expect("ok")
        .expect("on");
        assert_eq!(from_config.protocol, OtlpProtocol::Grpc);
        assert_eq!(from_config.endpoint.as_deref(), Some("http://x:1"));
    }

    #[test]
    fn metrics_exporter_none_and_bad_protocol() {
        let off = resolve(
            Signal::Metrics,
            Some(&config(None, None)),
            &env(&[("OTEL_METRICS_EXPORTER", "none")]),
        );
        assert_eq!(off.expect("ok"), None);
        let bad = resolve(
            Signal::Metrics,
            Some(&config(None, None)),
            &env(&[("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")]),
        );
        assert_eq!(
            bad.expect_err("unsupported").to_string(),
            "unsupported OTLP protocol \"http/json\" in OTEL_EXPORTER_OTLP_PROTOCOL (use grpc or http/protobuf)"
        );
    }

    #[test]
    fn traces_have_their_own_switch_and_variables() {
        let get = env(&[
            ("OTEL_METRICS_EXPORTER", "none"),
            ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "grpc"),
        ]);
        let traces = resolve(Signal::Traces, Some(&config(None, None)), &get)
            .expect("ok")
            .expect("on");
        assert_eq!(traces.protocol, OtlpProtocol::Grpc);
        let off = resolve(
            Signal::Traces,
            Some(&config(None, None)),
            &env(&[("OTEL_TRACES_EXPORTER", "none")]),
        );
        assert_eq!(off.expect("ok"), None);
        let from_env = resolve(
            Signal::Traces,
            None,
            &env(&[(
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                "http://c:4318/v1/traces",
            )]),
        );
        assert!(from_env.expect("ok").is_some());
    }

    #[test]
    fn http_endpoint_gets_the_signal_path_once() {
        for (endpoint, signal, url) in [
            ("http://h:4318", Signal::Metrics, "http://h:4318/v1/metrics"),
            (
                "http://h:4318/",
                Signal::Metrics,
                "http://h:4318/v1/metrics",
            ),
            (
                "http://h:4318/v1/metrics",
                Signal::Metrics,
                "http://h:4318/v1/metrics",
            ),
            ("http://h:4318", Signal::Traces, "http://h:4318/v1/traces"),
            (
                "http://h:4318/v1/traces/",
                Signal::Traces,
                "http://h:4318/v1/traces",
            ),
        ] {
            assert_eq!(http_url(endpoint, signal), url);
        }
    }
}
