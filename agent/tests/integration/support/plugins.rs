//! Plugins built fresh from source for the tests, and derivations run in-process the way the
//! agent runs them.

use super::*;

/// Builds the bundled plugins (and the hostile test fixture) from source for wasm32-wasip2, in a
/// target dir of their own so the nested build never waits on the lock of the `cargo test` that
/// runs us. Returns that target dir.
fn build_test_plugins() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let target_dir = repo_root().join("target/test-plugins");
        let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()))
            .current_dir(repo_root())
            .env("CARGO_TARGET_DIR", &target_dir)
            .args(["build", "--release", "--target", "wasm32-wasip2"])
            .args([
                "-p",
                "testmeter-plugin-osworld",
                "-p",
                "testmeter-plugin-langmem",
                "-p",
                "testmeter-plugin-waltzrl",
                "-p",
                "testmeter-plugin-hostile",
                "-p",
                "testmeter-plugin-legacy",
                "-p",
                "testmeter-plugin-whole-run",
                "-p",
                "testmeter-plugin-streamed-0-3",
                "-p",
                "testmeter-plugin-future-wit",
            ])
            .status()
            .expect("cargo runs");
        assert!(status.success(), "building the plugins failed");
        for (crate_file, dir, name) in [
            ("testmeter_plugin_osworld.wasm", "plugins", "osworld.wasm"),
            ("testmeter_plugin_langmem.wasm", "plugins", "langmem.wasm"),
            ("testmeter_plugin_waltzrl.wasm", "plugins", "waltzrl.wasm"),
            ("testmeter_plugin_hostile.wasm", "fixtures", "hostile.wasm"),
            ("testmeter_plugin_legacy.wasm", "fixtures", "legacy.wasm"),
            (
                "testmeter_plugin_whole_run.wasm",
                "fixtures",
                "whole-run.wasm",
            ),
            (
                "testmeter_plugin_streamed_0_3.wasm",
                "fixtures",
                "streamed-0-3.wasm",
            ),
            (
                "testmeter_plugin_future_wit.wasm",
                "fixtures",
                "future-wit.wasm",
            ),
        ] {
            let dir = target_dir.join(dir);
            std::fs::create_dir_all(&dir).expect("plugin dir");
            std::fs::copy(
                target_dir.join("wasm32-wasip2/release").join(crate_file),
                dir.join(name),
            )
            .expect("copy plugin");
        }
        target_dir
    })
}

/// A plugins dir holding the bundled plugins, freshly built from source.
pub fn built_plugins_dir() -> PathBuf {
    build_test_plugins().join("plugins")
}

/// A fresh `plugins/` dir under `dir` holding the freshly built osworld plugin.
pub fn plugins_dir_with_osworld(dir: &Path) -> PathBuf {
    let plugins = dir.join("plugins");
    std::fs::create_dir_all(&plugins).expect("mkdir plugins");
    std::fs::copy(
        built_plugins_dir().join("osworld.wasm"),
        plugins.join("osworld.wasm"),
    )
    .expect("copy the osworld plugin");
    plugins
}

/// The hostile fixture plugin (`tests/plugins/hostile`), kept out of the bundled plugins dir.
pub fn hostile_plugin() -> PathBuf {
    fixture_plugin("hostile")
}

/// A fixture plugin built from `tests/plugins/<name>`: `hostile`, `legacy` (built against the
/// frozen WIT 0.1.0) or `future-wit` (built against an unknown WIT version).
pub fn fixture_plugin(name: &str) -> PathBuf {
    build_test_plugins().join(format!("fixtures/{name}.wasm"))
}

/// Samples as `metric{k="v"} value` lines, one per value, in emission order, for snapshots; a
/// counted histogram is one line with its bucket counts, sum, min and max.
pub fn sample_lines(samples: &[testmeter::catalog::Sample]) -> Vec<String> {
    samples
        .iter()
        .flat_map(|s| {
            let labels: Vec<String> = s.labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
            let series = format!("{}{{{}}}", s.metric, labels.join(","));
            match &s.values {
                testmeter::catalog::SampleValues::Values(values) => values
                    .iter()
                    .map(|value| format!("{series} {value}"))
                    .collect::<Vec<_>>(),
                testmeter::catalog::SampleValues::Histogram(c) => vec![format!(
                    "{series} buckets={:?} count={} sum={} min={} max={}",
                    c.bucket_counts,
                    c.count(),
                    c.sum,
                    c.min,
                    c.max
                )],
            }
        })
        .collect()
}

/// Fails unless every sample passes the catalog built from the plugin's own declarations.
pub fn assert_declared(
    plugin: &testmeter::plugin::LoadedPlugin,
    samples: &[testmeter::catalog::Sample],
) {
    let mut catalog = testmeter::catalog::Catalog::default();
    assert_eq!(catalog.register(&plugin.decl), vec![]);
    for sample in samples {
        if let Err(rejection) = catalog.check(&plugin.decl.name, sample) {
            panic!("plugin emitted an undeclared sample: {rejection}");
        }
    }
}

/// Loads one of the bundled plugins, freshly built, into a runtime with default limits.
pub async fn load_bundled(
    file: &str,
) -> (
    testmeter::plugin::PluginRuntime,
    testmeter::plugin::LoadedPlugin,
) {
    let runtime =
        testmeter::plugin::PluginRuntime::new(testmeter::plugin::SandboxLimits::default())
            .expect("engine");
    let plugin = runtime
        .load(&built_plugins_dir().join(file))
        .await
        .unwrap_or_else(|e| panic!("{file} loads: {e}"));
    (runtime, plugin)
}

/// A run of `system` over a JUnit fixture, at a fixed time, as the agent would hand it over.
pub fn fixture_run(
    system: &str,
    junit: &Path,
    peak_rss_bytes: Option<u64>,
) -> testmeter::model::SuiteRun {
    testmeter::model::SuiteRun {
        suite: system.to_owned(),
        system: system.to_owned(),
        labels: std::collections::BTreeMap::new(),
        started: Some(std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)),
        duration: Some(Duration::from_millis(420)),
        exit_code: Some(1),
        peak_rss_bytes,
        partial: None,
        timed_out: None,
        status: Some("exit code 1".to_owned()),
        artifacts: Vec::new(),
        dropped_artifacts: Vec::new(),
        report: testmeter::model::RunReport::parsed(
            testmeter::parse::parse_file(
                junit,
                testmeter::parse::Format::Junit,
                testmeter::parse::Limits::default(),
            )
            .expect("fixture parses"),
        ),
    }
}

/// Applies `edit` to every case of a run whose report is already parsed.
pub fn edit_cases(
    run: &mut testmeter::model::SuiteRun,
    mut edit: impl FnMut(&mut quick_junit::TestCase),
) {
    let testmeter::model::ReportSource::Parsed(parsed) = &mut run.report.source else {
        panic!("the run's report is not parsed yet");
    };
    for suite in &mut parsed.report.test_suites {
        for case in &mut suite.test_cases {
            edit(case);
        }
    }
}

/// Derives `run` with one plugin, the way the agent does: its report streamed to the plugin
/// in batches.
pub async fn derive(
    runtime: &testmeter::plugin::PluginRuntime,
    plugin: &testmeter::plugin::LoadedPlugin,
    run: &testmeter::model::SuiteRun,
) -> Result<Vec<testmeter::catalog::Sample>, testmeter::plugin::PluginError> {
    testmeter::pipeline::reading::derive_one(runtime, plugin, run).await
}
