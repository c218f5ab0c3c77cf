//! Test fixture: a plugin built against the frozen `testmeter:plugin@0.2.0` (from
//! `wit/deps/`), as every plugin was before runs were streamed: its `derive` takes the whole
//! run. It counts the run's cases by outcome and attempts, puts every duration in one sample,
//! reads its cases' properties, and reports whether the run was partial (0.2.0's field).

wit_bindgen::generate!({
    path: "../../../wit/deps/testmeter-plugin-0.2.0",
    world: "testmeter:plugin/metrics-plugin@0.2.0",
});

use testmeter::plugin::types::{Metric, MetricKind, Outcome};

struct WholeRun;

fn metric(name: &str, kind: MetricKind, labels: &[&str], buckets: &[f64]) -> Metric {
    Metric {
        name: name.to_owned(),
        kind,
        unit: "1".to_owned(),
        description: format!("{name}, from a testmeter:plugin@0.2.0 plugin"),
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

impl Guest for WholeRun {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "whole-run".to_owned(),
            version: "0.2.0".to_owned(),
            systems: vec!["whole-run".to_owned()],
            metrics: vec![
                metric("whole_run_cases", MetricKind::Gauge, &["outcome"], &[]),
                metric("whole_run_attempts", MetricKind::Gauge, &[], &[]),
                metric("whole_run_properties", MetricKind::Gauge, &[], &[]),
                metric(
                    "whole_run_case_duration_seconds",
                    MetricKind::Histogram,
                    &[],
                    &[0.01, 0.1, 1.0],
                ),
                metric("whole_run_partial", MetricKind::Gauge, &[], &[]),
            ],
            slos: vec![],
        }
    }

    fn derive(run: SuiteRun) -> Result<Vec<Sample>, String> {
        let mut counts = [0u32; 4];
        let mut attempts = 0u32;
        let mut properties = 0usize;
        let mut durations = Vec::with_capacity(run.cases.len());
        for case in &run.cases {
            let index = match case.outcome {
                Outcome::Passed => 0,
                Outcome::Failed => 1,
                Outcome::Errored => 2,
                Outcome::Skipped => 3,
            };
            counts[index] += 1;
            attempts += case.attempts;
            properties += case.properties.len();
            durations.push(case.duration_seconds);
        }
        let mut out: Vec<Sample> = ["passed", "failed", "errored", "skipped"]
            .iter()
            .zip(counts)
            .map(|(outcome, count)| {
                sample(
                    "whole_run_cases",
                    &[("outcome", outcome)],
                    vec![f64::from(count)],
                )
            })
            .collect();
        out.push(sample("whole_run_attempts", &[], vec![f64::from(attempts)]));
        out.push(sample("whole_run_properties", &[], vec![properties as f64]));
        out.push(sample("whole_run_case_duration_seconds", &[], durations));
        out.push(sample(
            "whole_run_partial",
            &[],
            vec![f64::from(u8::from(run.partial.is_some()))],
        ));
        Ok(out)
    }
}

export!(WholeRun);
