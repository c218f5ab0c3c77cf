//! WIT versioning with real components: a plugin built against the frozen
//! `testmeter:plugin@0.1.0` loads and derives beside plugins built against 0.2.0, and a
//! component built against a version the agent does not know is refused by name.

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use support::{built_plugins_dir, fixture_plugin, repo_root, sample_lines};
use testmeter::catalog::Sample;
use testmeter::model::SuiteRun;
use testmeter::parse::{parse_file, Format, Limits, Summary};
use testmeter::plugin::{PluginError, PluginRuntime, SandboxLimits, WitVersion};

fn fixture_run(partial: Option<&str>) -> SuiteRun {
    SuiteRun {
        suite: "legacy".to_owned(),
        system: "legacy".to_owned(),
        labels: BTreeMap::new(),
        started: SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000),
        duration: Duration::from_millis(10),
        exit_code: Some(1),
        peak_rss_bytes: None,
        report: parse_file(
            &repo_root().join("tests/fixtures/pytest/reruns.xml"),
            Format::Junit,
            Limits::default(),
        )
        .expect("fixture parses")
        .report,
        partial: partial.map(str::to_owned),
        artifacts: vec![],
    }
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
        .flat_map(|s| s.values.iter().copied())
        .collect()
}

#[tokio::test]
async fn a_plugin_built_against_the_frozen_0_1_0_loads_and_derives_beside_0_2_0_plugins() {
    let runtime = PluginRuntime::new(SandboxLimits::default()).expect("engine");
    let legacy = runtime
        .load(&fixture_plugin("legacy"))
        .await
        .expect("the 0.1.0 plugin loads");
    let osworld = runtime
        .load(&built_plugins_dir().join("osworld.wasm"))
        .await
        .expect("the 0.2.0 plugin loads");
    assert_eq!(legacy.wit, WitVersion::V0_1);
    assert_eq!(osworld.wit, WitVersion::V0_2);
    assert_eq!(legacy.decl.metrics.len(), 3);
    assert_eq!(legacy.decl.slos[0].name, "LegacyCasesFailing");

    let run = fixture_run(None);
    let counts = Summary::of(&run.report);
    let samples = runtime.derive(&legacy, &run).await.expect("derives");
    for (outcome, expected) in [
        ("passed", counts.passed),
        ("failed", counts.failed),
        ("errored", counts.errored),
        ("skipped", counts.skipped),
    ] {
        assert_eq!(
            value(&samples, "legacy_cases", &[("outcome", outcome)]),
            [expected as f64],
            "{outcome}"
        );
    }
    // 0.1.0 samples carry one value each; the host widens each to a one-value sample.
    let durations: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.metric == "legacy_case_duration_seconds")
        .collect();
    assert_eq!(durations.len(), counts.tests);
    assert!(durations.iter().all(|s| s.values.len() == 1));
    assert_eq!(value(&samples, "legacy_partial", &[]), [0.0]);
    insta::assert_yaml_snapshot!(sample_lines(&samples));

    // 0.2.0 has `suite-run.partial`; a 0.1.0 plugin still learns it from the suite property.
    let partial = runtime
        .derive(&legacy, &fixture_run(Some("timed out after 5s")))
        .await
        .expect("derives");
    assert_eq!(value(&partial, "legacy_partial", &[]), [1.0]);
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
