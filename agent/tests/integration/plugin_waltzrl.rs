//! The waltzrl plugin, built from source as a real wasm component, on the real output of the
//! example WaltzRL suite (`tests/fixtures/waltzrl/`).

use quick_junit::{TestCaseStatus, XmlString};
use testmeter::model::SuiteRun;

use crate::support::{assert_declared, fixture_run, load_bundled, sample_lines};

fn run() -> SuiteRun {
    fixture_run(
        "waltzrl",
        &crate::support::repo_root().join("tests/fixtures/waltzrl/junit.xml"),
        None,
    )
}

async fn derive(run: &SuiteRun) -> Vec<String> {
    let (runtime, plugin) = load_bundled("waltzrl.wasm").await;
    let samples = crate::support::derive(&runtime, &plugin, run)
        .await
        .expect("derives");
    assert_declared(&plugin, &samples);
    sample_lines(&samples)
}

#[tokio::test]
async fn declares_the_names_the_deployed_dashboard_queries() {
    let (_runtime, plugin) = load_bundled("waltzrl.wasm").await;
    let names: Vec<String> = plugin
        .decl
        .metrics
        .iter()
        .map(|m| format!("{} {} {:?}", m.kind.as_str(), m.name, m.label_keys))
        .collect();
    insta::assert_yaml_snapshot!(names);
    assert_eq!(plugin.decl.slos.len(), 1);
    assert_eq!(plugin.decl.slos[0].expr, "genesis_test_pass_rate < 98");
}

#[tokio::test]
async fn derives_totals_and_the_per_module_breakdown() {
    insta::assert_yaml_snapshot!(derive(&run()).await);
}

#[tokio::test]
async fn every_test_skipped_means_nothing_passed() {
    let mut run = run();
    crate::support::edit_cases(&mut run, |case| {
        case.status = TestCaseStatus::Skipped {
            message: Some(XmlString::new("model server down")),
            ty: None,
            description: None,
        };
    });
    insta::assert_yaml_snapshot!(derive(&run).await);
}

#[tokio::test]
async fn an_empty_run_has_counts_but_no_pass_rate() {
    let mut run = run();
    let testmeter::model::ReportSource::Parsed(parsed) = &mut run.report.source else {
        panic!("the fixture run is parsed");
    };
    parsed.report.test_suites.clear();
    let lines = derive(&run).await;
    assert!(
        !lines
            .iter()
            .any(|l| l.starts_with("genesis_test_pass_rate")),
        "{lines:?}"
    );
    insta::assert_yaml_snapshot!(lines);
}
