//! The agent assembled: the telemetry sinks, the plugin runtime, the pipeline and the consumers
//! that stand as long as it runs. The list of consumers is here.

use std::sync::Arc;

use crate::config::Config;
use crate::consumers::{History, Readiness, StatusBoard, Traces};
use crate::export::{ExportError, SelfMetrics, Telemetry};
use crate::log::error_chain;
use crate::model::TraceContext;
use crate::pipeline::{Consumer, Loaded, Pipeline};
use crate::plugin::{PluginError, PluginRuntime, SandboxLimits};

/// A running agent.
pub struct Agent {
    pub telemetry: Telemetry,
    pub pipeline: Arc<Pipeline>,
    pub self_metrics: Arc<SelfMetrics>,
    /// Suites that have not run yet, for `/readyz`.
    pub readiness: Arc<Readiness>,
    /// Each suite's latest run and SLO verdicts, for `/` and the closing table.
    pub status: Arc<StatusBoard>,
    /// The per-test history, when it is on.
    pub history: Option<Arc<History>>,
}

impl std::fmt::Debug for Agent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Agent")
            .field("pipeline", &self.pipeline)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error(transparent)]
    Export(#[from] ExportError),
    #[error(transparent)]
    Plugin(#[from] PluginError),
}

impl Agent {
    /// Sets up export, then loads every `*.wasm` in the plugins dir. A plugin that fails to
    /// load is logged and counted; the agent starts without it.
    pub async fn start(config: Config) -> Result<Self, AgentError> {
        Self::start_with(config, Vec::new(), None).await
    }

    /// [`Agent::start`], with consumers of this command's own (a summary, progress lines)
    /// after the standing ones, and the span the runs' spans are children of when traces are
    /// on (the CI job's `TRACEPARENT`, for `once` and `ingest`).
    pub async fn start_with(
        config: Config,
        extra: Vec<Arc<dyn Consumer>>,
        trace_parent: Option<TraceContext>,
    ) -> Result<Self, AgentError> {
        let telemetry = Telemetry::init(config.otlp.as_ref(), &config.traces)?;
        let mut self_metrics = SelfMetrics::new(&telemetry.provider, &telemetry.sinks);
        // Exemplars name a run's trace, so they are recorded only when its spans are sent.
        if telemetry.spans.is_some() {
            self_metrics = self_metrics.with_exemplars(Arc::clone(&telemetry.exemplars));
        }
        let self_metrics = Arc::new(self_metrics);
        let runtime = runtime(&config)?;
        runtime.count_suppressed_logs(self_metrics.log_suppression());
        let readiness = Arc::new(Readiness::new(
            config.suites.iter().map(|s| s.name.as_str()),
        ));
        let status = Arc::new(StatusBoard::new(&config.suites));
        // Everything that reads a run, in the order it hears of it. Readiness comes last, so a
        // scrape after `/readyz` turns ready sees the run in every other.
        let history = History::new(&config.history, Some(Arc::clone(&self_metrics))).map(Arc::new);
        let mut consumers: Vec<Arc<dyn Consumer>> = vec![
            Arc::clone(&self_metrics) as Arc<dyn Consumer>,
            Arc::clone(&status) as Arc<dyn Consumer>,
        ];
        consumers.extend(history.iter().map(|h| Arc::clone(h) as Arc<dyn Consumer>));
        // After the history: a case's span carries the verdict the history just made.
        if let Some(spans) = &telemetry.spans {
            let suites: Vec<&str> = config.suites.iter().map(|s| s.name.as_str()).collect();
            self_metrics.traces_on(&suites);
            consumers.push(Arc::new(Traces::new(
                Arc::clone(spans),
                &config.traces,
                history.clone(),
                Some(Arc::clone(&self_metrics)),
            )));
        }
        consumers.extend(extra);
        consumers.push(Arc::clone(&readiness) as Arc<dyn Consumer>);
        let traced = telemetry.spans.is_some();
        let mut pipeline =
            Pipeline::start(config, runtime, telemetry.provider.clone(), consumers).await;
        if traced {
            pipeline.trace_runs(trace_parent);
        }
        Ok(Self {
            telemetry,
            pipeline: Arc::new(pipeline),
            self_metrics,
            readiness,
            status,
            history,
        })
    }

    pub fn config(&self) -> &Config {
        &self.pipeline.config
    }

    /// The plugin set in use.
    pub fn plugins(&self) -> Arc<Loaded> {
        self.pipeline.plugins()
    }
}

/// The plugin runtime under the config's sandbox limits, with the compiled-plugin cache on
/// unless the config turns it off. Commands that only read declarations use it alone.
pub fn runtime(config: &Config) -> Result<PluginRuntime, PluginError> {
    let mut runtime = PluginRuntime::new(SandboxLimits::from(&config.sandbox))?;
    if let Some(dir) = config.sandbox.effective_cache_dir() {
        if let Err(error) = runtime.enable_cache(&dir) {
            tracing::warn!(error = %error_chain(&error), "compiled-plugin cache off");
        }
    }
    Ok(runtime)
}
