//! `testmeter plugins`: the plugins the config's plugins dir holds, with what each reads, what
//! it costs in memory, and the metrics and SLOs it declares.

use std::path::Path;
use std::process::ExitCode;

/// Bytes as MiB with one decimal.
fn mib(bytes: usize) -> String {
    format!("{:.1} MiB", bytes as f64 / f64::from(1 << 20))
}

pub async fn run(path: &Path) -> anyhow::Result<ExitCode> {
    let (config, set) = super::declarations(path).await?;
    for plugin in &set.plugins {
        let decl = &plugin.decl;
        let reads = plugin.reads.names();
        println!(
            "{} {} (wit {}, {}) systems: {}; reads: {}",
            decl.name,
            decl.version,
            plugin.wit.as_str(),
            plugin.path.display(),
            decl.systems.join(", "),
            if reads.is_empty() {
                "outcomes and names only".to_owned()
            } else {
                reads.join(", ")
            }
        );
        println!(
            "  memory: {} of compiled code in the agent; {} of linear memory per derivation at start (limit {})",
            mib(plugin.cost.code_bytes),
            mib(plugin.cost.instance_bytes),
            mib(config.sandbox.memory_bytes)
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
    for failure in &set.load_failures {
        println!("not loaded: {}", failure.error);
    }
    Ok(super::exit_code(set.load_failures.is_empty()))
}
