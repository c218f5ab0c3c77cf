//! `testmeter gate`: the declared SLOs evaluated on a run of every suite made now, or on a live
//! Prometheus; exits 1 when one is breached or cannot be decided.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;
use testmeter::agent::Agent;
use testmeter::config::Config;
use testmeter::contract::gate::{self, SloResult, Verdict};
use testmeter::contract::live::Prometheus;
use testmeter::contract::model::ContractSlo;
use testmeter::contract::Contract;
use testmeter::log::error_chain;

use crate::ReportFormat;

pub async fn run(
    config: &Path,
    slos: &[String],
    prometheus: Option<String>,
    format: ReportFormat,
) -> anyhow::Result<ExitCode> {
    let results = match prometheus {
        Some(url) => {
            let contract = super::contract(config).await?;
            let selected = select(&contract, slos)?;
            tokio::task::spawn_blocking(move || {
                let refs: Vec<&ContractSlo> = selected.iter().collect();
                gate::evaluate_live(&Prometheus::new(&url), &refs)
            })
            .await??
        }
        None => {
            let agent = Agent::start(Config::load(config)?)
                .await
                .context("failed to start the agent")?;
            let loaded = agent.plugins();
            if let Err(error) = super::complete(&loaded.set) {
                super::shutdown(&agent).await;
                return Err(error);
            }
            let selected = select(&loaded.contract, slos)?;
            match on_a_run(&agent, &loaded.contract, &selected).await {
                Ok(results) => results,
                Err(stopped) => return Ok(stopped.exit(&agent).await),
            }
        }
    };
    match format {
        ReportFormat::Text => print!("{}", gate::render(&results)),
        ReportFormat::Json => println!("{}", serde_json::to_string_pretty(&results)?),
    }
    Ok(super::exit_code(
        results.iter().all(|r| r.verdict == Verdict::Met),
    ))
}

fn select(contract: &Contract, slos: &[String]) -> anyhow::Result<Vec<ContractSlo>> {
    Ok(gate::select(contract, slos)
        .map_err(anyhow::Error::msg)?
        .into_iter()
        .cloned()
        .collect())
}

/// Runs every suite once and evaluates the SLOs on what the plugins derived.
async fn on_a_run(
    agent: &Agent,
    contract: &Contract,
    selected: &[ContractSlo],
) -> Result<Vec<SloResult>, super::Stopped> {
    let outcomes = super::until_stopped(agent.pipeline.run_all_once()).await?;
    for outcome in &outcomes {
        if let Err(error) = &outcome.run {
            tracing::warn!(suite = outcome.suite, error = %error_chain(error), "suite did not run; its SLOs cannot be decided");
        }
    }
    let run = gate::RunSamples::new(contract, outcomes.iter().flat_map(|o| o.samples()));
    let refs: Vec<&ContractSlo> = selected.iter().collect();
    let results = gate::evaluate_run(&run, &refs);
    super::shutdown(agent).await;
    Ok(results)
}
