//! `testmeter ingest`: reports another job wrote, sent through the plugins of a system and
//! exported once.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context as _;
use testmeter::agent::Agent;
use testmeter::config::{Config, SuiteConfig};
use testmeter::consumers::{summary, Summary};
use testmeter::log::error_chain;
use testmeter::parse::{Format, Limits};
use testmeter::runner::ingest::{self, IngestRequest};
use testmeter::runner::RunError;

/// What to ingest, and how.
pub struct Options {
    pub suite: String,
    pub system: String,
    pub config: Option<PathBuf>,
    pub format: Format,
    pub labels: BTreeMap<String, String>,
    pub artifacts: Vec<PathBuf>,
    pub limits: Limits,
    pub print: bool,
}

pub async fn run(reports: &[PathBuf], options: Options) -> anyhow::Result<ExitCode> {
    let config = match &options.config {
        Some(path) => Config::load(path)?,
        None => Config::from_toml("", Path::new("(defaults)"), &std::env::current_dir()?)?,
    };
    // A suite the config names keeps its labels and its choice of traced cases.
    let configured = config.suites.iter().find(|s| s.name == options.suite);
    let mut labels = configured.map(|s| s.labels.clone()).unwrap_or_default();
    labels.extend(options.labels);
    let mut suite = SuiteConfig::ingested(&options.suite, &options.system, labels);
    suite.trace_cases = configured.and_then(|s| s.trace_cases);
    let started = Instant::now();
    let run = ingest::run_of(&IngestRequest {
        suite: &suite.name,
        system: &suite.system,
        labels: suite.labels.clone(),
        reports,
        format: options.format,
        limits: options.limits,
        artifacts: &options.artifacts,
        artifact_max_bytes: suite.artifact_max_bytes,
    });
    let run = match run {
        Ok(run) => run,
        Err(error) => {
            eprintln!("error: {}", error_chain(&error));
            return Ok(ExitCode::from(1));
        }
    };
    let summary = Arc::new(Summary::new(true));
    let agent = Agent::start_with(
        config,
        vec![Arc::clone(&summary) as _],
        super::trace_parent(),
    )
    .await
    .context("failed to start the agent")?;
    let outcome = agent.pipeline.record_run(&suite, Ok(run), started).await;
    // A report that cannot be read is the command's error, as for `convert`.
    if let Err(error @ RunError::Ingest { .. }) = &outcome.run {
        eprintln!("error: {}", error_chain(error));
        let _ = agent.telemetry.shutdown().await;
        return Ok(ExitCode::from(1));
    }
    let text = format!(
        "{}\n{}",
        summary.render(),
        summary::table(&agent.status.snapshot())
    );
    if options.print {
        eprint!("{text}");
        let exposition = testmeter::export::prometheus::exposition(&agent.telemetry.registry)?;
        std::io::stdout().write_all(&exposition)?;
    } else {
        print!("{text}");
    }
    Ok(super::flush_and_exit_code(&agent, &[outcome]).await)
}
