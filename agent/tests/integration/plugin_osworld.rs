//! The osworld plugin, built from source as a real wasm component, on real pytest output
//! (`tests/fixtures/osworld/`, made by its `regenerate.sh`).

use std::path::PathBuf;

use testmeter::model::{Artifact, SuiteRun};
use testmeter::plugin::{LoadedPlugin, PluginError, PluginRuntime, SandboxLimits};

fn fixture(name: &str) -> PathBuf {
    crate::support::repo_root()
        .join("tests/fixtures/osworld")
        .join(name)
}

fn run_with(artifacts: Vec<Artifact>, peak_rss_bytes: Option<u64>) -> SuiteRun {
    let mut run = crate::support::fixture_run("osworld", &fixture("junit.xml"), peak_rss_bytes);
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
    crate::support::load_bundled("osworld.wasm").await
}

use crate::support::{assert_declared, sample_lines as lines};

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
    let samples = crate::support::derive(
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
    let samples = crate::support::derive(&runtime, &plugin, &run_with(vec![], None))
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
    let error = crate::support::derive(
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
    let with_doc = crate::support::derive(
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
    let without = crate::support::derive(&runtime, &plugin, &run_with(vec![], Some(40_000_000)))
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
    let samples = crate::support::derive(
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

/// Every `result.txt` and `traj.jsonl` under `dir` as the artifacts a suite with
/// `artifacts = ["results/**/result.txt", "results/**/traj.jsonl"]` gets, named relative to
/// `dir`'s parent; `fresh` says which example dirs the run wrote.
fn tree_artifacts(dir: &std::path::Path, fresh: &dyn Fn(&str) -> bool) -> Vec<Artifact> {
    fn walk(dir: &std::path::Path, found: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("tree dir").flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, found);
            } else if matches!(
                path.file_name().and_then(|n| n.to_str()),
                Some("result.txt" | "traj.jsonl")
            ) {
                found.push(path);
            }
        }
    }
    let mut paths = Vec::new();
    walk(dir, &mut paths);
    paths.sort();
    let base = dir.parent().expect("parent");
    paths
        .into_iter()
        .map(|path| {
            let name = path
                .strip_prefix(base)
                .expect("under the fixture")
                .to_string_lossy()
                .replacen(
                    &dir.file_name()
                        .expect("name")
                        .to_string_lossy()
                        .into_owned(),
                    "results",
                    1,
                );
            Artifact {
                fresh: fresh(&name),
                content: std::fs::read(&path).expect("artifact"),
                name,
            }
        })
        .collect()
}

/// The success rates `show_result.py` prints for a tree: the mean score of the examples with a
/// `result.txt`, overall and per domain, in percent.
fn show_result(artifacts: &[Artifact]) -> Vec<(String, f64)> {
    let mut by_domain: std::collections::BTreeMap<String, Vec<f64>> = Default::default();
    for artifact in artifacts.iter().filter(|a| a.name.ends_with("/result.txt")) {
        let parts: Vec<&str> = artifact.name.split('/').collect();
        let score: f64 = String::from_utf8_lossy(&artifact.content)
            .trim()
            .parse()
            .expect("a number");
        by_domain
            .entry(parts[parts.len() - 3].to_owned())
            .or_default()
            .push(score);
    }
    let mean = |scores: &[f64]| 100.0 * scores.iter().sum::<f64>() / scores.len() as f64;
    let all: Vec<f64> = by_domain.values().flatten().copied().collect();
    let mut rates = vec![("all".to_owned(), mean(&all))];
    rates.extend(by_domain.iter().map(|(d, s)| (d.clone(), mean(s))));
    rates
}

fn rates_of(samples: &[testmeter::catalog::Sample]) -> Vec<(String, f64)> {
    let mut rates: Vec<(String, f64)> = samples
        .iter()
        .filter(|s| s.metric == "genesis_osworld_success_rate")
        .map(|s| match &s.values {
            testmeter::catalog::SampleValues::Values(v) => (s.labels[0].1.clone(), v[0]),
            other => panic!("{other:?}"),
        })
        .collect();
    rates.sort_by(|a, b| (a.0 != "all", &a.0).cmp(&(b.0 != "all", &b.0)));
    rates
}

/// The upstream harness's results tree (`tests/fixtures/osworld-tree/`, written by a
/// miniature of its write path), read by a suite with `report = false`: success rates as
/// `show_result.py` computes them from the scores, over the whole tree; the tasks counter and
/// the steps histogram over what the run wrote only, so a resumed run is not counted twice.
#[tokio::test]
async fn derives_from_the_upstream_results_tree_and_counts_a_resumed_run_once() {
    let (runtime, plugin) = load().await;
    let dir = crate::support::repo_root().join("tests/fixtures/osworld-tree");
    let mut run = run_with(vec![], None);
    run.report.source = testmeter::model::ReportSource::None;

    // Run 1 wrote everything; one example crashed and has no result.txt.
    run.artifacts = tree_artifacts(&dir.join("after-run-1"), &|_| true);
    let first = crate::support::derive(&runtime, &plugin, &run)
        .await
        .expect("derives");
    assert_declared(&plugin, &first);
    assert_eq!(rates_of(&first), show_result(&run.artifacts));
    insta::assert_yaml_snapshot!("tree_after_run_1", lines(&first));

    // Run 2 resumed: only the example it finished is fresh.
    let resumed = std::fs::read_to_string(dir.join("resumed.txt")).expect("resumed.txt");
    let resumed: Vec<&str> = resumed.lines().collect();
    run.artifacts = tree_artifacts(&dir.join("results"), &|name| {
        resumed.iter().any(|example| name.starts_with(example))
    });
    let second = crate::support::derive(&runtime, &plugin, &run)
        .await
        .expect("derives");
    assert_declared(&plugin, &second);
    assert_eq!(rates_of(&second), show_result(&run.artifacts));
    let tasks: f64 = lines(&second)
        .iter()
        .filter(|l| l.starts_with("genesis_osworld_tasks_total"))
        .map(|l| {
            l.rsplit(' ')
                .next()
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0)
        })
        .sum();
    assert_eq!(
        tasks,
        resumed.len() as f64,
        "only the resumed examples are counted again"
    );
    insta::assert_yaml_snapshot!("tree_after_run_2", lines(&second));
}
