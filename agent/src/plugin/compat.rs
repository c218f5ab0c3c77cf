//! The one place where plugins built against a frozen WIT version are adapted to the current
//! one: a current `suite-run` is narrowed to what 0.1.0 knows, and 0.1.0's `plugin-info` and
//! `sample` are widened to the current types. See docs/wit.md.

use super::bindings::v0_1::testmeter::plugin::types as v0_1;
use super::bindings::v0_2::testmeter::plugin::types as current;
use super::conversions::SuiteRunInput;
use crate::parse::PARTIAL_PROPERTY;

fn outcome(outcome: current::Outcome) -> v0_1::Outcome {
    match outcome {
        current::Outcome::Passed => v0_1::Outcome::Passed,
        current::Outcome::Failed => v0_1::Outcome::Failed,
        current::Outcome::Errored => v0_1::Outcome::Errored,
        current::Outcome::Skipped => v0_1::Outcome::Skipped,
    }
}

/// The run as a 0.1.0 plugin sees it, copied out of the borrowed current record. 0.1.0 has no
/// `partial` field: the reason travels as the suite property `testmeter.partial`, as it did
/// before 0.2.0.
pub fn suite_run(run: &SuiteRunInput<'_>) -> v0_1::SuiteRun {
    let owned = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    };
    let mut properties = owned(&run.properties);
    if let Some(reason) = run.partial {
        properties.push((PARTIAL_PROPERTY.to_owned(), reason.to_owned()));
    }
    v0_1::SuiteRun {
        suite: run.suite.to_owned(),
        system: run.system.to_owned(),
        started_unix_ms: run.started_unix_ms,
        duration_seconds: run.duration_seconds,
        exit_code: run.exit_code,
        peak_rss_bytes: run.peak_rss_bytes,
        labels: owned(&run.labels),
        properties,
        cases: run
            .cases
            .iter()
            .map(|case| v0_1::TestCase {
                suite: case.suite.to_owned(),
                classname: case.classname.to_owned(),
                name: case.name.to_owned(),
                outcome: outcome(case.outcome),
                duration_seconds: case.duration_seconds,
                attempts: case.attempts,
                flaky: case.flaky,
                message: case.message.map(str::to_owned),
                properties: owned(&case.properties),
                system_out: case.system_out.map(str::to_owned),
                system_err: case.system_err.map(str::to_owned),
            })
            .collect(),
        artifacts: run
            .artifacts
            .iter()
            .map(|a| v0_1::Artifact {
                name: a.name.to_owned(),
                content: a.content.to_vec(),
            })
            .collect(),
    }
}

/// A 0.1.0 declaration; its records are unchanged in 0.2.0.
pub fn plugin_info(info: v0_1::PluginInfo) -> current::PluginInfo {
    current::PluginInfo {
        name: info.name,
        version: info.version,
        systems: info.systems,
        metrics: info
            .metrics
            .into_iter()
            .map(|m| current::Metric {
                name: m.name,
                kind: match m.kind {
                    v0_1::MetricKind::Counter => current::MetricKind::Counter,
                    v0_1::MetricKind::Gauge => current::MetricKind::Gauge,
                    v0_1::MetricKind::Histogram => current::MetricKind::Histogram,
                },
                unit: m.unit,
                description: m.description,
                label_keys: m.label_keys,
                buckets: m.buckets,
            })
            .collect(),
        slos: info
            .slos
            .into_iter()
            .map(|s| current::Slo {
                name: s.name,
                expr: s.expr,
                for_seconds: s.for_seconds,
                severity: s.severity,
                summary: s.summary,
            })
            .collect(),
    }
}

/// A 0.1.0 sample holds one value.
pub fn sample(sample: v0_1::Sample) -> current::Sample {
    current::Sample {
        metric: sample.metric,
        labels: sample.labels,
        values: vec![sample.value],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partial_run_reaches_a_0_1_plugin_as_the_suite_property() {
        let run = SuiteRunInput {
            suite: "s",
            system: "x",
            started_unix_ms: 1,
            duration_seconds: 2.0,
            exit_code: None,
            peak_rss_bytes: None,
            labels: vec![],
            properties: vec![("k", "v")],
            cases: vec![],
            artifacts: vec![],
            partial: Some("timed out after 5s"),
        };
        let old = suite_run(&run);
        assert_eq!(
            old.properties,
            vec![
                ("k".to_owned(), "v".to_owned()),
                (PARTIAL_PROPERTY.to_owned(), "timed out after 5s".to_owned())
            ]
        );
    }
}
