//! Every conversion between the host model and the current WIT types: runs into `suite-run`,
//! and `plugin-info` and `sample` back into catalog types. Older WIT versions are adapted to
//! these types in `compat`.

use quick_junit::{NonSuccessKind, TestCaseStatus};

use super::bindings::v0_2::testmeter::plugin::types as wit;
use crate::catalog::{MetricDecl, MetricKind, PluginDecl, Sample, SloDecl};
use crate::model::SuiteRun;

fn pairs<'a>(items: impl IntoIterator<Item = (&'a str, &'a str)>) -> Vec<(String, String)> {
    items
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

fn test_case(suite: &str, case: &quick_junit::TestCase) -> wit::TestCase {
    let (outcome, attempts, flaky, message) = match &case.status {
        TestCaseStatus::Success { flaky_runs } => (
            wit::Outcome::Passed,
            1 + flaky_runs.len(),
            !flaky_runs.is_empty(),
            None,
        ),
        TestCaseStatus::NonSuccess {
            kind,
            message,
            reruns,
            ..
        } => (
            match kind {
                NonSuccessKind::Failure => wit::Outcome::Failed,
                NonSuccessKind::Error => wit::Outcome::Errored,
            },
            1 + reruns.runs.len(),
            false,
            message.as_ref(),
        ),
        TestCaseStatus::Skipped { message, .. } => {
            (wit::Outcome::Skipped, 1, false, message.as_ref())
        }
    };
    wit::TestCase {
        suite: suite.to_owned(),
        classname: case
            .classname
            .as_ref()
            .map(|c| c.as_str().to_owned())
            .unwrap_or_default(),
        name: case.name.as_str().to_owned(),
        outcome,
        duration_seconds: case.time.map_or(0.0, |t| t.as_secs_f64()),
        attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
        flaky,
        message: message.map(|m| m.as_str().to_owned()),
        properties: pairs(
            case.properties
                .iter()
                .map(|p| (p.name.as_str(), p.value.as_str())),
        ),
        system_out: case.system_out.as_ref().map(|s| s.as_str().to_owned()),
        system_err: case.system_err.as_ref().map(|s| s.as_str().to_owned()),
    }
}

/// The WIT record a plugin's `derive` receives.
pub fn suite_run(run: &SuiteRun) -> wit::SuiteRun {
    let started_unix_ms = run
        .started
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    wit::SuiteRun {
        suite: run.suite.clone(),
        system: run.system.clone(),
        started_unix_ms,
        duration_seconds: run.duration.as_secs_f64(),
        exit_code: run.exit_code,
        peak_rss_bytes: run.peak_rss_bytes,
        labels: pairs(run.labels.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
        properties: pairs(
            run.report
                .test_suites
                .iter()
                .flat_map(|s| &s.properties)
                .map(|p| (p.name.as_str(), p.value.as_str())),
        ),
        cases: run
            .report
            .test_suites
            .iter()
            .flat_map(|s| {
                s.test_cases
                    .iter()
                    .map(move |c| test_case(s.name.as_str(), c))
            })
            .collect(),
        artifacts: run
            .artifacts
            .iter()
            .map(|a| wit::Artifact {
                name: a.name.clone(),
                content: a.content.clone(),
            })
            .collect(),
        partial: run.partial.clone(),
    }
}

impl From<wit::MetricKind> for MetricKind {
    fn from(kind: wit::MetricKind) -> Self {
        match kind {
            wit::MetricKind::Counter => MetricKind::Counter,
            wit::MetricKind::Gauge => MetricKind::Gauge,
            wit::MetricKind::Histogram => MetricKind::Histogram,
        }
    }
}

impl From<wit::PluginInfo> for PluginDecl {
    fn from(info: wit::PluginInfo) -> Self {
        PluginDecl {
            name: info.name,
            version: info.version,
            systems: info.systems,
            metrics: info
                .metrics
                .into_iter()
                .map(|m| MetricDecl {
                    name: m.name,
                    kind: m.kind.into(),
                    unit: m.unit,
                    description: m.description,
                    label_keys: m.label_keys,
                    buckets: m.buckets,
                })
                .collect(),
            slos: info
                .slos
                .into_iter()
                .map(|s| SloDecl {
                    name: s.name,
                    expr: s.expr,
                    for_seconds: s.for_seconds,
                    severity: s.severity,
                    summary: s.summary,
                })
                .collect(),
        }
    }
}

impl From<wit::Sample> for Sample {
    fn from(sample: wit::Sample) -> Self {
        Sample {
            metric: sample.metric,
            labels: sample.labels,
            values: sample.values,
        }
    }
}
