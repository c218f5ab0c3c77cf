//! The osworld plugin, built from source as a real wasm component, on real pytest output
//! (`tests/fixtures/osworld/`, made by its `regenerate.sh`).

mod support;

use std::path::PathBuf;

use testmeter::model::{Artifact, SuiteRun};
use testmeter::plugin::{LoadedPlugin, PluginError, PluginRuntime, SandboxLimits};

fn fixture(name: &str) -> PathBuf {
    support::repo_root()
        .join("tests/fixtures/osworld")
        .join(name)
}

fn run_with(artifacts: Vec<Artifact>, peak_rss_bytes: Option<u64>) -> SuiteRun {
    let mut run = support::fixture_run("osworld", &fixture("junit.xml"), peak_rss_bytes);
    run.artifacts = artifacts;
    run
}

fn results_artifact(content: Vec<u8>) -> Artifact {
    Artifact {
        name: "results/osworld_results.json".to_owned(),
        content,
        fresh: true,
    }
}

async fn load() -> (PluginRuntime, LoadedPlugin) {
    support::load_bundled("osworld.wasm").await
}

use support::{assert_declared, sample_lines as lines};

#[tokio::test]
async fn declares_the_names_dashboards_query() {
    let (_runtime, plugin) = load().await;
    let declared: Vec<String> = plugin
        .decl
        .metrics
        .iter()
        .map(|m| {
            format!(
                "{} {} [{}] {{{}}} buckets={:?}",
                m.kind.as_str(),
                m.name,
                m.unit,
                m.label_keys.join(","),
                m.buckets
            )
        })
        .collect();
    insta::assert_yaml_snapshot!(declared);
    assert_eq!(plugin.decl.systems, vec!["osworld"]);
    let slos: Vec<String> = plugin
        .decl
        .slos
        .iter()
        .map(|s| {
            format!(
                "{} {} for {}s: {}",
                s.name, s.severity, s.for_seconds, s.expr
            )
        })
        .collect();
    insta::assert_yaml_snapshot!(slos);
}

#[tokio::test]
async fn derives_from_the_results_artifact() {
    let (runtime, plugin) = load().await;
    let content = std::fs::read(fixture("osworld_results.json")).expect("fixture");
    let results: serde_json::Value = serde_json::from_slice(&content).expect("json");
    let samples = support::derive(
        &runtime,
        &plugin,
        &run_with(vec![results_artifact(content)], Some(40_000_000)),
    )
    .await
    .expect("derives");
    assert_declared(&plugin, &samples);
    let overall = samples
        .iter()
        .find(|s| {
            s.metric == "genesis_osworld_success_rate"
                && s.labels == [("task_category".to_owned(), "all".to_owned())]
        })
        .expect("overall success rate");
    assert_eq!(
        overall.values,
        testmeter::catalog::SampleValues::Values(vec![
            results["success_rate"].as_f64().expect("rate") * 100.0
        ])
    );
    insta::assert_yaml_snapshot!(lines(&samples));
}

#[tokio::test]
async fn falls_back_to_test_outcomes_without_an_artifact() {
    let (runtime, plugin) = load().await;
    let samples = support::derive(&runtime, &plugin, &run_with(vec![], None))
        .await
        .expect("derives");
    assert_declared(&plugin, &samples);
    assert!(
        !samples
            .iter()
            .any(|s| s.metric == "genesis_osworld_memory_usage_bytes"),
        "no RSS measured and no artifact: the memory series is absent, not zero"
    );
    // 8 passed and 1 failed task; the skipped VM test is not a task.
    insta::assert_yaml_snapshot!(lines(&samples));
}

#[tokio::test]
async fn a_malformed_results_document_is_an_error_not_a_fallback() {
    let (runtime, plugin) = load().await;
    let bad = br#"{"detailed_results": [{"task_id": 1}], "success_rate": "high"}"#.to_vec();
    let error = support::derive(
        &runtime,
        &plugin,
        &run_with(vec![results_artifact(bad)], None),
    )
    .await
    .expect_err("malformed artifact");
    assert_eq!(error.reason(), "error");
    insta::assert_snapshot!(error.to_string());
}

#[tokio::test]
async fn a_corrupt_wasm_file_is_a_load_error_naming_the_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("corrupt.wasm");
    std::fs::write(&path, b"\0asm\x0d\x00\x01\x00garbage").expect("write");
    let runtime = PluginRuntime::new(SandboxLimits::default()).expect("engine");
    let error = runtime.load(&path).await.expect_err("corrupt");
    assert!(matches!(error, PluginError::Compile { .. }), "{error:?}");
    assert_eq!(error.reason(), "load");
    let message = error.to_string();
    assert!(
        message.starts_with(&format!("failed to compile plugin {}: ", path.display())),
        "{message}"
    );
}

/// The harness's memory figure is the only source of `genesis_osworld_memory_usage_bytes`:
/// a measured suite RSS is another quantity and never stands in for it.
#[tokio::test]
async fn memory_is_the_harness_figure_never_the_suite_rss() {
    let (runtime, plugin) = load().await;
    let content = std::fs::read(fixture("osworld_results.json")).expect("fixture");
    let results: serde_json::Value = serde_json::from_slice(&content).expect("json");
    let harness = results["memory_usage_bytes"]
        .as_f64()
        .expect("the example harness reports its memory");
    let memory = |samples: &[testmeter::catalog::Sample]| {
        samples
            .iter()
            .find(|s| s.metric == "genesis_osworld_memory_usage_bytes")
            .map(|s| s.values.clone())
    };
    let with_doc = support::derive(
        &runtime,
        &plugin,
        &run_with(vec![results_artifact(content)], Some(40_000_000)),
    )
    .await
    .expect("derives");
    assert_eq!(
        memory(&with_doc),
        Some(testmeter::catalog::SampleValues::Values(vec![harness]))
    );
    let without = support::derive(&runtime, &plugin, &run_with(vec![], Some(40_000_000)))
        .await
        .expect("derives");
    assert_eq!(
        memory(&without),
        None,
        "the suite's RSS is not the harness's memory"
    );
}

/// A results document of no tasks (the harness writes `success_rate: 0.0` for it) has no
/// success rate: a 0 would fire the rollback alert for a run that judged nothing.
#[tokio::test]
async fn an_empty_results_document_has_no_success_rate() {
    let (runtime, plugin) = load().await;
    let empty = std::fs::read(fixture("osworld_results_empty.json")).expect("fixture");
    let samples = support::derive(
        &runtime,
        &plugin,
        &run_with(vec![results_artifact(empty)], None),
    )
    .await
    .expect("derives");
    assert_declared(&plugin, &samples);
    let lines = lines(&samples);
    assert!(
        !lines
            .iter()
            .any(|l| l.starts_with("genesis_osworld_success_rate")),
        "{lines:?}"
    );
    assert!(
        lines.contains(&"genesis_osworld_tasks_passed{} 0".to_owned()),
        "{lines:?}"
    );
}
