//! A new system needs no agent rebuild: a fourth plugin (`webarena`, its own name and metrics)
//! is made from `examples/plugin-template` after the agent binary exists, built for
//! wasm32-wasip2, dropped into a plugins dir, and a running agent exports its metrics from a
//! real pytest run.

use std::path::{Path, PathBuf};
use std::process::Command;

use testmeter::parse::{parse_file, Format, Limits, Summary};

/// The template copied to `dir` as the `webarena` plugin: its package, system and metric
/// names rewritten, the SDK dependency pointed back at this repository.
fn webarena_crate(dir: &Path) -> PathBuf {
    let template = crate::support::repo_root().join("examples/plugin-template");
    let crate_dir = dir.join("webarena-plugin");
    std::fs::create_dir_all(crate_dir.join("src")).expect("mkdir");
    let sdk = crate::support::repo_root().join("plugins/sdk");
    let manifest = std::fs::read_to_string(template.join("Cargo.toml"))
        .expect("template manifest")
        .replace("testmeter-plugin-template", "testmeter-plugin-webarena")
        .replace(
            "\"../../plugins/sdk\"",
            &format!("{:?}", sdk.display().to_string()),
        );
    std::fs::write(crate_dir.join("Cargo.toml"), manifest).expect("write manifest");
    std::fs::copy(template.join("Cargo.lock"), crate_dir.join("Cargo.lock")).expect("copy lock");
    let source = std::fs::read_to_string(template.join("src/lib.rs"))
        .expect("template source")
        .replace("\"template\"", "\"webarena\"")
        .replace("template_", "webarena_")
        .replace("TemplatePassRateLow", "WebArenaPassRateLow");
    std::fs::write(crate_dir.join("src/lib.rs"), source).expect("write source");
    crate_dir
}

/// Builds the crate for wasm32-wasip2 in the test plugins' target dir (shared compiled
/// dependencies, never the lock of the `cargo test` running us) and returns the component.
fn build(crate_dir: &Path) -> PathBuf {
    let target_dir = crate::support::repo_root().join("target/test-plugins");
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()))
        .current_dir(crate_dir)
        .env("CARGO_TARGET_DIR", &target_dir)
        .args(["build", "--release", "--target", "wasm32-wasip2"])
        .status()
        .expect("cargo runs");
    assert!(status.success(), "building the webarena plugin failed");
    target_dir.join("wasm32-wasip2/release/testmeter_plugin_webarena.wasm")
}

#[test]
fn a_plugin_built_after_the_agent_is_loaded_and_exported() {
    let agent = crate::support::testmeter_bin();
    let agent_before = std::fs::metadata(&agent)
        .and_then(|m| m.modified())
        .expect("agent binary");

    let dir = tempfile::tempdir().expect("tempdir");
    let component = build(&webarena_crate(dir.path()));
    let plugins = crate::support::plugins_dir_with_osworld(dir.path());
    std::fs::copy(&component, plugins.join("webarena.wasm")).expect("drop the plugin in");

    // A real suite for the new system: the WaltzRL example's pytest run.
    let port = crate::support::free_port();
    let (config, report) =
        crate::support::waltzrl_suite_config(dir.path(), port, "webarena", "webarena", "1h");
    let (_agent, exposition) = crate::support::run_until_suites_ran(&config, port, 1);

    let summary = Summary::of(
        &parse_file(&report, Format::Junit, Limits::default())
            .expect("report parses")
            .report,
    );
    let ran = summary.tests - summary.skipped;
    let expected = [
        format!(
            "webarena_pass_rate {}",
            100.0 * summary.passed as f64 / ran as f64
        ),
        format!("webarena_test_duration_seconds_count {ran}"),
        format!(
            "webarena_tests_total{{outcome=\"passed\"}} {}",
            summary.passed
        ),
        format!(
            "webarena_tests_total{{outcome=\"skipped\"}} {}",
            summary.skipped
        ),
    ];
    for line in &expected {
        assert!(
            exposition.lines().any(|l| l == line),
            "{line} missing from:\n{exposition}"
        );
    }
    assert!(exposition.contains("testmeter_plugin_info{plugin=\"webarena\""));

    // The template's optional sources: a case's `category` property (the real OSWorld
    // example run has one per task) and a `score.txt` artifact.
    std::fs::write(dir.path().join("score.txt"), "0.75\n").expect("score");
    let ingested = std::process::Command::new(&agent)
        .args(["ingest", "--system", "webarena", "--print", "--config"])
        .arg(&config)
        .arg("--artifact")
        .arg(dir.path().join("score.txt"))
        .arg(crate::support::repo_root().join("tests/fixtures/osworld/junit.xml"))
        .env("RUST_LOG", "off")
        .output()
        .expect("ingest runs");
    assert!(ingested.status.success(), "{ingested:?}");
    let printed = String::from_utf8_lossy(&ingested.stdout);
    let optional: Vec<&str> = printed
        .lines()
        .filter(|l| {
            l.starts_with("webarena_category_tests_total{") || l.starts_with("webarena_score ")
        })
        .collect();
    insta::assert_yaml_snapshot!(optional);
    assert_eq!(
        std::fs::metadata(&agent).and_then(|m| m.modified()).ok(),
        Some(agent_before),
        "the agent binary was not rebuilt"
    );
}
