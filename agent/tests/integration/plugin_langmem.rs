//! The langmem plugin, built from source as a real wasm component, on the real output of the
//! example LangMem suite (`tests/fixtures/langmem/`, with captured logs in the report).

use quick_junit::{TestCaseStatus, XmlString};
use testmeter::model::SuiteRun;
use testmeter::plugin::LoadedPlugin;

use crate::support::{assert_declared, edit_cases, fixture_run, load_bundled, sample_lines};

fn run() -> SuiteRun {
    fixture_run(
        "langmem",
        &crate::support::repo_root().join("tests/fixtures/langmem/junit.xml"),
        Some(45_000_000),
    )
}

async fn derive(
    plugin: &LoadedPlugin,
    runtime: &testmeter::plugin::PluginRuntime,
    run: &SuiteRun,
) -> Vec<String> {
    let samples = crate::support::derive(runtime, plugin, run)
        .await
        .expect("derives");
    assert_declared(plugin, &samples);
    sample_lines(&samples)
}

#[tokio::test]
async fn declares_the_names_dashboards_and_alerts_query() {
    let (_runtime, plugin) = load_bundled("langmem.wasm").await;
    let metrics: Vec<String> = plugin
        .decl
        .metrics
        .iter()
        .map(|m| {
            format!(
                "{} {} [{}] {:?}",
                m.kind.as_str(),
                m.name,
                m.unit,
                m.label_keys
            )
        })
        .collect();
    insta::assert_yaml_snapshot!(metrics);
    let slos: Vec<String> = plugin
        .decl
        .slos
        .iter()
        .map(|s| {
            format!(
                "{} ({}, {}s): {}",
                s.name, s.severity, s.for_seconds, s.expr
            )
        })
        .collect();
    insta::assert_yaml_snapshot!(slos);
}

#[tokio::test]
async fn derives_every_series_from_the_logged_operations() {
    let (runtime, plugin) = load_bundled("langmem.wasm").await;
    insta::assert_yaml_snapshot!(derive(&plugin, &runtime, &run()).await);
}

#[tokio::test]
async fn without_captured_logs_only_the_recorded_properties_and_counts_remain() {
    let (runtime, plugin) = load_bundled("langmem.wasm").await;
    let mut run = run();
    edit_cases(&mut run, |case| {
        case.system_out = None;
        case.system_err = None;
    });
    insta::assert_yaml_snapshot!(derive(&plugin, &runtime, &run).await);
}

#[tokio::test]
async fn when_every_test_is_skipped_nothing_is_invented() {
    let (runtime, plugin) = load_bundled("langmem.wasm").await;
    let mut run = run();
    run.peak_rss_bytes = None;
    edit_cases(&mut run, |case| {
        case.status = TestCaseStatus::Skipped {
            message: Some(XmlString::new("store unavailable")),
            ty: None,
            description: None,
        };
        case.system_out = None;
        case.system_err = None;
        case.properties.clear();
    });
    insta::assert_yaml_snapshot!(derive(&plugin, &runtime, &run).await);
}

#[tokio::test]
async fn malformed_log_lines_leave_their_series_out_instead_of_miscounting() {
    let (runtime, plugin) = load_bundled("langmem.wasm").await;
    let mut run = run();
    // An ASCII arrow in one line, and counts that do not add up in another.
    let mut edited = 0;
    edit_cases(&mut run, |case| {
        if let Some(out) = &case.system_out {
            if edited < 2 && out.as_str().contains("Deduplication complete") {
                let text = if edited == 0 {
                    out.as_str().replacen('\u{2192}', "->", 1)
                } else {
                    out.as_str().replacen("(exact=", "(exact=9", 1)
                };
                case.system_out = Some(XmlString::new(text));
                edited += 1;
            }
        }
    });
    assert_eq!(edited, 2);
    let lines = derive(&plugin, &runtime, &run).await;
    assert!(
        !lines
            .iter()
            .any(|l| l.starts_with("genesis_langmem_dedup_rate")),
        "{lines:?}"
    );
    insta::assert_yaml_snapshot!(lines);
}

/// The operations a fixture project's store really performed, as it counted them itself.
#[derive(Debug, serde::Deserialize)]
struct Truth {
    dedup_passes: u64,
    input: u64,
    exact: u64,
    semantic: u64,
    ttl_cleanups: u64,
}

/// What one derivation says of the logged operations: `None` for a series left out.
#[derive(Debug, PartialEq)]
struct Counted {
    exact: Option<f64>,
    semantic: Option<f64>,
    cleanups: Option<f64>,
    latencies: Option<usize>,
    dedup_rate: Option<f64>,
}

fn counted(samples: &[testmeter::catalog::Sample]) -> Counted {
    let values = |metric: &str| -> Option<Vec<f64>> {
        let values: Vec<f64> = samples
            .iter()
            .filter(|s| s.metric == metric)
            .flat_map(|s| match &s.values {
                testmeter::catalog::SampleValues::Values(values) => values.clone(),
                testmeter::catalog::SampleValues::Histogram(_) => panic!("{metric} is counted"),
            })
            .collect();
        (!values.is_empty()).then_some(values)
    };
    let sum = |metric: &str| values(metric).map(|v| v.iter().sum());
    let observations: u64 = samples
        .iter()
        .filter(|s| s.metric == "genesis_langmem_dedup_latency_seconds")
        .map(|s| s.values.observations())
        .sum();
    Counted {
        exact: sum("genesis_langmem_exact_dedup_total"),
        semantic: sum("genesis_langmem_semantic_dedup_total"),
        cleanups: sum("genesis_langmem_ttl_cleanups_total"),
        latencies: (observations > 0).then_some(observations as usize),
        dedup_rate: values("genesis_langmem_dedup_rate").and_then(|v| v.last().copied()),
    }
}

/// Three real logging setups (a module logger with its own stderr handler that propagates,
/// `basicConfig` to stderr, a `dictConfig` with a stdout and a stderr handler), each under all
/// six `junit_logging` modes, run by the real pytest (`tests/fixtures/pytest-logging/`). Every
/// report that keeps any copy of the operations yields exactly the operations the project
/// counted itself; a report that keeps none leaves the series out.
#[tokio::test]
async fn every_logging_setup_and_junit_logging_mode_counts_each_operation_once() {
    let (runtime, plugin) = load_bundled("langmem.wasm").await;
    let dir = crate::support::repo_root().join("tests/fixtures/pytest-logging");
    let truth: Truth =
        serde_json::from_str(&std::fs::read_to_string(dir.join("truth.json")).expect("truth.json"))
            .expect("truth parses");
    let expected = Counted {
        exact: Some(truth.exact as f64),
        semantic: Some(truth.semantic as f64),
        cleanups: Some(truth.ttl_cleanups as f64),
        latencies: Some(truth.dedup_passes as usize),
        dedup_rate: Some(100.0 * (truth.exact + truth.semantic) as f64 / truth.input as f64),
    };
    let absent = Counted {
        exact: None,
        semantic: None,
        cleanups: None,
        latencies: None,
        dedup_rate: None,
    };
    let mut table = Vec::new();
    for setup in ["module-handler", "basicconfig", "dictconfig"] {
        for mode in ["all", "system-out", "system-err", "out-err", "log", "no"] {
            let path = dir.join(format!("{setup}-{mode}.xml"));
            let carries_operations = std::fs::read_to_string(&path)
                .expect("fixture")
                .contains("Deduplication complete");
            let samples =
                crate::support::derive(&runtime, &plugin, &fixture_run("langmem", &path, None))
                    .await
                    .expect("derives");
            assert_declared(&plugin, &samples);
            let got = counted(&samples);
            let want = if carries_operations {
                &expected
            } else {
                &absent
            };
            assert_eq!(&got, want, "{setup} under junit_logging={mode}");
            // No cache_size property in this project: no cache size, whatever its log says.
            assert!(
                !samples
                    .iter()
                    .any(|s| s.metric == "genesis_langmem_cache_size"),
                "{setup}/{mode}"
            );
            table.push(format!(
                "{setup} {mode}: {}",
                match got.exact {
                    Some(_) => format!(
                        "exact={:?} semantic={:?} cleanups={:?} passes={:?}",
                        got.exact, got.semantic, got.cleanups, got.latencies
                    ),
                    None => "no operations in the report".to_owned(),
                }
            ));
        }
    }
    insta::assert_yaml_snapshot!(table);
}

/// The configured capacity in LangMem's initialisation line is not a number of entries: a run
/// whose tests record no `cache_size` has no cache size, and a run whose suite records no
/// `memory_bytes` has no memory figure (the suite's peak RSS is the agent's own metric).
#[tokio::test]
async fn a_missing_source_leaves_its_series_out_instead_of_another_quantity() {
    let (runtime, plugin) = load_bundled("langmem.wasm").await;
    let mut run = run();
    let mut init_lines = 0;
    edit_cases(&mut run, |case| {
        case.properties
            .retain(|p| p.name.as_str() != "cache_size" && p.name.as_str() != "memory_bytes");
        if let Some(out) = &case.system_out {
            init_lines += out
                .as_str()
                .matches("LangMemDedup initialized with")
                .count();
        }
    });
    assert!(init_lines > 0, "the fixture logs the configured cache size");
    let lines = derive(&plugin, &runtime, &run).await;
    assert!(
        !lines
            .iter()
            .any(|l| l.starts_with("genesis_langmem_cache_size")
                || l.starts_with("genesis_langmem_memory_usage_mb")),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("genesis_langmem_exact_dedup_total")),
        "{lines:?}"
    );
}
