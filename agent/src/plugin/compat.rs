//! The one place where plugins built against a frozen WIT version are adapted to the current
//! one. A 0.3.0 plugin streams as a current one does, with its records in their 0.3.0 shape (a
//! case's duration always a number, artifacts without `fresh`, samples as lists of values).
//! Versions before 0.3.0 take a run whole in one `derive` call: the run is put together from
//! its start, every case the current host fed, and its end (0.2.0's `suite-run`, narrowed to
//! 0.1.0's for 0.1.0 plugins). Every old `plugin-info` and `sample` is widened to the current
//! types. See docs/wit.md.

use wasmtime::component::{ComponentType, Lower};

use super::bindings::v0_1::testmeter::plugin::types as v0_1;
use super::bindings::v0_2::testmeter::plugin::types as v0_2;
use super::bindings::v0_3::testmeter::plugin::types as v0_3;
use super::bindings::v0_4::testmeter::plugin::types as current;
use super::conversions::{
    CaseBatch, CaseRecord, PropertyRecord, Reads, RunEndInput, RunStartInput, Span,
};
use crate::catalog::PluginDecl;
use crate::parse::PARTIAL_PROPERTY;

/// A file the suite wrote, as versions before 0.4.0 have it (no `fresh`).
#[derive(ComponentType, Lower)]
#[component(record)]
pub struct ArtifactInputV0_3<'a> {
    pub name: &'a str,
    pub content: &'a [u8],
}

/// What a 0.3.0 derivation is made with (`run-start` of `wit/deps/testmeter-plugin-0.3.0`).
#[derive(ComponentType, Lower)]
#[component(record)]
pub struct RunStartInputV0_3<'a> {
    pub suite: &'a str,
    pub system: &'a str,
    #[component(name = "exit-code")]
    pub exit_code: Option<i32>,
    #[component(name = "peak-rss-bytes")]
    pub peak_rss_bytes: Option<u64>,
    pub labels: Vec<(&'a str, &'a str)>,
    pub artifacts: Vec<ArtifactInputV0_3<'a>>,
}

fn artifacts_v0_3<'a>(start: &'a RunStartInput<'a>) -> Vec<ArtifactInputV0_3<'a>> {
    start
        .artifacts
        .iter()
        .map(|a| ArtifactInputV0_3 {
            name: a.name,
            content: a.content,
        })
        .collect()
}

/// The current run start in 0.3.0's shape.
pub fn run_start_v0_3<'a>(start: &'a RunStartInput<'a>) -> RunStartInputV0_3<'a> {
    RunStartInputV0_3 {
        suite: start.suite,
        system: start.system,
        exit_code: start.exit_code,
        peak_rss_bytes: start.peak_rss_bytes,
        labels: start.labels.clone(),
        artifacts: artifacts_v0_3(start),
    }
}

/// A case of a batch in 0.3.0's shape: a duration the report did not give is 0.
#[derive(ComponentType, Lower, Clone, Copy)]
#[component(record)]
pub struct CaseRecordV0_3 {
    pub suite: Span,
    pub classname: Span,
    pub name: Span,
    pub outcome: current::Outcome,
    #[component(name = "duration-seconds")]
    pub duration_seconds: f64,
    pub attempts: u32,
    pub flaky: bool,
    pub message: Option<Span>,
    #[component(name = "first-property")]
    pub first_property: u32,
    #[component(name = "property-count")]
    pub property_count: u32,
    #[component(name = "system-out")]
    pub system_out: Option<Span>,
    #[component(name = "system-err")]
    pub system_err: Option<Span>,
}

/// A batch in 0.3.0's shape, its text and properties borrowed from the current batch.
#[derive(ComponentType, Lower)]
#[component(record)]
pub struct CaseBatchInputV0_3<'a> {
    pub text: &'a str,
    pub cases: Vec<CaseRecordV0_3>,
    pub properties: &'a [PropertyRecord],
}

/// The current batch in 0.3.0's shape (one copy of its case records).
pub fn case_batch_v0_3(batch: &CaseBatch) -> CaseBatchInputV0_3<'_> {
    CaseBatchInputV0_3 {
        text: &batch.text,
        cases: batch
            .cases
            .iter()
            .map(|case| CaseRecordV0_3 {
                suite: case.suite,
                classname: case.classname,
                name: case.name,
                outcome: case.outcome,
                duration_seconds: case.duration_seconds.unwrap_or(0.0),
                attempts: case.attempts,
                flaky: case.flaky,
                message: case.message,
                first_property: case.first_property,
                property_count: case.property_count,
                system_out: case.system_out,
                system_err: case.system_err,
            })
            .collect(),
        properties: &batch.properties,
    }
}

/// A 0.3.0 plugin's declaration: its reads, and the rest widened.
pub fn plugin_info_v0_3(info: v0_3::PluginInfo) -> (Reads, PluginDecl) {
    let reads = Reads {
        message: info.reads.contains(v0_3::CaseFields::MESSAGE),
        properties: info.reads.contains(v0_3::CaseFields::PROPERTIES),
        system_out: info.reads.contains(v0_3::CaseFields::SYSTEM_OUT),
        system_err: info.reads.contains(v0_3::CaseFields::SYSTEM_ERR),
    };
    (reads, widen_v0_3(info))
}

/// A sample of 0.2.0 or 0.3.0 (the same record): a list of values.
pub fn sample_v0_3(sample: v0_3::Sample) -> current::Sample {
    current::Sample {
        metric: sample.metric,
        labels: sample.labels,
        values: current::SampleValues::Values(sample.values),
    }
}

/// A test case as 0.2.0 (and 0.1.0) has it (`test-case` of `wit/deps/testmeter-plugin-0.2.0`):
/// its own strings, borrowed from a current batch.
#[derive(ComponentType, Lower)]
#[component(record)]
pub struct TestCaseV0_2<'a> {
    pub suite: &'a str,
    pub classname: &'a str,
    pub name: &'a str,
    pub outcome: current::Outcome,
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

/// A case of a current batch as a 0.2.0 record.
pub fn test_case_v0_2<'a>(batch: &'a CaseBatch, case: &CaseRecord) -> TestCaseV0_2<'a> {
    TestCaseV0_2 {
        suite: batch.text_of(case.suite),
        classname: batch.text_of(case.classname),
        name: batch.text_of(case.name),
        outcome: case.outcome,
        duration_seconds: case.duration_seconds.unwrap_or(0.0),
        attempts: case.attempts,
        flaky: case.flaky,
        message: case.message.map(|span| batch.text_of(span)),
        properties: batch
            .properties_of(case)
            .iter()
            .map(|p| (batch.text_of(p.name), batch.text_of(p.value)))
            .collect(),
        system_out: case.system_out.map(|span| batch.text_of(span)),
        system_err: case.system_err.map(|span| batch.text_of(span)),
    }
}

/// The run a 0.2.0 plugin's `derive` receives (`suite-run` of
/// `wit/deps/testmeter-plugin-0.2.0`), borrowed from the current records.
#[derive(ComponentType, Lower)]
#[component(record)]
pub struct SuiteRunV0_2<'a> {
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
    pub cases: Vec<TestCaseV0_2<'a>>,
    pub artifacts: Vec<ArtifactInputV0_3<'a>>,
    pub partial: Option<&'a str>,
}

/// A whole run for a 0.2.0 plugin, from the parts the current host hands a derivation.
pub fn suite_run_v0_2<'a>(
    start: &'a RunStartInput<'a>,
    cases: Vec<TestCaseV0_2<'a>>,
    end: &'a RunEndInput<'a>,
) -> SuiteRunV0_2<'a> {
    SuiteRunV0_2 {
        suite: start.suite,
        system: start.system,
        started_unix_ms: end.started_unix_ms,
        duration_seconds: end.duration_seconds,
        exit_code: start.exit_code,
        peak_rss_bytes: start.peak_rss_bytes,
        labels: start.labels.clone(),
        properties: end.properties.clone(),
        cases,
        artifacts: artifacts_v0_3(start),
        partial: end.partial,
    }
}

fn outcome(outcome: current::Outcome) -> v0_1::Outcome {
    match outcome {
        current::Outcome::Passed => v0_1::Outcome::Passed,
        current::Outcome::Failed => v0_1::Outcome::Failed,
        current::Outcome::Errored => v0_1::Outcome::Errored,
        current::Outcome::Skipped => v0_1::Outcome::Skipped,
    }
}

/// The run as a 0.1.0 plugin sees it, copied out of the borrowed 0.2.0 record. 0.1.0 has no
/// `partial` field: the reason travels as the suite property `testmeter.partial`, as it did
/// before 0.2.0.
pub fn suite_run_v0_1(run: &SuiteRunV0_2<'_>) -> v0_1::SuiteRun {
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

/// An old declaration in the current types; versions before 0.3.0 have no `reads`: they read
/// every field (0.3.0's are read by [`plugin_info_v0_3`]).
macro_rules! widen_plugin_info {
    ($name:ident, $old:ident) => {
        fn $name(info: $old::PluginInfo) -> PluginDecl {
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
                            $old::MetricKind::Counter => current::MetricKind::Counter,
                            $old::MetricKind::Gauge => current::MetricKind::Gauge,
                            $old::MetricKind::Histogram => current::MetricKind::Histogram,
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
                reads: current::CaseFields::all(),
            }
            .into()
        }
    };
}

widen_plugin_info!(widen_v0_1, v0_1);
widen_plugin_info!(widen_v0_2, v0_2);
widen_plugin_info!(widen_v0_3, v0_3);

/// A 0.1.0 plugin's declaration: it reads every field.
pub fn plugin_info_v0_1(info: v0_1::PluginInfo) -> PluginDecl {
    widen_v0_1(info)
}

/// A 0.2.0 plugin's declaration: it reads every field.
pub fn plugin_info_v0_2(info: v0_2::PluginInfo) -> PluginDecl {
    widen_v0_2(info)
}

/// A 0.1.0 sample holds one value.
pub fn sample_v0_1(sample: v0_1::Sample) -> current::Sample {
    current::Sample {
        metric: sample.metric,
        labels: sample.labels,
        values: current::SampleValues::Values(vec![sample.value]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partial_run_reaches_a_0_1_plugin_as_the_suite_property() {
        let start = RunStartInput {
            suite: "s",
            system: "x",
            exit_code: None,
            peak_rss_bytes: None,
            labels: vec![],
            artifacts: vec![],
        };
        let end = RunEndInput {
            started_unix_ms: 1,
            duration_seconds: 2.0,
            properties: vec![("k", "v")],
            partial: Some("timed out after 5s"),
        };
        let old = suite_run_v0_1(&suite_run_v0_2(&start, vec![], &end));
        assert_eq!(
            old.properties,
            vec![
                ("k".to_owned(), "v".to_owned()),
                (PARTIAL_PROPERTY.to_owned(), "timed out after 5s".to_owned())
            ]
        );
    }
}
