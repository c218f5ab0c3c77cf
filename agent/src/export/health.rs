//! Watches an OTLP exporter (metrics or spans): counts failed exports for
//! `testmeter_export_errors_total` and logs once when exports start failing and once when they
//! resume, not once per attempt.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::metrics::data::ResourceMetrics;
use opentelemetry_sdk::metrics::exporter::PushMetricExporter;
use opentelemetry_sdk::metrics::Temporality;
use opentelemetry_sdk::trace::{SpanData, SpanExporter};
use opentelemetry_sdk::Resource;

/// Export outcomes shared between the exporter wrapper and the self-metrics callback.
#[derive(Debug, Default)]
pub struct ExportHealth {
    failures: AtomicU64,
    failing: AtomicBool,
}

impl ExportHealth {
    /// Failed exports since start.
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    fn record(&self, exporter: &str, what: &str, result: &OTelSdkResult) {
        match result {
            Ok(()) => {
                if self.failing.swap(false, Ordering::Relaxed) {
                    tracing::info!(exporter, "{what} export resumed");
                }
            }
            Err(error) => {
                self.failures.fetch_add(1, Ordering::Relaxed);
                if !self.failing.swap(true, Ordering::Relaxed) {
                    tracing::error!(exporter, %error, "{what} export failing; retrying every interval, suites keep running and /metrics keeps serving");
                }
            }
        }
    }
}

/// A push exporter that reports every export's outcome to an [`ExportHealth`].
#[derive(Debug)]
pub struct WatchedExporter<E> {
    name: &'static str,
    inner: E,
    health: Arc<ExportHealth>,
}

impl<E> WatchedExporter<E> {
    pub fn new(name: &'static str, inner: E, health: Arc<ExportHealth>) -> Self {
        Self {
            name,
            inner,
            health,
        }
    }
}

impl<E: PushMetricExporter> PushMetricExporter for WatchedExporter<E> {
    async fn export(&self, metrics: &ResourceMetrics) -> OTelSdkResult {
        let result = self.inner.export(metrics).await;
        self.health.record(self.name, "metric", &result);
        result
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn temporality(&self) -> Temporality {
        self.inner.temporality()
    }
}

impl<E: SpanExporter> SpanExporter for WatchedExporter<E> {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let result = self.inner.export(batch).await;
        self.health.record(self.name, "span", &result);
        result
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}
