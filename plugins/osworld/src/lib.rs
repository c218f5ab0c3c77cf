//! testmeter plugin for the OSWorld GUI-agent benchmark: declares its metrics and SLOs and
//! derives them from the harness results JSON, from the results tree the upstream harness
//! writes (`tree`), or from the test outcomes when there is neither.

mod declare;
mod results;
mod tree;

use std::collections::BTreeMap;

use testmeter_plugin_sdk::{
    log, percent, Case, LogLevel, Outcome, Plugin, PluginInfo, RunEnd, RunStart, Sample, Samples,
    Tally,
};

/// One run's derivation.
struct OsWorld {
    /// The harness's own memory figure: the results document's `memory_usage_bytes`, else the
    /// largest `memory_bytes` property. Never the suite's peak RSS, which is another quantity
    /// (the agent exports it as `testmeter_suite_peak_rss_bytes`).
    memory: Option<f64>,
    source: Source,
}

/// Where the run's task results come from.
enum Source {
    /// The harness's results document: the cases are not needed.
    Results(results::ResultsDoc),
    /// The upstream harness's results tree: the cases are not needed.
    Tree(tree::Tree),
    /// One task per test case.
    Cases(CaseTasks),
    /// An artifact claimed to be a results document and was not one.
    Invalid(String),
}

/// Tasks counted from test cases as they stream past. Skipped cases are not tasks. Durations
/// and steps are counted into their histograms on the way: nothing grows with the run.
struct CaseTasks {
    all: Tally,
    by_category: BTreeMap<String, Tally>,
    histograms: Samples,
}

impl Default for CaseTasks {
    fn default() -> Self {
        CaseTasks {
            all: Tally::default(),
            by_category: BTreeMap::new(),
            histograms: Samples::declared(&declare::plugin_info()),
        }
    }
}

impl CaseTasks {
    fn add(&mut self, case: Case<'_>) {
        let passed = match case.outcome() {
            Outcome::Passed => true,
            Outcome::Failed | Outcome::Errored => false,
            Outcome::Skipped => return,
        };
        self.all.count(passed);
        if let Some(category) = case.property("category") {
            match self.by_category.get_mut(category) {
                Some(tally) => tally.count(passed),
                None => {
                    let mut tally = Tally::default();
                    tally.count(passed);
                    self.by_category.insert(category.to_owned(), tally);
                }
            }
            // A case the report gave no time has no duration to observe (never a 0).
            if let Some(seconds) = case.duration_seconds() {
                self.histograms
                    .push(declare::TASK_DURATION, &[("category", category)], seconds);
            }
        }
        if let Some(steps) = case.property("steps").and_then(|s| s.parse::<f64>().ok()) {
            self.histograms.push(declare::STEP_COUNT, &[], steps);
        }
    }

    fn samples(self, out: &mut Samples) -> Vec<Sample> {
        let extra = self.histograms.into_vec();
        if self.all.total == 0 {
            return extra;
        }
        if let Some(rate) = percent(self.all.passed, self.all.total) {
            out.push(declare::SUCCESS_RATE, &[("task_category", "all")], rate);
        }
        for (category, tally) in &self.by_category {
            if let Some(rate) = percent(tally.passed, tally.total) {
                out.push(declare::SUCCESS_RATE, &[("task_category", category)], rate);
            }
        }
        out.push(
            declare::TASKS_TOTAL,
            &[("status", "passed")],
            self.all.passed as f64,
        );
        out.push(
            declare::TASKS_TOTAL,
            &[("status", "failed")],
            (self.all.total - self.all.passed) as f64,
        );
        out.push(declare::TASKS_PASSED, &[], self.all.passed as f64);
        extra
    }
}

impl Plugin for OsWorld {
    fn describe() -> PluginInfo {
        declare::plugin_info()
    }

    fn start(run: RunStart) -> Self {
        let source = match results::find(&run.artifacts) {
            Ok(Some((name, doc))) => {
                log(LogLevel::Debug, &format!("deriving from artifact {name}"));
                Source::Results(doc)
            }
            Ok(None) => match tree::find(&run.artifacts) {
                Some(tree) => Source::Tree(tree),
                None => Source::Cases(CaseTasks::default()),
            },
            Err(error) => Source::Invalid(error),
        };
        OsWorld {
            memory: None,
            source,
        }
    }

    fn case(&mut self, case: Case<'_>) -> Result<(), String> {
        if let Some(bytes) = case
            .property("memory_bytes")
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|v| v.is_finite() && *v >= 0.0)
        {
            self.memory = Some(self.memory.map_or(bytes, |m| m.max(bytes)));
        }
        match &mut self.source {
            Source::Cases(tasks) => tasks.add(case),
            Source::Results(_) | Source::Tree(_) => {}
            Source::Invalid(error) => return Err(error.clone()),
        }
        Ok(())
    }

    fn finish(self, _end: RunEnd) -> Result<Vec<Sample>, String> {
        let mut out = Samples::declared(&declare::plugin_info());
        let mut memory = self.memory;
        let extra = match self.source {
            Source::Results(doc) => {
                from_results(&doc, &mut out);
                if doc.memory_usage_bytes.is_some() {
                    memory = doc.memory_usage_bytes;
                }
                Vec::new()
            }
            Source::Tree(tree) => {
                from_tree(&tree, &mut out);
                Vec::new()
            }
            Source::Cases(tasks) => tasks.samples(&mut out),
            Source::Invalid(error) => return Err(error),
        };
        if let Some(bytes) = memory {
            out.push(declare::MEMORY, &[], bytes);
        }
        let mut samples = out.into_vec();
        samples.extend(extra);
        Ok(samples)
    }
}

testmeter_plugin_sdk::export!(OsWorld);

fn from_results(doc: &results::ResultsDoc, out: &mut Samples) {
    // A document of no tasks has no success rate (the harness writes 0 for it): a 0 would fire
    // the rollback alert for a run that judged nothing.
    if doc.total_tasks > 0 {
        out.push(
            declare::SUCCESS_RATE,
            &[("task_category", "all")],
            doc.success_rate * 100.0,
        );
    }
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

/// The tree's metrics. Success rates and tasks passed describe the whole tree, as the
/// harness's `show_result.py` does (a resumed run's result includes the examples earlier runs
/// finished): the mean score over the examples with a `result.txt`, overall and per domain. The
/// tasks counter and the steps histogram count only what this run did (fresh files), so a
/// resumed tree is not counted again. The tree has no task durations.
fn from_tree(tree: &tree::Tree, out: &mut Samples) {
    let mut all = (0.0f64, 0u64);
    let mut by_domain: BTreeMap<&str, (f64, u64)> = BTreeMap::new();
    let mut passed = 0u64;
    let mut statuses: BTreeMap<&str, u64> = BTreeMap::new();
    for ((domain, _), example) in &tree.examples {
        if let Some(score) = example.score {
            all.0 += score;
            all.1 += 1;
            let entry = by_domain.entry(domain.as_str()).or_default();
            entry.0 += score;
            entry.1 += 1;
            // A partial score counts by its fraction in the rate, and as not passed here.
            passed += u64::from(score >= 1.0);
            if example.score_fresh {
                let status = if score >= 1.0 { "passed" } else { "failed" };
                *statuses.entry(status).or_default() += 1;
                if let Some(steps) = example.steps {
                    out.push(declare::STEP_COUNT, &[], steps as f64);
                }
            }
        } else if example.crashed && example.traj_fresh {
            *statuses.entry("error").or_default() += 1;
        }
    }
    if all.1 > 0 {
        out.push(
            declare::SUCCESS_RATE,
            &[("task_category", "all")],
            100.0 * all.0 / all.1 as f64,
        );
        for (domain, (sum, count)) in &by_domain {
            out.push(
                declare::SUCCESS_RATE,
                &[("task_category", domain)],
                100.0 * sum / *count as f64,
            );
        }
    }
    for (status, count) in statuses {
        out.push(declare::TASKS_TOTAL, &[("status", status)], count as f64);
    }
    out.push(declare::TASKS_PASSED, &[], passed as f64);
}
