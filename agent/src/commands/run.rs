//! `testmeter run`: the daemon's lifecycle. Binds the endpoint, starts the agent, serves
//! `/metrics` and the status page, watches the plugins dir, runs the schedule, reloads the
//! suites on SIGHUP, and on SIGINT or SIGTERM stops with a grace period for running suites.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use testmeter::agent::Agent;
use testmeter::config::Config;
use testmeter::daemon::reload;
use testmeter::daemon::schedule::Scheduler;
use testmeter::log::error_chain;
use testmeter::server;
use testmeter::server::connections::{self, ConnectionLimits};
use testmeter::server::web::WebSecurity;
use tokio::signal::unix::SignalKind;

pub async fn run(path: &Path) -> anyhow::Result<ExitCode> {
    let config = Config::load(path)?;
    let open_files = connections::raise_open_file_limit();
    let security = config
        .prometheus
        .web_config
        .as_deref()
        .map(WebSecurity::load)
        .transpose()?;
    let listener = server::bind(config.prometheus.listen).await?;
    let agent = Arc::new(
        Agent::start(config)
            .await
            .context("failed to start the agent")?,
    );
    tracing::info!(addr = %agent.config().prometheus.listen, "serving /metrics");
    if let Some(security) = &security {
        tracing::info!(tls = security.tls.is_some(), "web config loaded");
    }
    let prometheus = &agent.config().prometheus;
    let limits = ConnectionLimits {
        max_connections: prometheus.max_connections,
        header_read_timeout: prometheus.header_read_timeout,
        max_connection_age: prometheus.max_connection_age,
    }
    .within(open_files);
    if limits.max_connections < prometheus.max_connections {
        tracing::warn!(
            configured = prometheus.max_connections,
            max_connections = limits.max_connections,
            open_files,
            reserve = connections::FD_RESERVE,
            "fewer /metrics connections than configured: the open-file limit is low"
        );
    }
    let server = tokio::spawn(server::serve(
        listener,
        server::Sources {
            registry: agent.telemetry.registry.clone(),
            openmetrics: Arc::clone(&agent.telemetry.openmetrics),
            readiness: Arc::clone(&agent.readiness),
            status: Arc::clone(&agent.status),
            connection_errors: agent.self_metrics.connection_errors(),
            history: agent.history.as_ref().map(|h| h.path().to_path_buf()),
        },
        security,
        limits,
    ));
    let watcher = if agent.config().watch_plugins {
        match reload::spawn(Arc::clone(&agent.pipeline)) {
            Ok(task) => Some(task),
            Err(error) => {
                tracing::warn!(error = %error_chain(&error), "plugins dir not watched; new plugins load at the next start");
                None
            }
        }
    } else {
        None
    };
    let mut scheduler = Scheduler::start(Arc::clone(&agent.pipeline));
    let mut hangup = super::signal(SignalKind::hangup());
    let mut terminate = super::signal(SignalKind::terminate());
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            () = super::next(&mut terminate) => break,
            () = super::next(&mut hangup) => reload_suites(path, &agent, &mut scheduler),
        }
    }
    let grace = agent.config().shutdown_grace;
    tracing::info!(
        ?grace,
        "shutting down: no new runs; waiting for running suites"
    );
    let killed = scheduler.shutdown(grace).await;
    if !killed.is_empty() {
        tracing::warn!(
            ?killed,
            ?grace,
            "suites still running after the grace period were killed"
        );
    }
    server.abort();
    if let Some(watcher) = watcher {
        watcher.abort();
    }
    super::shutdown(&agent).await;
    Ok(ExitCode::SUCCESS)
}

/// SIGHUP: reads the config again and applies its suites. An invalid config is rejected and the
/// running schedule stays; settings other than the suites need a restart.
fn reload_suites(path: &Path, agent: &Agent, scheduler: &mut Scheduler) {
    let running = agent.config();
    match Config::load(path) {
        Ok(config) => {
            let changes = scheduler.apply(&config.suites);
            agent.status.set_suites(&config.suites);
            tracing::info!(
                added = ?changes.added,
                changed = ?changes.changed,
                removed = ?changes.removed,
                "config reloaded on SIGHUP"
            );
            if config.plugins_dir != running.plugins_dir
                || config.prometheus.listen != running.prometheus.listen
                || config.max_concurrent_suites != running.max_concurrent_suites
            {
                tracing::warn!(
                    "only suites are reloaded; other changed settings apply at the next start"
                );
            }
        }
        Err(error) => {
            tracing::error!(error = %error_chain(&error), "config reload rejected; the running config stays");
        }
    }
}
