//! The sandbox against a real hostile component (`tests/plugins/hostile`): every attack fails
//! only its own call, with the right reason, and the osworld plugin beside it keeps deriving
//! the same values; escapes to files, environment and network find nothing; bad samples are
//! rejected and counted; a plugin that keeps failing is quarantined.

use std::collections::BTreeMap;
use std::path::Path;

use std::time::{Duration, SystemTime};

use crate::support::{built_plugins_dir, hostile_plugin, repo_root};
use testmeter::model::{ReportSource, RunReport, SuiteRun};
use testmeter::parse::{Format, Limits};
use testmeter::plugin::{PluginRuntime, SandboxLimits};

fn run_of(system: &str) -> SuiteRun {
    run_over(
        system,
        &repo_root().join("tests/fixtures/osworld/junit.xml"),
    )
}

/// A run of `system` over the report at `path`, streamed from the file as the agent does.
fn run_over(system: &str, path: &Path) -> SuiteRun {
    SuiteRun {
        suite: system.to_owned(),
        system: system.to_owned(),
        labels: BTreeMap::new(),
        started: Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)),
        duration: Some(Duration::from_millis(10)),
        exit_code: Some(1),
        peak_rss_bytes: Some(40_000_000),
        partial: None,
        timed_out: None,
        status: Some("exit code 1".to_owned()),
        artifacts: vec![],
        dropped_artifacts: vec![],
        report: RunReport {
            source: ReportSource::Files(vec![path.to_path_buf()]),
            format: Format::Junit,
            limits: Limits::default(),
        },
    }
}

#[tokio::test]
async fn a_plugin_over_its_declaration_budget_is_not_loaded() {
    let budget = |declarations| {
        PluginRuntime::new(SandboxLimits {
            declarations,
            ..SandboxLimits::default()
        })
        .expect("engine")
    };
    let defaults = SandboxLimits::default().declarations;
    let mut refused = Vec::new();
    for declarations in [
        testmeter::plugin::DeclarationLimits {
            max_metrics: 3,
            ..defaults
        },
        testmeter::plugin::DeclarationLimits {
            max_label_keys: 1,
            ..defaults
        },
        testmeter::plugin::DeclarationLimits {
            max_string_bytes: 20,
            ..defaults
        },
    ] {
        let Err(error) = budget(declarations).load(&hostile_plugin()).await else {
            panic!("loaded over its budget: {declarations:?}");
        };
        assert_eq!(error.reason(), "load");
        refused.push(error.to_string());
    }
    insta::assert_yaml_snapshot!(refused);
    budget(defaults)
        .load(&hostile_plugin())
        .await
        .expect("within the defaults");
}

#[tokio::test]
async fn each_attack_fails_only_its_own_call_and_the_runtime_keeps_serving() {
    let limits = SandboxLimits {
        max_samples: 10_000,
        ..SandboxLimits::default()
    };
    let runtime = PluginRuntime::new(limits).expect("engine");
    let hostile = runtime
        .load(&hostile_plugin())
        .await
        .expect("hostile loads");
    let osworld = runtime
        .load(&built_plugins_dir().join("osworld.wasm"))
        .await
        .expect("osworld loads");
    let baseline = crate::support::derive(&runtime, &osworld, &run_of("osworld"))
        .await
        .expect("osworld derives");
    let mut outcomes = Vec::new();
    for system in [
        "hostile-loop",
        "hostile-alloc",
        "hostile-panic",
        "hostile-recursion",
        "hostile-flood",
        "hostile-long-strings",
        "hostile-file",
        "hostile-env",
        "hostile-socket",
        "hostile-feed-loop",
        "hostile-feed-panic",
        "hostile-sleep",
        "hostile-feed-sleep",
        "hostile-handles",
    ] {
        let error = crate::support::derive(&runtime, &hostile, &run_of(system))
            .await
            .expect_err("every attack fails");
        let first_line = error
            .to_string()
            .lines()
            .next()
            .unwrap_or_default()
            .to_owned();
        outcomes.push(format!("{system}: [{}] {first_line}", error.reason()));
        let after = crate::support::derive(&runtime, &osworld, &run_of("osworld"))
            .await
            .expect("osworld still derives after the attack");
        assert_eq!(
            after, baseline,
            "osworld derives the same values after {system}"
        );
    }
    insta::assert_yaml_snapshot!(outcomes);
}

#[tokio::test]
async fn a_plugin_just_under_the_call_budget_on_every_batch_spends_the_derivation_budget() {
    // 10,000 cases are 20 batches; `hostile-slow` spends 300 ms of its 500 ms on each, so
    // only the derivation's budget stops it, after about five.
    let dir = tempfile::tempdir().expect("tempdir");
    let report = report_with_output(dir.path(), 10_000, 0);
    let runtime = PluginRuntime::new(SandboxLimits {
        derivation_timeout: Duration::from_millis(1500),
        ..SandboxLimits::default()
    })
    .expect("engine");
    let hostile = runtime
        .load(&hostile_plugin())
        .await
        .expect("hostile loads");
    let error = crate::support::derive(&runtime, &hostile, &run_over("hostile-slow", &report))
        .await
        .expect_err("the derivation runs out of time");
    assert_eq!(
        error.to_string(),
        "plugin hostile exceeded its 1.5s per-derivation time budget"
    );
    assert_eq!(error.reason(), "timeout");
    // The same plugin on a short run stays inside both budgets.
    let short = report_with_output(&dir.path().join("short"), 1_000, 0);
    crate::support::derive(&runtime, &hostile, &run_over("hostile-slow", &short))
        .await
        .expect("two batches fit the derivation budget");
}

/// A report whose cases each captured `output_bytes` of output, written into `dir`.
fn report_with_output(dir: &Path, cases: usize, output_bytes: usize) -> std::path::PathBuf {
    let output = "x".repeat(output_bytes);
    let mut xml = String::from("<testsuites><testsuite name=\"big\">");
    for i in 0..cases {
        xml.push_str(&format!(
            "<testcase classname=\"c\" name=\"t{i}\" time=\"0.001\"><system-out>{output}</system-out></testcase>"
        ));
    }
    xml.push_str("</testsuite></testsuites>");
    std::fs::create_dir_all(dir).expect("report dir");
    let path = dir.join("big.xml");
    std::fs::write(&path, xml).expect("write report");
    path
}

#[tokio::test]
async fn the_memory_limit_holds_over_a_whole_stream_not_just_one_batch() {
    // 40 MB of captured output in 20,000 cases: each batch (about a MiB) fits the default
    // 32 MiB limit, but a plugin that keeps everything it is fed does not.
    let dir = tempfile::tempdir().expect("tempdir");
    let report = report_with_output(dir.path(), 20_000, 2_000);
    let runtime = PluginRuntime::new(SandboxLimits::default()).expect("engine");
    let hostile = runtime
        .load(&hostile_plugin())
        .await
        .expect("hostile loads");
    let error = crate::support::derive(&runtime, &hostile, &run_over("hostile-hoard", &report))
        .await
        .expect_err("the hoard outgrows the limit");
    assert_eq!(error.reason(), "memory", "{error}");
    // A plugin that keeps nothing streams the same report within the same limit.
    let langmem = runtime
        .load(&built_plugins_dir().join("langmem.wasm"))
        .await
        .expect("langmem loads");
    let samples = crate::support::derive(&runtime, &langmem, &run_over("langmem", &report))
        .await
        .expect("a plugin that keeps nothing streams it");
    let total = samples
        .iter()
        .find(|s| s.metric == "genesis_langmem_tests_total")
        .expect("tests total");
    assert_eq!(
        total.values,
        testmeter::catalog::SampleValues::Values(vec![20_000.0])
    );
}

/// A suite that copies the real osworld JUnit fixture into place: cheap, and a real report.
fn copy_suite(name: &str, system: &str, dir: &Path) -> String {
    let fixture = repo_root().join("tests/fixtures/osworld/junit.xml");
    format!(
        "[[suite]]\nname = {name:?}\nsystem = {system:?}\ncommand = [\"cp\", {fixture:?}, \"{name}.xml\"]\nworking_dir = {dir:?}\njunit = \"{name}.xml\"\n\n",
        fixture = fixture.display().to_string(),
        dir = dir.display().to_string(),
    )
}

fn plugins_with_hostile(dir: &Path) -> std::path::PathBuf {
    let plugins = crate::support::plugins_dir_with_osworld(dir);
    std::fs::copy(hostile_plugin(), plugins.join("hostile.wasm")).expect("copy");
    plugins
}

#[test]
fn the_agent_contains_a_hostile_plugin_and_counts_what_it_did() {
    let dir = tempfile::tempdir().expect("tempdir");
    let plugins = plugins_with_hostile(dir.path());
    let port = crate::support::free_port();
    let mut config = format!(
        "plugins_dir = {:?}\n\n[prometheus]\nlisten = \"127.0.0.1:{port}\"\n\n[sandbox]\nmax_samples = 10000\nmax_series_per_metric = 100\nquarantine_after = 100\n\n",
        plugins.display().to_string()
    );
    config.push_str(&copy_suite("osworld", "osworld", dir.path()));
    let attacks = [
        "hostile-loop",
        "hostile-alloc",
        "hostile-panic",
        "hostile-recursion",
        "hostile-flood",
        "hostile-file",
        "hostile-undeclared",
        "hostile-cardinality",
        "hostile-clash",
        "hostile-forge",
        "hostile-log",
    ];
    for system in attacks {
        config.push_str(&copy_suite(system, system, dir.path()));
    }
    let config_path = dir.path().join("testmeter.toml");
    std::fs::write(&config_path, config).expect("write config");
    let (_agent, exposition) =
        crate::support::run_until_suites_ran(&config_path, port, attacks.len() + 1);
    let counted = crate::support::lines_starting_with(
        &exposition,
        &[
            "testmeter_plugin_errors_total{",
            "testmeter_samples_rejected_total{",
            "testmeter_plugin_quarantined{",
            "testmeter_plugin_log_lines_suppressed_total{",
            "genesis_osworld_tasks_total{",
            "genesis_osworld_tasks_passed ",
            "genesis_osworld_success_rate{task_category=\"all\"}",
        ],
    );
    insta::assert_yaml_snapshot!(counted);
    let hostile_series = exposition
        .lines()
        .filter(|l| l.starts_with("hostile_series{"))
        .count();
    assert_eq!(
        hostile_series, 100,
        "the series budget caps the label sets of one metric"
    );
    // The agent's own families hold only what the agent wrote.
    let forged: Vec<&str> = exposition
        .lines()
        .filter(|l| l.contains("forged") || l.starts_with("testmeter_total"))
        .collect();
    assert!(forged.is_empty(), "forged lines: {forged:?}");
    assert!(
        exposition
            .lines()
            .any(|l| l == "testmeter_plugin_quarantined{plugin=\"osworld\"} 0"),
        "osworld's quarantine gauge is the agent's"
    );
}

#[test]
fn a_plugin_that_keeps_failing_is_quarantined() {
    let dir = tempfile::tempdir().expect("tempdir");
    let plugins = plugins_with_hostile(dir.path());
    let mut config = format!(
        "plugins_dir = {:?}\n\n[sandbox]\nquarantine_after = 2\nquarantine_backoff = \"1h\"\n\n",
        plugins.display().to_string()
    );
    for name in ["first", "second", "third"] {
        config.push_str(&copy_suite(name, "hostile-panic", dir.path()));
    }
    config.push_str(&copy_suite("osworld", "osworld", dir.path()));
    let config_path = dir.path().join("testmeter.toml");
    std::fs::write(&config_path, config).expect("write config");
    let output = crate::support::testmeter_command(&config_path)
        .args(["once", "--config"])
        .arg(&config_path)
        .env("RUST_LOG", "off")
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .output()
        .expect("testmeter once runs");
    assert_eq!(
        output.status.code(),
        Some(1),
        "failed derivations make once exit 1"
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let plugin_lines: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("  plugin "))
        .map(|l| l.split(" next try in ").next().unwrap_or(l))
        .collect();
    insta::assert_yaml_snapshot!(plugin_lines);
}

/// `wasm` with a custom section appended: the same plugin, and the same declared name, in a
/// file that is not a copy.
fn with_custom_section(wasm: &[u8]) -> Vec<u8> {
    let name = b"testmeter-test";
    let payload = b"not a copy";
    let mut out = wasm.to_vec();
    out.push(0); // custom section
    let size = 1 + name.len() + payload.len();
    out.push(u8::try_from(size).expect("short section"));
    out.push(u8::try_from(name.len()).expect("short name"));
    out.extend_from_slice(name);
    out.extend_from_slice(payload);
    out
}

/// The names loaded from `dir` and the first line of each refusal, file names only.
async fn identities(agent: &testmeter::agent::Agent) -> Vec<String> {
    let loaded = agent.plugins();
    let set = &loaded.set;
    let file = |path: &Path| {
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    let mut lines: Vec<String> = set
        .plugins
        .iter()
        .map(|p| format!("loaded {} from {}", p.decl.name, file(&p.path)))
        .collect();
    for failure in &set.load_failures {
        let mut text = failure.error.to_string();
        for other in set
            .load_failures
            .iter()
            .map(|f| &f.path)
            .chain(set.plugins.iter().map(|p| &p.path))
        {
            text = text.replace(&other.display().to_string(), &file(other));
        }
        lines.push(format!(
            "refused {}: [{}] {text}",
            file(&failure.path),
            failure.error.reason()
        ));
    }
    lines
}

async fn agent_over(plugins: &Path) -> testmeter::agent::Agent {
    let text = format!(
        "plugins_dir = {:?}\n[sandbox]\ncompiled_cache = false\n[history]\nenabled = false\n",
        plugins.display().to_string()
    );
    let config = testmeter::config::Config::from_toml(&text, Path::new("test.toml"), plugins)
        .expect("config");
    testmeter::agent::Agent::start(config)
        .await
        .expect("agent starts")
}

#[tokio::test]
async fn one_file_holds_a_plugin_name_and_a_copy_or_an_impostor_takes_nothing() {
    let osworld = std::fs::read(built_plugins_dir().join("osworld.wasm")).expect("osworld");
    let mut outcomes = Vec::new();

    // A plain copy: the plugin keeps serving from the first file; the copy is refused.
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("osworld.wasm"), &osworld).expect("write");
    std::fs::write(dir.path().join("osworld-copy.wasm"), &osworld).expect("write");
    outcomes.push(("a copy", identities(&agent_over(dir.path()).await).await));

    // Two different files that call themselves osworld, at start: neither takes the name.
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("osworld.wasm"), &osworld).expect("write");
    std::fs::write(
        dir.path().join("a-impostor.wasm"),
        with_custom_section(&osworld),
    )
    .expect("write");
    outcomes.push((
        "two files, one name, at start",
        identities(&agent_over(dir.path()).await).await,
    ));

    // An impostor dropped in beside a running plugin: the plugin keeps its name.
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("osworld.wasm"), &osworld).expect("write");
    let agent = agent_over(dir.path()).await;
    std::fs::write(
        dir.path().join("a-impostor.wasm"),
        with_custom_section(&osworld),
    )
    .expect("write");
    // Written long enough ago not to be taken for a file still being copied in.
    let old = std::time::SystemTime::now() - Duration::from_secs(60);
    std::fs::File::options()
        .write(true)
        .open(dir.path().join("a-impostor.wasm"))
        .and_then(|f| f.set_modified(old))
        .expect("backdate");
    agent
        .pipeline
        .reload_plugins(std::time::Instant::now())
        .await;
    outcomes.push(("an impostor on reload", identities(&agent).await));

    insta::assert_yaml_snapshot!(outcomes);
}

#[tokio::test]
async fn invalid_slos_are_dropped_and_the_rule_file_passes_promtool_whatever_is_declared() {
    let dir = tempfile::tempdir().expect("tempdir");
    let plugins = dir.path().join("plugins");
    std::fs::create_dir(&plugins).expect("plugins dir");
    std::fs::copy(hostile_plugin(), plugins.join("hostile.wasm")).expect("copy");
    let agent = agent_over(&plugins).await;
    let loaded = agent.plugins();
    let set = &loaded.set;
    let hostile = set.plugins.first().expect("hostile still loads");
    let kept: Vec<&str> = hostile.decl.slos.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(kept, ["HostileRunsLow"]);
    let refused: Vec<String> = set
        .catalog_errors
        .iter()
        .filter(|e| matches!(e, testmeter::catalog::CatalogError::InvalidSlo { .. }))
        .map(ToString::to_string)
        .collect();
    insta::assert_yaml_snapshot!(refused);

    let contract = testmeter::contract::Contract::new(set, &agent.config().suites);
    let rules = testmeter::contract::alerts::generate(&contract);
    let path = dir.path().join("rules.yml");
    std::fs::write(&path, serde_yaml::to_string(&rules).expect("yaml")).expect("write");
    let check = std::process::Command::new("promtool")
        .arg("check")
        .arg("rules")
        .arg(&path)
        .output()
        .expect("promtool runs");
    assert!(
        check.status.success(),
        "promtool check rules: {}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
    // The summary's delimiters print as declared: a rule unit test sees the expanded text.
    let test = dir.path().join("test.yml");
    std::fs::write(
        &test,
        format!(
            "rule_files: [{path:?}]\nevaluation_interval: 1m\ntests:\n- interval: 1m\n  input_series:\n  - series: hostile_runs_total\n    values: 0x5\n  alert_rule_test:\n  - eval_time: 3m\n    alertname: HostileRunsLow\n    exp_alerts:\n    - exp_labels: {{severity: warning, plugin: hostile}}\n      exp_annotations:\n        summary: \"Hostile runs {{{{ low }}}}: {{{{ $value | unclosed\"\n        description: \"Hostile runs {{{{ low }}}}: {{{{ $value | unclosed: the value is 0 (hostile_runs_total < 1). Declared by the hostile plugin.\"\n",
            path = path.display().to_string()
        ),
    )
    .expect("write test");
    let test = std::process::Command::new("promtool")
        .arg("test")
        .arg("rules")
        .arg(&test)
        .output()
        .expect("promtool runs");
    assert!(
        test.status.success(),
        "promtool test rules: {}{}",
        String::from_utf8_lossy(&test.stdout),
        String::from_utf8_lossy(&test.stderr)
    );
}

/// The agent's stderr from `testmeter once` over one `hostile-log` run, in `format`.
fn log_of_hostile_log_run(format: &str) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let plugins = plugins_with_hostile(dir.path());
    let mut config = format!("plugins_dir = {:?}\n\n", plugins.display().to_string());
    config.push_str(&copy_suite("hostile-log", "hostile-log", dir.path()));
    let config_path = dir.path().join("testmeter.toml");
    std::fs::write(&config_path, config).expect("write config");
    let output = crate::support::testmeter_command(&config_path)
        .args(["once", "--log-format", format, "--config"])
        .arg(&config_path)
        .env("RUST_LOG", "info")
        .output()
        .expect("testmeter once runs");
    String::from_utf8(output.stderr).expect("utf-8 log")
}

#[test]
fn a_plugin_cannot_flood_or_forge_the_agents_log() {
    // Text: 10,000 lines, each with a newline, a carriage return and colour codes; 100 are
    // logged, each on one line, then one line says how many were suppressed.
    let text = log_of_hostile_log_run("text");
    let logged: Vec<&str> = text.lines().filter(|l| l.contains("forged line")).collect();
    assert_eq!(logged.len(), 100, "the per-derivation budget");
    assert!(
        logged
            .iter()
            .all(|l| l.contains("forged line") && l.contains("\\n2026-12-06T00:00:00.000000Z")),
        "the newline is escaped inside the plugin's line: {:?}",
        logged.first()
    );
    assert!(
        !text
            .lines()
            .any(|l| l.starts_with("2026-12-06T00:00:00.000000Z")),
        "no line starts with the forged timestamp"
    );
    assert!(
        !text.contains('\x1b') && !text.contains('\r'),
        "no raw escape or carriage return"
    );
    let suppressed: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("plugin log lines suppressed"))
        .collect();
    assert_eq!(suppressed.len(), 1, "{suppressed:?}");
    assert!(
        suppressed[0].contains("suppressed_lines=9900")
            && suppressed[0].contains("budget=\"per-derivation\""),
        "{}",
        suppressed[0]
    );
    // JSON: every line is one valid object; the plugin's newline is inside its string.
    let json = log_of_hostile_log_run("json");
    let events: Vec<serde_json::Value> = json
        .lines()
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("not one JSON object: {l:?}: {e}"))
        })
        .collect();
    let messages = events
        .iter()
        .filter_map(|e| e["fields"]["message"].as_str())
        .filter(|m| m.starts_with("forged line"))
        .count();
    assert_eq!(messages, 100);
}
