//! Test fixture: a plugin built against the frozen `testmeter:plugin@0.3.0` (from
//! `wit/deps/`), as the bundled plugins were before 0.4.0: it streams, reads a case's duration
//! as a plain number, gets artifacts without `fresh`, and returns every observation of a
//! histogram as a value. It counts the run's cases by outcome, sums their durations, lists
//! them in a histogram and counts the artifacts it was handed.

wit_bindgen::generate!({
    path: "../../../wit/deps/testmeter-plugin-0.3.0",
    world: "testmeter:plugin/metrics-plugin@0.3.0",
});

use std::cell::RefCell;

use exports::testmeter::plugin::derive::GuestDerivation;
use testmeter::plugin::types::{
    CaseBatch, CaseFields, Metric, MetricKind, Outcome, RunEnd, RunStart, Sample,
};

struct Streamed;

/// One run's counts as its batches stream past.
struct Run {
    artifacts: usize,
    state: RefCell<Counts>,
}

#[derive(Default)]
struct Counts {
    outcomes: [u32; 4],
    durations: Vec<f64>,
}

fn metric(name: &str, kind: MetricKind, labels: &[&str], buckets: &[f64]) -> Metric {
    Metric {
        name: name.to_owned(),
        kind,
        unit: "1".to_owned(),
        description: format!("{name}, from a testmeter:plugin@0.3.0 plugin"),
        label_keys: labels.iter().map(|l| (*l).to_owned()).collect(),
        buckets: buckets.to_vec(),
    }
}

fn sample(metric: &str, labels: &[(&str, &str)], values: Vec<f64>) -> Sample {
    Sample {
        metric: metric.to_owned(),
        labels: labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        values,
    }
}

impl Guest for Streamed {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "streamed-0-3".to_owned(),
            version: "0.3.0".to_owned(),
            systems: vec!["streamed-0-3".to_owned()],
            metrics: vec![
                metric("streamed_cases", MetricKind::Gauge, &["outcome"], &[]),
                metric("streamed_duration_sum_seconds", MetricKind::Gauge, &[], &[]),
                metric(
                    "streamed_case_duration_seconds",
                    MetricKind::Histogram,
                    &[],
                    &[0.01, 0.1, 1.0],
                ),
                metric("streamed_artifacts", MetricKind::Gauge, &[], &[]),
            ],
            slos: vec![],
            reads: CaseFields::empty(),
        }
    }
}

impl exports::testmeter::plugin::derive::Guest for Streamed {
    type Derivation = Run;
}

impl GuestDerivation for Run {
    fn new(run: RunStart) -> Self {
        Run {
            artifacts: run.artifacts.len(),
            state: RefCell::new(Counts::default()),
        }
    }

    fn feed(&self, batch: CaseBatch) -> Result<(), String> {
        let mut state = self.state.borrow_mut();
        for case in &batch.cases {
            let index = match case.outcome {
                Outcome::Passed => 0,
                Outcome::Failed => 1,
                Outcome::Errored => 2,
                Outcome::Skipped => 3,
            };
            state.outcomes[index] += 1;
            state.durations.push(case.duration_seconds);
        }
        Ok(())
    }

    fn finish(&self, _end: RunEnd) -> Result<Vec<Sample>, String> {
        let state = self.state.take();
        let mut out: Vec<Sample> = ["passed", "failed", "errored", "skipped"]
            .iter()
            .zip(state.outcomes)
            .map(|(outcome, count)| {
                sample(
                    "streamed_cases",
                    &[("outcome", outcome)],
                    vec![f64::from(count)],
                )
            })
            .collect();
        out.push(sample(
            "streamed_duration_sum_seconds",
            &[],
            vec![state.durations.iter().sum()],
        ));
        out.push(sample(
            "streamed_case_duration_seconds",
            &[],
            state.durations,
        ));
        out.push(sample(
            "streamed_artifacts",
            &[],
            vec![self.artifacts as f64],
        ));
        Ok(out)
    }
}

export!(Streamed);
