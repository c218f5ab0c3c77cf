//! `testmeter once`: every suite run once, exported, OTLP flushed, and a summary printed.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use testmeter::agent::Agent;
use testmeter::config::Config;
use testmeter::consumers::{progress, summary, Progress, Summary};
use testmeter::pipeline::Consumer;

pub async fn run(path: &Path, details: bool) -> anyhow::Result<ExitCode> {
    let config = Config::load(path)?;
    let summary = Arc::new(Summary::new(details));
    let mut consumers: Vec<Arc<dyn Consumer>> = vec![Arc::clone(&summary) as _];
    if progress::wanted() {
        consumers.push(Arc::new(Progress::new(&config.suites)));
    }
    let agent = Agent::start_with(config, consumers, super::trace_parent())
        .await
        .context("failed to start the agent")?;
    let outcomes = match super::until_stopped(agent.pipeline.run_all_once()).await {
        Ok(outcomes) => outcomes,
        Err(stopped) => return Ok(stopped.exit(&agent).await),
    };
    print!(
        "{}\n{}",
        summary.render(),
        summary::table(&agent.status.snapshot())
    );
    Ok(super::flush_and_exit_code(&agent, &outcomes).await)
}
