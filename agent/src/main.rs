//! The `testmeter` command line: `once`, `run` and `plugins`.

use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};
use testmeter::agent::Agent;
use testmeter::config::Config;
use testmeter::export::server;

#[derive(Debug, Parser)]
#[command(
    name = "testmeter",
    version,
    about = "Turns test runs into production metrics"
)]
struct Cli {
    /// Log line format on stderr (level from RUST_LOG, default info).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run every suite once, export, flush OTLP, print a summary and exit. Exits 1 when
    /// something could not run (test failures are not such a thing), 2 on a bad config.
    Once {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Run suites on their intervals and serve /metrics until SIGINT or SIGTERM.
    Run {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// List the loaded plugins and the metrics and SLOs they declare.
    Plugins {
        #[arg(long, short)]
        config: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: failed to start the async runtime: {error}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(execute(cli.command)) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

async fn execute(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Once { config } => once(&config).await,
        Command::Run { config } => run(&config).await,
        Command::Plugins { config } => plugins(&config).await,
    }
}

async fn once(path: &Path) -> anyhow::Result<ExitCode> {
    let config = Config::load(path)?;
    let agent = Agent::start(config)
        .await
        .context("failed to start the agent")?;
    let outcomes = agent.run_all_once().await;
    print!("{}", testmeter::summary::render(&agent, &outcomes));
    let mut healthy = agent.load_failures.is_empty() && outcomes.iter().all(|o| o.succeeded());
    match agent.telemetry.shutdown().await {
        Ok(()) => {
            if let Some(target) = &agent.telemetry.otlp {
                tracing::info!(protocol = target.protocol_name(), "OTLP metrics flushed");
            }
        }
        Err(error) => {
            tracing::error!(%error, "metrics flush failed");
            healthy = false;
        }
    }
    Ok(if healthy {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

async fn run(path: &Path) -> anyhow::Result<ExitCode> {
    let config = Config::load(path)?;
    let listener = server::bind(config.prometheus.listen).await?;
    let agent = Arc::new(
        Agent::start(config)
            .await
            .context("failed to start the agent")?,
    );
    tracing::info!(addr = %agent.config.prometheus.listen, "serving /metrics");
    let server = tokio::spawn(server::serve(listener, agent.telemetry.registry.clone()));
    let suites = tokio::spawn(Arc::clone(&agent).run_forever());
    shutdown_signal().await;
    tracing::info!("shutting down");
    suites.abort();
    server.abort();
    if let Err(error) = agent.telemetry.shutdown().await {
        tracing::warn!(%error, "metrics shutdown incomplete");
    }
    Ok(ExitCode::SUCCESS)
}

async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
}

async fn plugins(path: &Path) -> anyhow::Result<ExitCode> {
    let config = Config::load(path)?;
    let agent = Agent::start(config)
        .await
        .context("failed to start the agent")?;
    for plugin in &agent.plugins {
        let decl = &plugin.decl;
        println!(
            "{} {} ({}) systems: {}",
            decl.name,
            decl.version,
            plugin.path.display(),
            decl.systems.join(", ")
        );
        for metric in &decl.metrics {
            println!(
                "  {:<10} {} [{}] {{{}}}: {}",
                metric.kind.as_str(),
                metric.name,
                metric.unit,
                metric.label_keys.join(","),
                metric.description
            );
        }
        for slo in &decl.slos {
            println!(
                "  slo {} ({}, for {}s): {}",
                slo.name, slo.severity, slo.for_seconds, slo.expr
            );
        }
    }
    for failure in &agent.load_failures {
        println!("not loaded: {}", failure.error);
    }
    if let Err(error) = agent.telemetry.shutdown().await {
        tracing::warn!(%error, "metrics shutdown incomplete");
    }
    Ok(if agent.load_failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
