//! testmeter plugin for the OSWorld GUI-agent benchmark: declares its metrics and SLOs and
//! derives them from the harness results JSON, or from the test outcomes when there is none.

mod declare;
mod results;

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
            Ok(None) => Source::Cases(CaseTasks::default()),
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
            Source::Results(_) => {}
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
