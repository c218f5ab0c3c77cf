//! `testmeter check`: dashboards and rule files checked against the declared metrics, offline,
//! and with `--prometheus` against a live server.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use testmeter::contract;

use crate::ReportFormat;

pub async fn run(
    config: &Path,
    paths: &[PathBuf],
    scrape_config: Option<&Path>,
    prometheus: Option<String>,
    format: ReportFormat,
) -> anyhow::Result<ExitCode> {
    let contract = super::contract(config).await?;
    let scrape = scrape_config
        .map(contract::check_files::ScrapeConfig::load)
        .transpose()?;
    let mut report = contract::check_files::check_files(&contract, paths, scrape.as_ref())?;
    if let Some(url) = prometheus {
        let references = report.references.clone();
        let live = tokio::task::spawn_blocking(move || {
            contract::live::check(&contract::live::Prometheus::new(&url), &references)
        })
        .await??;
        report.findings.extend(live);
    }
    match format {
        ReportFormat::Text => print!("{}", report.to_text()),
        ReportFormat::Json => println!("{}", serde_json::to_string_pretty(&report)?),
    }
    Ok(super::exit_code(report.findings.is_empty()))
}
