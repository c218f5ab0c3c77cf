//! testmeter plugin for the OSWorld GUI-agent benchmark: declares its metrics and SLOs and
//! derives them from the harness results JSON, or from the test outcomes when there is none.

mod declare;
mod results;

use testmeter_plugin_sdk::{
    log, percent, property, Guest, LogLevel, Outcome, PluginInfo, Sample, Samples, SuiteRun, Tally,
    TestCase,
};

struct OsWorld;

impl Guest for OsWorld {
    fn describe() -> PluginInfo {
        declare::plugin_info()
    }

    fn derive(run: SuiteRun) -> Result<Vec<Sample>, String> {
        let mut out = Samples::default();
        // The harness may report its own memory figure; otherwise the run's measured peak RSS.
        let mut memory = run.peak_rss_bytes.map(|bytes| bytes as f64);
        match results::find(&run.artifacts)? {
            Some((name, doc)) => {
                log(LogLevel::Debug, &format!("deriving from artifact {name}"));
                from_results(&doc, &mut out);
                memory = doc.memory_usage_bytes.or(memory);
            }
            None => from_cases(&run.cases, &mut out),
        }
        if let Some(bytes) = memory {
            out.push(declare::MEMORY, &[], bytes);
        }
        Ok(out.into_vec())
    }
}

testmeter_plugin_sdk::export_plugin!(OsWorld);

fn from_results(doc: &results::ResultsDoc, out: &mut Samples) {
    out.push(
        declare::SUCCESS_RATE,
        &[("task_category", "all")],
        doc.success_rate * 100.0,
    );
    for (category, stats) in &doc.category_stats {
        if let Some(rate) = percent(stats.passed, stats.total) {
            out.push(declare::SUCCESS_RATE, &[("task_category", category)], rate);
        }
    }
    let failed = doc.total_tasks.saturating_sub(doc.passed_tasks);
    out.push(
        declare::TASKS_TOTAL,
        &[("status", "passed")],
        doc.passed_tasks as f64,
    );
    out.push(declare::TASKS_TOTAL, &[("status", "failed")], failed as f64);
    out.push(declare::TASKS_PASSED, &[], doc.passed_tasks as f64);
    for task in &doc.detailed_results {
        out.push(
            declare::TASK_DURATION,
            &[("category", &task.category)],
            task.execution_time,
        );
        out.push(declare::STEP_COUNT, &[], task.steps_taken as f64);
    }
}

/// Without a results artifact: one task per test case. Skipped cases are not tasks.
fn from_cases(cases: &[TestCase], out: &mut Samples) {
    let mut all = Tally::default();
    let mut by_category = std::collections::BTreeMap::<&str, Tally>::new();
    for case in cases {
        let passed = match case.outcome {
            Outcome::Passed => true,
            Outcome::Failed | Outcome::Errored => false,
            Outcome::Skipped => continue,
        };
        all.count(passed);
        let category = property(case, "category");
        if let Some(category) = category {
            by_category.entry(category).or_default().count(passed);
            out.push(
                declare::TASK_DURATION,
                &[("category", category)],
                case.duration_seconds,
            );
        }
        if let Some(steps) = property(case, "steps").and_then(|s| s.parse::<f64>().ok()) {
            out.push(declare::STEP_COUNT, &[], steps);
        }
    }
    if all.total == 0 {
        return;
    }
    if let Some(rate) = percent(all.passed, all.total) {
        out.push(declare::SUCCESS_RATE, &[("task_category", "all")], rate);
    }
    for (category, tally) in &by_category {
        if let Some(rate) = percent(tally.passed, tally.total) {
            out.push(declare::SUCCESS_RATE, &[("task_category", category)], rate);
        }
    }
    out.push(
        declare::TASKS_TOTAL,
        &[("status", "passed")],
        all.passed as f64,
    );
    out.push(
        declare::TASKS_TOTAL,
        &[("status", "failed")],
        (all.total - all.passed) as f64,
    );
    out.push(declare::TASKS_PASSED, &[], all.passed as f64);
}
