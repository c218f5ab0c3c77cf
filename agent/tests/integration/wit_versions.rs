//! WIT versioning with real components: plugins built against the frozen
//! `testmeter:plugin@0.1.0` and `@0.2.0`, which take a run whole, and `@0.3.0`, which streams
//! in its own shape, load and derive beside the current 0.4.0 plugins, from the same streamed
//! report; a component built against a version the agent does not know is refused by name.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use crate::support::{built_plugins_dir, derive, fixture_plugin, repo_root, sample_lines};
use testmeter::catalog::{Sample, SampleValues};
use testmeter::model::{ReportSource, RunReport, SuiteRun};
use testmeter::parse::{parse_file, Format, Limits, Summary};
use testmeter::plugin::{PluginError, PluginRuntime, SandboxLimits, WitVersion};

const RERUNS: &str = "tests/fixtures/pytest/reruns.xml";

/// The real pytest-rerunfailures fixture as a run of `system`, streamed from its file.
fn fixture_run(system: &str, partial: Option<&str>) -> SuiteRun {
    SuiteRun {
        suite: system.to_owned(),
        system: system.to_owned(),
        labels: BTreeMap::new(),
        started: Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)),
        duration: Some(Duration::from_millis(10)),
        exit_code: Some(1),
        peak_rss_bytes: None,
        partial: partial.map(str::to_owned),
        timed_out: None,
        status: Some("exit code 1".to_owned()),
        artifacts: vec![],
        dropped_artifacts: vec![],
        report: RunReport {
            source: ReportSource::Files(vec![repo_root().join(RERUNS)]),
            format: Format::Junit,
            limits: Limits::default(),
        },
    }
}

fn counts() -> Summary {
    let parsed = parse_file(&repo_root().join(RERUNS), Format::Junit, Limits::default())
        .expect("fixture parses");
    Summary::of(&parsed.report)
}

fn value(samples: &[Sample], metric: &str, labels: &[(&str, &str)]) -> Vec<f64> {
    samples
        .iter()
        .filter(|s| {
            s.metric == metric
                && s.labels.len() == labels.len()
                && s.labels
                    .iter()
                    .zip(labels)
                    .all(|((k, v), (lk, lv))| k == lk && v == lv)
        })
        .flat_map(|s| match &s.values {
            SampleValues::Values(values) => values.clone(),
            SampleValues::Histogram(_) => panic!("{metric}: old versions send values"),
        })
        .collect()
}

/// The plugin's per-outcome gauge `metric` holds the report's counts.
fn assert_outcomes(samples: &[Sample], metric: &str, counts: &Summary) {
    for (outcome, expected) in [
        ("passed", counts.passed),
        ("failed", counts.failed),
        ("errored", counts.errored),
        ("skipped", counts.skipped),
    ] {
        assert_eq!(
            value(samples, metric, &[("outcome", outcome)]),
            [expected as f64],
            "{metric} {outcome}"
        );
    }
}

#[tokio::test]
async fn a_plugin_built_against_the_frozen_0_1_0_loads_and_derives_beside_0_4_0_plugins() {
    let runtime = PluginRuntime::new(SandboxLimits::default()).expect("engine");
    let legacy = runtime
        .load(&fixture_plugin("legacy"))
        .await
        .expect("the 0.1.0 plugin loads");
    let osworld = runtime
        .load(&built_plugins_dir().join("osworld.wasm"))
        .await
        .expect("the 0.4.0 plugin loads");
    assert_eq!(legacy.wit, WitVersion::V0_1);
    assert_eq!(osworld.wit, WitVersion::V0_4);
    assert_eq!(legacy.decl.metrics.len(), 3);
    assert_eq!(legacy.decl.slos[0].name, "LegacyCasesFailing");

    let run = fixture_run("legacy", None);
    let counts = counts();
    let samples = derive(&runtime, &legacy, &run).await.expect("derives");
    assert_outcomes(&samples, "legacy_cases", &counts);
    // 0.1.0 samples carry one value each; the host widens each to a one-value sample.
    let durations: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.metric == "legacy_case_duration_seconds")
        .collect();
    assert_eq!(durations.len(), counts.tests);
    assert!(durations.iter().all(|s| s.values.observations() == 1));
    assert_eq!(value(&samples, "legacy_partial", &[]), [0.0]);
    insta::assert_yaml_snapshot!(sample_lines(&samples));

    // 0.2.0 has `suite-run.partial`; a 0.1.0 plugin still learns it from the suite property.
    let partial = derive(
        &runtime,
        &legacy,
        &fixture_run("legacy", Some("timed out after 5s")),
    )
    .await
    .expect("derives");
    assert_eq!(value(&partial, "legacy_partial", &[]), [1.0]);
}

#[tokio::test]
async fn a_plugin_built_against_the_frozen_0_2_0_gets_the_streamed_run_whole() {
    let runtime = PluginRuntime::new(SandboxLimits::default()).expect("engine");
    let whole = runtime
        .load(&fixture_plugin("whole-run"))
        .await
        .expect("the 0.2.0 plugin loads");
    assert_eq!(whole.wit, WitVersion::V0_2);
    // It declares no `reads`: it is handed every field, as 0.2.0 promised.
    assert_eq!(whole.reads, testmeter::plugin::conversions::Reads::ALL);

    let counts = counts();
    let samples = derive(&runtime, &whole, &fixture_run("whole-run", None))
        .await
        .expect("derives");
    assert_outcomes(&samples, "whole_run_cases", &counts);
    // Every attempt of every test, as the stream folded them.
    assert_eq!(
        value(&samples, "whole_run_attempts", &[]),
        [counts.attempts as f64]
    );
    // All durations in one sample: 0.2.0 samples carry every value of a label set.
    let durations: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.metric == "whole_run_case_duration_seconds")
        .collect();
    assert_eq!(durations.len(), 1);
    assert_eq!(durations[0].values.observations(), counts.tests as u64);
    assert_eq!(value(&samples, "whole_run_partial", &[]), [0.0]);
    insta::assert_yaml_snapshot!(sample_lines(&samples));

    let partial = derive(
        &runtime,
        &whole,
        &fixture_run("whole-run", Some("timed out after 5s")),
    )
    .await
    .expect("derives");
    assert_eq!(value(&partial, "whole_run_partial", &[]), [1.0]);
}

#[tokio::test]
async fn a_component_built_against_an_unknown_wit_version_is_refused_by_name() {
    let runtime = PluginRuntime::new(SandboxLimits::default()).expect("engine");
    let path = fixture_plugin("future-wit");
    let error = runtime.load(&path).await.expect_err("refused");
    assert!(
        matches!(&error, PluginError::UnsupportedWit { found, .. } if found == "1.0.0"),
        "{error:?}"
    );
    assert_eq!(error.reason(), "load");
    insta::assert_snapshot!(error
        .to_string()
        .replace(&path.display().to_string(), "future-wit.wasm"));
}

/// A plugin built against the frozen 0.3.0 streams as it did: its batches in 0.3.0's shape
/// (a duration the report did not give reads 0, as 0.3.0 always said), artifacts without
/// `fresh`, and its lists of values widened to the current samples.
#[tokio::test]
async fn a_plugin_built_against_the_frozen_0_3_0_still_streams() {
    let runtime = PluginRuntime::new(SandboxLimits::default()).expect("engine");
    let streamed = runtime
        .load(&fixture_plugin("streamed-0-3"))
        .await
        .expect("the 0.3.0 plugin loads");
    assert_eq!(streamed.wit, WitVersion::V0_3);
    assert_eq!(
        streamed.reads,
        testmeter::plugin::conversions::Reads::default(),
        "its declared reads are kept"
    );
    let mut run = fixture_run("streamed-0-3", None);
    run.artifacts = vec![testmeter::model::Artifact {
        name: "results/old.json".to_owned(),
        content: b"{}".to_vec(),
        fresh: false,
    }];
    let parsed = parse_file(&repo_root().join(RERUNS), Format::Junit, Limits::default())
        .expect("fixture parses");
    let total_time: f64 = parsed
        .report
        .test_suites
        .iter()
        .flat_map(|s| &s.test_cases)
        .map(|c| c.time.map_or(0.0, |t| t.as_secs_f64()))
        .sum();
    let counts = counts();
    let samples = derive(&runtime, &streamed, &run).await.expect("derives");
    assert_outcomes(&samples, "streamed_cases", &counts);
    let sum = value(&samples, "streamed_duration_sum_seconds", &[]);
    assert!(
        (sum[0] - total_time).abs() < 1e-9,
        "{sum:?} vs {total_time}"
    );
    assert_eq!(
        value(&samples, "streamed_case_duration_seconds", &[]).len(),
        counts.tests
    );
    assert_eq!(value(&samples, "streamed_artifacts", &[]), [1.0]);
}
