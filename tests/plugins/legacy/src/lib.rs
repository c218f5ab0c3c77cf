//! Test fixture: a plugin built against the frozen `testmeter:plugin@0.1.0` (from
//! `wit/deps/`), as a plugin compiled before 0.2.0 existed would be. It counts the run's cases by
//! outcome, observes their durations, and reports whether the run was partial, which 0.1.0
//! plugins learn from the `testmeter.partial` suite property.

wit_bindgen::generate!({
    path: "../../../wit/deps/testmeter-plugin-0.1.0",
    world: "testmeter:plugin/metrics-plugin@0.1.0",
});

use testmeter::plugin::host::{log, LogLevel};
use testmeter::plugin::types::{Metric, MetricKind, Slo};

struct Legacy;

fn metric(name: &str, kind: MetricKind, unit: &str, labels: &[&str], buckets: &[f64]) -> Metric {
    Metric {
        name: name.to_owned(),
        kind,
        unit: unit.to_owned(),
        description: format!("{name}, from a testmeter:plugin@0.1.0 plugin"),
        label_keys: labels.iter().map(|l| (*l).to_owned()).collect(),
        buckets: buckets.to_vec(),
    }
}

fn sample(metric: &str, labels: &[(&str, &str)], value: f64) -> Sample {
    Sample {
        metric: metric.to_owned(),
        labels: labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        value,
    }
}

impl Guest for Legacy {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "legacy".to_owned(),
            version: "0.1.0".to_owned(),
            systems: vec!["legacy".to_owned()],
            metrics: vec![
                metric("legacy_cases", MetricKind::Gauge, "1", &["outcome"], &[]),
                metric(
                    "legacy_case_duration_seconds",
                    MetricKind::Histogram,
                    "s",
                    &[],
                    &[0.01, 0.1, 1.0, 10.0],
                ),
                metric("legacy_partial", MetricKind::Gauge, "1", &[], &[]),
            ],
            slos: vec![Slo {
                name: "LegacyCasesFailing".to_owned(),
                expr: "legacy_cases{outcome=\"failed\"} > 0".to_owned(),
                for_seconds: 0,
                severity: "warning".to_owned(),
                summary: "Cases fail".to_owned(),
            }],
        }
    }

    fn derive(run: SuiteRun) -> Result<Vec<Sample>, String> {
        log(LogLevel::Debug, &format!("{} cases", run.cases.len()));
        let mut counts = [0u32; 4];
        let mut out = Vec::new();
        for case in &run.cases {
            counts[case.outcome as usize] += 1;
            out.push(sample(
                "legacy_case_duration_seconds",
                &[],
                case.duration_seconds,
            ));
        }
        for (outcome, count) in ["passed", "failed", "errored", "skipped"]
            .iter()
            .zip(counts)
        {
            out.push(sample(
                "legacy_cases",
                &[("outcome", outcome)],
                f64::from(count),
            ));
        }
        let partial = run.properties.iter().any(|(k, _)| k == "testmeter.partial");
        out.push(sample("legacy_partial", &[], f64::from(u8::from(partial))));
        Ok(out)
    }
}

export!(Legacy);
