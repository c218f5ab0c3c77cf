//! `testmeter dashboards`: Grafana dashboards generated from the plugins' declarations.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;
use testmeter::contract;

pub async fn run(config: &Path, out: &Path) -> anyhow::Result<ExitCode> {
    let contract = super::contract(config).await?;
    std::fs::create_dir_all(out).with_context(|| format!("failed to create {}", out.display()))?;
    for generated in contract::dashboards::generate(&contract) {
        let mut json = serde_json::to_vec_pretty(&generated.dashboard)?;
        json.push(b'\n');
        let path = out.join(&generated.file_name);
        super::write_atomically(&path, &json)?;
        println!(
            "wrote {} ({} panels)",
            path.display(),
            generated.dashboard.panels.len()
        );
    }
    Ok(ExitCode::SUCCESS)
}
