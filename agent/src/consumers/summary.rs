//! The human-readable summary `testmeter once` and `ingest` print: each suite's run, what its
//! plugins made of it (with `--details`, every series: gauges as values, counters as
//! increments, histograms as count and mean), and a closing table of runs and SLO verdicts.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;

use crate::catalog::{MetricKind, SampleValues};
use crate::contract::gate::Verdict;
use crate::log::error_chain;
use crate::pipeline::{Consumer, Event, SuiteOutcome};
use crate::plugin::PluginSet;

use super::status::{self, number, RunResult, Snapshot};

/// Collects the summary of the runs it is told of, to print once they are done.
#[derive(Debug, Default)]
pub struct Summary {
    /// With every series each plugin derived, with its value.
    details: bool,
    rendered: Mutex<Rendered>,
}

#[derive(Debug, Default)]
struct Rendered {
    /// The plugin set in use: its plugins, and what failed to load or was refused.
    header: String,
    suites: usize,
    body: String,
}

impl Summary {
    pub fn new(details: bool) -> Self {
        Self {
            details,
            rendered: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Rendered> {
        self.rendered
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The summary of every run so far.
    pub fn render(&self) -> String {
        let rendered = self.lock();
        let mut out = String::new();
        let _ = write!(
            out,
            "testmeter: {} suite(s), {}",
            rendered.suites, rendered.header
        );
        out.push_str(&rendered.body);
        out
    }
}

impl Consumer for Summary {
    fn on(&self, event: &Event<'_>) {
        match event {
            Event::PluginsLoaded { loaded, .. } => self.lock().header = header(&loaded.set),
            Event::SuiteFinished { outcome, loaded } => {
                let mut text = String::from("\n");
                render_suite(&mut text, &loaded.set, outcome, self.details);
                let mut rendered = self.lock();
                rendered.suites += 1;
                rendered.body.push_str(&text);
            }
            Event::SuiteStarted { .. } | Event::Cases { .. } | Event::SuiteSkipped { .. } => {}
        }
    }
}

/// `plugins: a 1.0, b 2.0` and a line per plugin not loaded and per metric refused.
fn header(set: &PluginSet) -> String {
    let mut out = String::new();
    let plugins: Vec<String> = set
        .plugins
        .iter()
        .map(|p| format!("{} {}", p.decl.name, p.decl.version))
        .collect();
    let _ = writeln!(
        out,
        "plugins: {}",
        if plugins.is_empty() {
            "none".to_owned()
        } else {
            plugins.join(", ")
        }
    );
    for failure in &set.load_failures {
        let _ = writeln!(out, "  plugin not loaded: {}", error_chain(&failure.error));
    }
    for error in &set.catalog_errors {
        let _ = writeln!(out, "  metric refused: {error}");
    }
    out
}

fn render_suite(out: &mut String, set: &PluginSet, outcome: &SuiteOutcome, details: bool) {
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
    let counts = run.summary;
    let mark = if run.passed() { "✓" } else { "✗" };
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
    for failed in &run.failures {
        let _ = writeln!(out, "  failed: {}: {}", failed.name, failed.message);
    }
    let not_shown = (counts.failed + counts.errored).saturating_sub(run.failures.len());
    if not_shown > 0 {
        let _ = writeln!(out, "  … and {not_shown} more failed or errored");
    }
    if outcome.plugins.is_empty() {
        let _ = writeln!(out, "  no plugin handles system {:?}", outcome.system);
    }
    for plugin in &outcome.plugins {
        match &plugin.result {
            Ok(samples) => {
                let values: u64 = samples.iter().map(|s| s.values.observations()).sum();
                let _ = writeln!(
                    out,
                    "  plugin {}: {values} values in {} samples",
                    plugin.plugin,
                    samples.len()
                );
                if details {
                    for line in sample_lines(set, &plugin.plugin, samples) {
                        let _ = writeln!(out, "    {line}");
                    }
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

/// One line per series, aligned, in metric and label order.
fn sample_lines(set: &PluginSet, plugin: &str, samples: &[crate::catalog::Sample]) -> Vec<String> {
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
        match &sample.values {
            SampleValues::Values(values) => {
                for &value in values {
                    entry.count += 1;
                    entry.sum += value;
                    entry.last = value;
                }
            }
            SampleValues::Histogram(counts) => {
                entry.count += usize::try_from(counts.count()).unwrap_or(usize::MAX);
                entry.sum += counts.sum;
            }
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
            let value = match set.catalog_kind(plugin, metric) {
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

/// The closing table: one row per suite (result, counts, SLOs breached, time), then one row per
/// SLO evaluated on its suite's run with what it measured.
pub fn table(snapshot: &Snapshot) -> String {
    let mut runs = vec![cells(&[
        "SUITE", "SYSTEM", "RESULT", "TESTS", "PASSED", "FAILED", "ERRORED", "SKIPPED", "SLOS",
        "TIME",
    ])];
    let mut slos = vec![cells(&[
        "SUITE", "SLO", "PLUGIN", "SEVERITY", "MEASURED", "STATUS",
    ])];
    for row in &snapshot.suites {
        let Some(last) = &row.last else {
            runs.push(cells(&[&row.suite, &row.system, "not run"]));
            continue;
        };
        let counts = match &last.result {
            RunResult::Ran { counts, .. } => [
                counts.tests,
                counts.passed,
                counts.failed,
                counts.errored,
                counts.skipped,
            ]
            .map(|n| n.to_string()),
            RunResult::NotRun { .. } => std::array::from_fn(|_| "-".to_owned()),
        };
        let (breached, unknown) = last.slo_counts();
        let slo_cell = match (last.slos.len(), breached, unknown) {
            (0, _, _) => "-".to_owned(),
            (n, 0, 0) => format!("{n}/{n} met"),
            (n, b, 0) => format!("{b}/{n} breached"),
            (n, 0, u) => format!("{u}/{n} unknown"),
            (n, b, u) => format!("{b}/{n} breached, {u} unknown"),
        };
        let mut cols = vec![
            row.suite.clone(),
            row.system.clone(),
            last.health().as_str().to_owned(),
        ];
        cols.extend(counts);
        cols.push(slo_cell);
        cols.push(format!("{:.2}s", last.duration.as_secs_f64()));
        runs.push(cols);
        for slo in &last.slos {
            let mark = match slo.verdict {
                Verdict::Met => "✓",
                Verdict::Breached { .. } => "✗",
                Verdict::Unknown { .. } => "?",
            };
            slos.push(vec![
                row.suite.clone(),
                slo.slo.clone(),
                slo.plugin.clone(),
                slo.severity.clone(),
                status::observed_text(&slo.observed),
                format!("{mark} {}", status::verdict_word(&slo.verdict)),
            ]);
        }
    }
    let mut out = align(&runs);
    if slos.len() > 1 {
        out.push('\n');
        out.push_str(&align(&slos));
    }
    out
}

fn cells(texts: &[&str]) -> Vec<String> {
    texts.iter().map(|t| (*t).to_owned()).collect()
}

/// Columns padded to their widest cell (in characters); the last column is not padded.
fn align(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|cell| cell.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let last = row.len().saturating_sub(1);
        for (c, cell) in row.iter().enumerate() {
            if c == last {
                out.push_str(cell);
            } else {
                let pad = widths[c] - cell.chars().count();
                out.push_str(cell);
                out.push_str(&" ".repeat(pad + 2));
            }
        }
        out.push('\n');
    }
    out
}
