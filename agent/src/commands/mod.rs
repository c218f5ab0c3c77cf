//! One module per command, and what several share: loading the plugins' declarations without
//! starting telemetry, the end of a one-shot command (flush, exit code), stopping on a signal,
//! and writing a file whole.

pub mod alerts;
pub mod check;
pub mod compile_plugin;
pub mod convert;
pub mod dashboards;
pub mod gate;
pub mod history;
pub mod ingest;
pub mod new_plugin;
pub mod once;
pub mod plugins;
pub mod run;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use testmeter::agent::Agent;
use testmeter::config::Config;
use testmeter::contract::Contract;
use testmeter::model::TraceContext;
use testmeter::pipeline::SuiteOutcome;
use testmeter::plugin::PluginSet;
use tokio::signal::unix::SignalKind;

/// The config and the plugins its plugins dir holds, with their declarations: what `plugins`,
/// `dashboards`, `alerts`, `check` and a live `gate` need. No telemetry is started.
pub async fn declarations(path: &Path) -> anyhow::Result<(Config, PluginSet)> {
    let config = Config::load(path)?;
    let runtime =
        testmeter::agent::runtime(&config).context("failed to start the plugin runtime")?;
    let set = PluginSet::load(&runtime, &config.plugins_dir, None).await;
    Ok((config, set))
}

/// Refuses a plugin set where any plugin failed to load or had a declaration refused: working
/// from part of the catalog would drop panels, alerts and verdicts without a word.
pub fn complete(set: &PluginSet) -> anyhow::Result<()> {
    let problems = set.problems();
    if problems.is_empty() {
        Ok(())
    } else {
        anyhow::bail!(
            "refusing to work from an incomplete catalog:\n  {}",
            problems.join("\n  ")
        )
    }
}

/// The contract of the config's plugins, refused when the catalog is incomplete.
pub async fn contract(path: &Path) -> anyhow::Result<Contract> {
    let (config, set) = declarations(path).await?;
    complete(&set)?;
    Ok(Contract::new(&set, &config.suites))
}

/// Stops the agent's telemetry, logging what could not be flushed.
/// The CI job's span from `TRACEPARENT`, which the runs of `once` and `ingest` join. A value
/// that is not a trace context is logged and left out: the runs get traces of their own.
pub fn trace_parent() -> Option<TraceContext> {
    match TraceContext::from_env()? {
        Ok(parent) => Some(parent),
        Err(error) => {
            tracing::warn!(%error, "TRACEPARENT ignored; runs start traces of their own");
            None
        }
    }
}

pub async fn shutdown(agent: &Agent) {
    if let Err(error) = agent.telemetry.shutdown().await {
        tracing::warn!(%error, "metrics shutdown incomplete");
    }
}

/// Flushes the exporters (an OTLP push) and gives the exit code of a one-shot command: 0 when
/// every plugin loaded, every suite ran and every plugin derived it, and the flush worked.
pub async fn flush_and_exit_code(agent: &Agent, outcomes: &[SuiteOutcome]) -> ExitCode {
    let mut healthy =
        agent.plugins().set.load_failures.is_empty() && outcomes.iter().all(|o| o.succeeded());
    match agent.telemetry.shutdown().await {
        Ok(()) => {
            if let Some(target) = &agent.telemetry.otlp {
                tracing::info!(protocol = target.protocol_name(), "OTLP metrics flushed");
            }
            if let Some(spans) = &agent.telemetry.spans {
                tracing::info!(
                    protocol = spans.target().protocol_name(),
                    dropped = spans.dropped(),
                    "OTLP spans flushed"
                );
            }
        }
        Err(error) => {
            tracing::error!(%error, "metrics flush failed");
            healthy = false;
        }
    }
    exit_code(healthy)
}

/// 0 when `ok`, else 1.
pub fn exit_code(ok: bool) -> ExitCode {
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// A signal that stopped `once` or `gate` before its suites finished.
pub struct Stopped(&'static str, u8);

impl Stopped {
    /// Logs the stop and flushes the metrics; the exit code is 128 + the signal's number.
    pub async fn exit(self, agent: &Agent) -> ExitCode {
        let Stopped(signal, code) = self;
        tracing::warn!(
            signal,
            "stopped before the suites finished; the running suite's process group was killed"
        );
        shutdown(agent).await;
        ExitCode::from(code)
    }
}

/// Runs `work` (one pass over the suites) until it ends or SIGTERM or SIGINT arrives. On a
/// signal the work is dropped, and with it the suite it was running, whose whole process group
/// is killed (`runner::process`), as `run` kills a suite still running after its grace period:
/// nothing the agent started outlives it.
pub async fn until_stopped<T>(work: impl std::future::Future<Output = T>) -> Result<T, Stopped> {
    let mut terminate = signal(SignalKind::terminate());
    tokio::select! {
        done = work => Ok(done),
        _ = tokio::signal::ctrl_c() => Err(Stopped("SIGINT", 130)),
        _ = next(&mut terminate) => Err(Stopped("SIGTERM", 143)),
    }
}

pub fn signal(kind: SignalKind) -> Option<tokio::signal::unix::Signal> {
    tokio::signal::unix::signal(kind)
        .inspect_err(|error| tracing::warn!(%error, ?kind, "cannot listen for the signal"))
        .ok()
}

/// The next delivery of a signal; never, when it could not be listened for.
pub async fn next(signal: &mut Option<tokio::signal::unix::Signal>) {
    match signal {
        Some(signal) => {
            signal.recv().await;
        }
        None => std::future::pending().await,
    }
}

/// Writes beside the target and renames, so a reader never sees half a file.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut partial = path.as_os_str().to_owned();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    std::fs::write(&partial, bytes)
        .with_context(|| format!("failed to write {}", partial.display()))?;
    std::fs::rename(&partial, path).with_context(|| {
        format!(
            "failed to rename {} to {}",
            partial.display(),
            path.display()
        )
    })?;
    Ok(())
}
