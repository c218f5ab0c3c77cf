//! The traces sink: finished spans go through the OpenTelemetry SDK's batch span processor (a
//! bounded queue, exported in batches on its own thread) to the OTLP collector `[otlp]` names.
//! A span that finds the queue full is dropped and counted, never waited for.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, SpanData, SpanExporter, SpanProcessor,
};
use opentelemetry_sdk::Resource;

use super::health::{ExportHealth, WatchedExporter};
use super::otlp::{self, OtlpError, OtlpTarget, Signal};
use super::sink::Sink;
use crate::config::{OtlpConfig, TracesConfig};

/// Where spans go, and how many of them did not.
#[derive(Debug)]
pub struct Spans {
    processor: BatchSpanProcessor,
    target: OtlpTarget,
    queue: u64,
    /// Spans handed to the processor.
    sent: AtomicU64,
    /// Spans the processor has taken off its queue and handed to the exporter.
    taken: Arc<AtomicU64>,
    dropped: AtomicU64,
}

impl Spans {
    /// The traces sink when traces are on: OTLP is on (the config or the environment says so),
    /// `[traces] enabled` and `OTEL_TRACES_EXPORTER` is not `none`. Its spans carry `resource`.
    pub fn attach(
        otlp: Option<&OtlpConfig>,
        traces: &TracesConfig,
        resource: &Resource,
    ) -> Result<Option<(Self, Sink)>, OtlpError> {
        if !traces.enabled {
            return Ok(None);
        }
        let Some(target) = otlp::resolve(Signal::Traces, otlp, &|name| std::env::var(name).ok())?
        else {
            return Ok(None);
        };
        let health = Arc::new(ExportHealth::default());
        let exporter =
            WatchedExporter::new("otlp_traces", target.build_spans()?, Arc::clone(&health));
        let spans = Spans::with_exporter(exporter, target, traces.queue, resource);
        let sink = Sink {
            name: "otlp_traces",
            health: Some(health),
        };
        Ok(Some((spans, sink)))
    }

    /// Spans through a batch span processor of `queue` spans in front of `exporter`.
    fn with_exporter<E: SpanExporter + 'static>(
        exporter: E,
        target: OtlpTarget,
        queue: usize,
        resource: &Resource,
    ) -> Self {
        let taken = Arc::new(AtomicU64::new(0));
        let exporter = Counted {
            inner: exporter,
            taken: Arc::clone(&taken),
        };
        let queue = queue.max(1);
        let config = BatchConfigBuilder::default()
            .with_max_queue_size(queue)
            .build();
        let mut processor = BatchSpanProcessor::new(exporter, config);
        processor.set_resource(resource);
        Spans {
            processor,
            target,
            queue: queue as u64,
            sent: AtomicU64::new(0),
            taken,
            dropped: AtomicU64::new(0),
        }
    }

    /// Queues a finished span for export; false (and counted) when the queue is full.
    ///
    /// The processor drops a span silently when its queue is full, so this keeps its own count
    /// of what is queued: spans sent less spans taken by the exporter. That count is never
    /// below the queue's true length (the exporter counts a span only once it is off the
    /// queue), so a span passed on always fits, and every drop is one counted here.
    pub fn send(&self, span: SpanData) -> bool {
        let admitted = self
            .sent
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |sent| {
                let queued = sent.saturating_sub(self.taken.load(Ordering::Acquire));
                (queued < self.queue).then_some(sent + 1)
            })
            .is_ok();
        if !admitted {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        self.processor.on_end(span);
        true
    }

    /// Spans dropped because the queue was full, since start.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    pub fn target(&self) -> &OtlpTarget {
        &self.target
    }

    /// Exports what is queued now. Blocks: call it off the async workers.
    pub fn flush(&self) -> OTelSdkResult {
        self.processor.force_flush()
    }

    /// Exports what is queued and stops the processor's thread. Blocks, as [`Spans::flush`].
    pub fn shutdown(&self) -> OTelSdkResult {
        self.processor.shutdown()
    }
}

/// Counts the spans the processor hands its exporter: they have left its queue.
#[derive(Debug)]
struct Counted<E> {
    inner: E,
    taken: Arc<AtomicU64>,
}

impl<E: SpanExporter> SpanExporter for Counted<E> {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        self.taken.fetch_add(batch.len() as u64, Ordering::Relaxed);
        self.inner.export(batch).await
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

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::time::SystemTime;

    use opentelemetry::trace::{
        SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState,
    };
    use opentelemetry::InstrumentationScope;
    use opentelemetry_sdk::trace::{SpanEvents, SpanLinks};

    use super::*;
    use crate::config::OtlpProtocol;

    /// An exporter that holds its first export until it is let go, and keeps what it got.
    #[derive(Debug, Clone)]
    struct Slow {
        gate: Arc<Mutex<()>>,
        got: Arc<AtomicU64>,
    }

    impl SpanExporter for Slow {
        async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
            let _held = self
                .gate
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            self.got.fetch_add(batch.len() as u64, Ordering::Relaxed);
            Ok(())
        }
    }

    fn span(id: u64) -> SpanData {
        SpanData {
            span_context: SpanContext::new(
                TraceId::from(1),
                SpanId::from(id),
                TraceFlags::SAMPLED,
                false,
                TraceState::default(),
            ),
            parent_span_id: SpanId::INVALID,
            parent_span_is_remote: false,
            span_kind: SpanKind::Internal,
            name: "s".into(),
            start_time: SystemTime::now(),
            end_time: SystemTime::now(),
            attributes: Vec::new(),
            dropped_attributes_count: 0,
            events: SpanEvents::default(),
            links: SpanLinks::default(),
            status: Status::Unset,
            instrumentation_scope: InstrumentationScope::builder("t").build(),
        }
    }

    /// With the exporter stuck, a burst past the queue is dropped and counted here, and every
    /// span that was not dropped reaches the exporter once it is let go: none is lost unseen.
    #[test]
    fn a_full_queue_drops_and_counts_and_loses_nothing_else() {
        let gate = Arc::new(Mutex::new(()));
        let got = Arc::new(AtomicU64::new(0));
        let target = OtlpTarget {
            signal: Signal::Traces,
            protocol: OtlpProtocol::HttpProtobuf,
            endpoint: None,
            interval: None,
            timeout: None,
        };
        let slow = Slow {
            gate: Arc::clone(&gate),
            got: Arc::clone(&got),
        };
        let spans = Spans::with_exporter(slow, target, 8, &Resource::builder_empty().build());
        let held = gate.lock().expect("gate");
        let sent = (1..=1000).filter(|id| spans.send(span(*id))).count() as u64;
        assert!(
            spans.dropped() > 0,
            "a stuck exporter and 1,000 spans fill a queue of 8"
        );
        assert_eq!(sent + spans.dropped(), 1000);
        drop(held);
        spans.shutdown().expect("shutdown");
        assert_eq!(got.load(Ordering::Relaxed), sent);
    }
}
