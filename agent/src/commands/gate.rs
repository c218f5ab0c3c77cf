//! `testmeter gate`: the declared SLOs evaluated on a run of every suite made now, or on a live
//! Prometheus; exits 1 when one is breached or cannot be decided.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;
use testmeter::agent::Agent;
use testmeter::catalog::SloDecl;
use testmeter::config::Config;
use testmeter::contract::gate::{self, Observed, SloResult, Verdict};
use testmeter::contract::live::Prometheus;
use testmeter::contract::model::ContractSlo;
use testmeter::contract::Contract;
use testmeter::history::State;
use testmeter::log::error_chain;
use testmeter::pipeline::SuiteOutcome;

use crate::ReportFormat;

/// What the gate asks of the per-test history, besides the SLOs.
#[derive(Debug, Clone, Copy, Default)]
pub struct HistoryChecks {
    /// No suite has a new failure.
    pub no_new_failures: bool,
    /// At most this many flaky tests, over all suites.
    pub max_flaky: Option<u64>,
}

impl HistoryChecks {
    /// The checks as SLOs of the agent's own metrics: what `--prometheus` evaluates, and the
    /// names and expressions a run's verdicts are reported under.
    fn slos(self) -> Vec<ContractSlo> {
        let slo = |name: &str, expr: String, summary: &str| ContractSlo {
            plugin: "testmeter".to_owned(),
            systems: Vec::new(),
            decl: SloDecl {
                name: name.to_owned(),
                expr,
                for_seconds: 0,
                severity: "critical".to_owned(),
                summary: summary.to_owned(),
            },
        };
        let mut slos = Vec::new();
        if self.no_new_failures {
            slos.push(slo(
                "NoNewFailures",
                r#"sum by (suite) (testmeter_history_tests{state="new_failure"}) > 0"#.to_owned(),
                "a test that passed in its previous run fails",
            ));
        }
        if let Some(max) = self.max_flaky {
            slos.push(slo(
                "MaxFlakyTests",
                format!(r#"sum(testmeter_history_tests{{state="flaky"}}) > {max}"#),
                "more flaky tests than allowed",
            ));
        }
        slos
    }
}

pub async fn run(
    config: &Path,
    slos: &[String],
    history: HistoryChecks,
    prometheus: Option<String>,
    format: ReportFormat,
) -> anyhow::Result<ExitCode> {
    let results = match prometheus {
        Some(url) => {
            let contract = super::contract(config).await?;
            let mut selected = select(&contract, slos)?;
            selected.extend(history.slos());
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
            match on_a_run(&agent, &loaded.contract, &selected, history).await {
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

/// Runs every suite once and evaluates the SLOs on what the plugins derived, and the history
/// checks on the verdicts the history gave the run.
async fn on_a_run(
    agent: &Agent,
    contract: &Contract,
    selected: &[ContractSlo],
    history: HistoryChecks,
) -> Result<Vec<SloResult>, super::Stopped> {
    let outcomes = super::until_stopped(agent.pipeline.run_all_once()).await?;
    for outcome in &outcomes {
        if let Err(error) = &outcome.run {
            tracing::warn!(suite = outcome.suite, error = %error_chain(error), "suite did not run; its SLOs cannot be decided");
        }
    }
    let run = gate::RunSamples::new(contract, outcomes.iter().flat_map(|o| o.samples()));
    let refs: Vec<&ContractSlo> = selected.iter().collect();
    let mut results = gate::evaluate_run(&run, &refs);
    results.extend(history_results(agent, &outcomes, history));
    super::shutdown(agent).await;
    Ok(results)
}

/// The history checks on the verdicts of this run's suites; unknown when history is off or a
/// suite's run was not recorded.
fn history_results(
    agent: &Agent,
    outcomes: &[SuiteOutcome],
    checks: HistoryChecks,
) -> Vec<SloResult> {
    let mut results = Vec::new();
    for slo in checks.slos() {
        let state = if slo.decl.name == "NoNewFailures" {
            State::NewFailure
        } else {
            State::Flaky
        };
        let mut observed = Vec::new();
        let mut listed = Vec::new();
        let mut unrecorded = Vec::new();
        for outcome in outcomes {
            let verdicts = agent
                .history
                .as_ref()
                .and_then(|h| h.latest(&outcome.suite));
            let Some(verdicts) = verdicts.filter(|_| outcome.run.is_ok()) else {
                unrecorded.push(outcome.suite.clone());
                continue;
            };
            let count = verdicts.counts.get(&state).copied().unwrap_or(0);
            observed.push(Observed {
                labels: [("suite".to_owned(), outcome.suite.clone())].into(),
                value: count as f64,
            });
            listed.extend(
                verdicts
                    .notable
                    .iter()
                    .filter(|v| v.state == state)
                    .map(|v| format!("{}: {}::{}", outcome.suite, v.classname, v.name)),
            );
        }
        let total: f64 = observed.iter().map(|o| o.value).sum();
        let breached = match checks.max_flaky {
            Some(max) if state == State::Flaky => total > max as f64,
            _ => total > 0.0,
        };
        let verdict = if !unrecorded.is_empty() {
            Verdict::Unknown {
                reason: format!(
                    "not recorded in the per-test history: {}",
                    unrecorded.join(", ")
                ),
            }
        } else if breached {
            Verdict::Breached { series: listed }
        } else {
            Verdict::Met
        };
        results.push(SloResult {
            slo: slo.decl.name.clone(),
            plugin: slo.plugin.clone(),
            severity: slo.decl.severity.clone(),
            expr: slo.decl.expr.clone(),
            verdict,
            observed,
        });
    }
    results
}
