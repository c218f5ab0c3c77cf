//! Every conversion between the host model and the current WIT types: runs into a borrowed
//! `suite-run`, and `plugin-info` and `sample` back into catalog types. Older WIT versions are adapted to
//! these types in `compat`.

use quick_junit::{NonSuccessKind, TestCaseStatus};
use wasmtime::component::{ComponentType, Lower};

use super::bindings::v0_2::testmeter::plugin::types as wit;
use crate::catalog::{MetricDecl, MetricKind, PluginDecl, Sample, SloDecl};
use crate::model::SuiteRun;

fn pairs<'a>(items: impl IntoIterator<Item = (&'a str, &'a str)>) -> Vec<(&'a str, &'a str)> {
    items.into_iter().collect()
}

/// One test case as `derive` receives it (`test-case` in wit/plugin.wit), borrowed from the
/// host's report: lowering copies each string straight into the guest.
#[derive(ComponentType, Lower)]
#[component(record)]
pub struct TestCase<'a> {
    pub suite: &'a str,
    pub classname: &'a str,
    pub name: &'a str,
    pub outcome: wit::Outcome,
    #[component(name = "duration-seconds")]
    pub duration_seconds: f64,
    pub attempts: u32,
    pub flaky: bool,
    pub message: Option<&'a str>,
    pub properties: Vec<(&'a str, &'a str)>,
    #[component(name = "system-out")]
    pub system_out: Option<&'a str>,
    #[component(name = "system-err")]
    pub system_err: Option<&'a str>,
}

/// A file the suite wrote (`artifact`), borrowed.
#[derive(ComponentType, Lower)]
#[component(record)]
pub struct Artifact<'a> {
    pub name: &'a str,
    pub content: &'a [u8],
}

/// The run a plugin's `derive` receives (`suite-run` in wit/plugin.wit), borrowed from the
/// host's [`SuiteRun`]. The host never builds an owned copy of the report for plugins: on the
/// 100k-case bench that copy raised `ingest`'s peak RSS from 171 to 204 MiB and its time by
/// about 8% (docs/performance.md). Field names and order are checked against the plugin's
/// export when the call is typed, so a drift from the WIT fails loudly, never silently.
#[derive(ComponentType, Lower)]
#[component(record)]
pub struct SuiteRunInput<'a> {
    pub suite: &'a str,
    pub system: &'a str,
    #[component(name = "started-unix-ms")]
    pub started_unix_ms: u64,
    #[component(name = "duration-seconds")]
    pub duration_seconds: f64,
    #[component(name = "exit-code")]
    pub exit_code: Option<i32>,
    #[component(name = "peak-rss-bytes")]
    pub peak_rss_bytes: Option<u64>,
    pub labels: Vec<(&'a str, &'a str)>,
    pub properties: Vec<(&'a str, &'a str)>,
    pub cases: Vec<TestCase<'a>>,
    pub artifacts: Vec<Artifact<'a>>,
    pub partial: Option<&'a str>,
}

fn test_case<'a>(suite: &'a str, case: &'a quick_junit::TestCase) -> TestCase<'a> {
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
    TestCase {
        suite,
        classname: case.classname.as_ref().map_or("", |c| c.as_str()),
        name: case.name.as_str(),
        outcome,
        duration_seconds: case.time.map_or(0.0, |t| t.as_secs_f64()),
        attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
        flaky,
        message: message.map(|m| m.as_str()),
        properties: pairs(
            case.properties
                .iter()
                .map(|p| (p.name.as_str(), p.value.as_str())),
        ),
        system_out: case.system_out.as_ref().map(|s| s.as_str()),
        system_err: case.system_err.as_ref().map(|s| s.as_str()),
    }
}

/// The record a plugin's `derive` receives, borrowing every string from `run`.
pub fn suite_run(run: &SuiteRun) -> SuiteRunInput<'_> {
    let started_unix_ms = run
        .started
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    SuiteRunInput {
        suite: &run.suite,
        system: &run.system,
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
            .map(|a| Artifact {
                name: &a.name,
                content: &a.content,
            })
            .collect(),
        partial: run.partial.as_deref(),
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
