//! The human-readable summary `testmeter once` prints: each suite's run and the metrics its
//! plugins derived (gauges as values, counters as increments, histograms as count and mean).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::agent::{error_chain, Agent, SuiteOutcome};
use crate::catalog::MetricKind;
use testmeter_parse::Summary;

/// Renders the summary of one round of suite runs.
pub fn render(agent: &Agent, outcomes: &[SuiteOutcome]) -> String {
    let mut out = String::new();
    let plugins: Vec<String> = agent
        .plugins()
        .plugins
        .iter()
        .map(|p| format!("{} {}", p.decl.name, p.decl.version))
        .collect();
    let _ = writeln!(
        out,
        "testmeter: {} suite(s), plugins: {}",
        outcomes.len(),
        if plugins.is_empty() {
            "none".to_owned()
        } else {
            plugins.join(", ")
        }
    );
    for failure in &agent.plugins().load_failures {
        let _ = writeln!(out, "  plugin not loaded: {}", error_chain(&failure.error));
    }
    for error in &agent.plugins().catalog_errors {
        let _ = writeln!(out, "  metric refused: {error}");
    }
    for outcome in outcomes {
        out.push('\n');
        render_suite(&mut out, agent, outcome);
    }
    out
}

fn render_suite(out: &mut String, agent: &Agent, outcome: &SuiteOutcome) {
    let run = match &outcome.run {
        Ok(run) => run,
        Err(error) => {
            let _ = writeln!(
                out,
                "✗ {} ({}): could not run: {}",
                outcome.suite,
                outcome.system,
                error_chain(error)
            );
            return;
        }
    };
    let counts = Summary::of(&run.report);
    let mark = if counts.all_green() { "✓" } else { "✗" };
    let rss = run.peak_rss_bytes.map_or_else(
        || "n/a".to_owned(),
        |b| format!("{:.1} MiB", b as f64 / 1_048_576.0),
    );
    let _ = writeln!(
        out,
        "{mark} {} ({}): {} passed, {} failed, {} errored, {} skipped of {} in {:.2}s, peak RSS {rss}, exit code {}",
        outcome.suite,
        outcome.system,
        counts.passed,
        counts.failed,
        counts.errored,
        counts.skipped,
        counts.tests,
        run.duration.as_secs_f64(),
        run.exit_code.map_or_else(|| "none".to_owned(), |c| c.to_string()),
    );
    if counts.flaky > 0 || counts.attempts > counts.tests {
        let _ = writeln!(
            out,
            "  {} flaky (passed on a retry), {} attempts in all",
            counts.flaky, counts.attempts
        );
    }
    if let Some(reason) = &run.partial {
        let _ = writeln!(out, "  partial run: {reason}");
    }
    for (name, message) in failed_cases(&run.report) {
        let _ = writeln!(out, "  failed: {name}: {message}");
    }
    if outcome.plugins.is_empty() {
        let _ = writeln!(out, "  no plugin handles system {:?}", outcome.system);
    }
    for plugin in &outcome.plugins {
        match &plugin.result {
            Ok(samples) => {
                let values: usize = samples.iter().map(|s| s.values.len()).sum();
                let _ = writeln!(
                    out,
                    "  plugin {}: {values} values in {} samples",
                    plugin.plugin,
                    samples.len()
                );
                for line in sample_lines(agent, &plugin.plugin, samples) {
                    let _ = writeln!(out, "    {line}");
                }
            }
            Err(error) => {
                let _ = writeln!(
                    out,
                    "  plugin {} failed: {}",
                    plugin.plugin,
                    first_line(&error_chain(error))
                );
            }
        }
        for rejection in &plugin.rejected {
            let _ = writeln!(out, "    rejected: {rejection}");
        }
    }
}

/// `classname::name` and the first line of the message of every failed or errored case.
fn failed_cases(report: &quick_junit::Report) -> Vec<(String, String)> {
    let cases = report.test_suites.iter().flat_map(|s| &s.test_cases);
    cases
        .filter_map(|case| match &case.status {
            quick_junit::TestCaseStatus::NonSuccess { message, .. } => {
                let name = match &case.classname {
                    Some(classname) => format!("{}::{}", classname.as_str(), case.name.as_str()),
                    None => case.name.as_str().to_owned(),
                };
                let message = message
                    .as_ref()
                    .and_then(|m| m.as_str().lines().next().map(str::to_owned))
                    .unwrap_or_else(|| "(no message)".to_owned());
                Some((name, message))
            }
            _ => None,
        })
        .collect()
}

/// One line per series, aligned, in metric and label order.
fn sample_lines(agent: &Agent, plugin: &str, samples: &[crate::catalog::Sample]) -> Vec<String> {
    #[derive(Default)]
    struct Series {
        count: usize,
        sum: f64,
        last: f64,
    }
    let mut series: BTreeMap<(String, String), Series> = BTreeMap::new();
    for sample in samples {
        let mut labels = sample.labels.clone();
        labels.sort();
        let labels = labels
            .iter()
            .map(|(k, v)| format!("{k}={v:?}"))
            .collect::<Vec<_>>()
            .join(",");
        let entry = series.entry((sample.metric.clone(), labels)).or_default();
        for &value in &sample.values {
            entry.count += 1;
            entry.sum += value;
            entry.last = value;
        }
    }
    let rows: Vec<(String, String)> = series
        .iter()
        .map(|((metric, labels), s)| {
            let name = if labels.is_empty() {
                metric.clone()
            } else {
                format!("{metric}{{{labels}}}")
            };
            let value = match agent.plugins().catalog_kind(plugin, metric) {
                Some(MetricKind::Counter) => format!("+{}", number(s.sum)),
                Some(MetricKind::Histogram) => {
                    format!(
                        "{} observations, mean {}",
                        s.count,
                        number(s.sum / s.count as f64)
                    )
                }
                _ => number(s.last),
            };
            (name, value)
        })
        .collect();
    let width = rows.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
    rows.into_iter()
        .map(|(name, value)| format!("{name:<width$}  {value}"))
        .collect()
}

/// Trap messages carry multi-line wasm backtraces; the summary keeps the first line (the log
/// has the rest).
fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or(text)
}

fn number(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{value:.0}")
    } else {
        format!("{value:.3}")
    }
}
