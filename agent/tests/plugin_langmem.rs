//! The langmem plugin, built from source as a real wasm component, on the real output of the
//! example LangMem suite (`tests/fixtures/langmem/`, with captured logs in the report).

mod support;

use quick_junit::{TestCaseStatus, XmlString};
use testmeter::model::SuiteRun;
use testmeter::plugin::LoadedPlugin;

use support::{assert_declared, edit_cases, fixture_run, load_bundled, sample_lines};

fn run() -> SuiteRun {
    fixture_run(
        "langmem",
        &support::repo_root().join("tests/fixtures/langmem/junit.xml"),
        Some(45_000_000),
    )
}

async fn derive(
    plugin: &LoadedPlugin,
    runtime: &testmeter::plugin::PluginRuntime,
    run: &SuiteRun,
) -> Vec<String> {
    let samples = support::derive(runtime, plugin, run)
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
