//! The metric contract end to end with the real binary and the bundled plugins: generated
//! dashboards (golden files, Grafana's own schema types through `tsc`, and a clean `check`),
//! generated alert rules (golden file, `promtool check rules` and `promtool test rules`), and
//! `check` on fixtures of every finding kind and on the source document's own files, and
//! `gate` failing closed.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::support::{built_plugins_dir, repo_root};

/// A config with the bundled plugins and the example suites' names, systems, intervals and
/// timeouts (the suites never run here).
fn config(dir: &Path) -> PathBuf {
    let mut text = format!(
        "plugins_dir = {:?}\n",
        built_plugins_dir().display().to_string()
    );
    for system in ["osworld", "langmem", "waltzrl"] {
        text.push_str(&format!(
            "\n[[suite]]\nname = \"{system}\"\nsystem = \"{system}\"\ncommand = [\"true\"]\ninterval = \"60s\"\ntimeout = \"2m\"\n"
        ));
    }
    let path = dir.join("testmeter.toml");
    std::fs::write(&path, text).expect("write config");
    path
}

fn testmeter(config: &Path, args: &[&str]) -> Output {
    crate::support::testmeter_command(config)
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("testmeter runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Runs `testmeter dashboards` into `dir/dashboards` and returns the files, sorted.
fn generate_dashboards(dir: &Path, config: &Path) -> Vec<PathBuf> {
    let out = dir.join("dashboards");
    let output = testmeter(
        config,
        &[
            "dashboards",
            "--config",
            &config.to_string_lossy(),
            "--out",
            &out.to_string_lossy(),
        ],
    );
    assert!(output.status.success(), "{output:?}");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&out)
        .expect("dashboards dir")
        .flatten()
        .map(|e| e.path())
        .collect();
    files.sort();
    files
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .expect("file name")
        .to_string_lossy()
        .into_owned()
}

#[test]
fn generated_dashboards_are_golden_and_use_only_declared_names() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = config(dir.path());
    let files = generate_dashboards(dir.path(), &config);
    let names: Vec<String> = files.iter().map(|f| file_name(f)).collect();
    assert_eq!(
        names,
        [
            "testmeter-langmem.json",
            "testmeter-osworld.json",
            "testmeter-overview.json",
            "testmeter-waltzrl.json"
        ]
    );
    for file in &files {
        let text = std::fs::read_to_string(file).expect("read dashboard");
        insta::assert_snapshot!(file_name(file), text);
    }
    // Every panel query passes `check`: declared names, declared labels, right kinds.
    let output = testmeter(
        &config,
        &[
            "check",
            "--config",
            &config.to_string_lossy(),
            &dir.path().join("dashboards").to_string_lossy(),
        ],
    );
    let report = stdout(&output);
    assert!(output.status.success(), "{report}");
    assert!(
        report.starts_with("0 finding(s) in 50 expression(s) of 4 file(s)"),
        "{report}"
    );
}

/// `tsc --noEmit --strict` over each dashboard as `<json> satisfies Dashboard`, with
/// `@grafana/schema` from `tests/grafana` (installed by scripts/setup.sh).
fn tsc(files: &[PathBuf]) -> Output {
    let grafana = repo_root().join("tests/grafana");
    Command::new(grafana.join("node_modules/.bin/tsc"))
        .current_dir(&grafana)
        .args([
            "--noEmit",
            "--strict",
            "--module",
            "commonjs",
            "--moduleResolution",
            "node",
            "--target",
            "es2020",
        ])
        .args(files)
        .output()
        .expect("tsc runs (scripts/setup.sh installs it into tests/grafana)")
}

/// The dashboard JSON as a TypeScript module that must satisfy Grafana's `Dashboard` type.
/// String enums cannot be written as JSON literals in TypeScript, so the one the dashboards
/// use (`ThresholdsMode`) is written as the enum member.
fn as_typescript(json: &str) -> String {
    assert!(json.contains("\"mode\": \"absolute\""));
    format!(
        "import {{ Dashboard, ThresholdsMode }} from '@grafana/schema';\n\nexport const dashboard = {} satisfies Dashboard;\n",
        json.replace("\"mode\": \"absolute\"", "\"mode\": ThresholdsMode.Absolute")
            .trim_end()
    )
}

#[test]
fn generated_dashboards_satisfy_grafanas_schema_types() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = config(dir.path());
    let out = repo_root().join("tests/grafana/generated");
    std::fs::create_dir_all(&out).expect("generated dir");
    let mut modules = Vec::new();
    for file in generate_dashboards(dir.path(), &config) {
        let json = std::fs::read_to_string(&file).expect("read");
        let module = out.join(file_name(&file).replace(".json", ".ts"));
        std::fs::write(&module, as_typescript(&json)).expect("write module");
        modules.push(module);
    }
    let output = tsc(&modules);
    assert!(
        output.status.success(),
        "tsc: {}{}",
        stdout(&output),
        String::from_utf8_lossy(&output.stderr)
    );
    // The check can fail: a dashboard whose schemaVersion is a string does not type-check.
    let broken = out.join("broken.ts");
    let module = std::fs::read_to_string(&modules[0]).expect("read module");
    assert!(module.contains("\"schemaVersion\": 39"));
    std::fs::write(
        &broken,
        module.replace("\"schemaVersion\": 39", "\"schemaVersion\": \"39\""),
    )
    .expect("write broken");
    let output = tsc(&[broken]);
    assert!(!output.status.success());
    assert!(
        stdout(&output).contains("error TS2322: Type 'string' is not assignable to type 'number'"),
        "{}",
        stdout(&output)
    );
}

#[test]
fn generated_alerts_are_golden_valid_and_fire_only_on_breaches() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = config(dir.path());
    let rules = dir.path().join("alerts.yml");
    let output = testmeter(
        &config,
        &[
            "alerts",
            "--config",
            &config.to_string_lossy(),
            "--out",
            &rules.to_string_lossy(),
        ],
    );
    assert!(output.status.success(), "{output:?}");
    insta::assert_snapshot!(std::fs::read_to_string(&rules).expect("read rules"));

    let check = Command::new("promtool")
        .args(["check", "rules"])
        .arg(&rules)
        .output()
        .expect("promtool runs");
    assert!(check.status.success(), "{check:?}");
    assert!(
        stdout(&check).contains("SUCCESS: 15 rules found"),
        "{}",
        stdout(&check)
    );

    let tests = dir.path().join("generated_rules_test.yml");
    std::fs::copy(
        repo_root().join("tests/alerts/generated_rules_test.yml"),
        &tests,
    )
    .expect("copy the rule tests");
    let test = Command::new("promtool")
        .args(["test", "rules"])
        .arg(&tests)
        .current_dir(dir.path())
        .output()
        .expect("promtool runs");
    assert!(
        test.status.success(),
        "{}{}",
        stdout(&test),
        String::from_utf8_lossy(&test.stderr)
    );
    // The tests can fail: with the dedup floor moved, the expected alerts no longer fire.
    let text = std::fs::read_to_string(&rules).expect("read rules");
    std::fs::write(
        &rules,
        text.replace(
            "genesis_langmem_dedup_rate < 20",
            "genesis_langmem_dedup_rate < 10",
        ),
    )
    .expect("write");
    let test = Command::new("promtool")
        .args(["test", "rules"])
        .arg(&tests)
        .current_dir(dir.path())
        .output()
        .expect("promtool runs");
    assert!(!test.status.success());
}

fn check_output(paths: &[&str], extra: &[&str]) -> (Output, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = config(dir.path());
    let root = repo_root();
    let mut args = vec![
        "check".to_owned(),
        "--config".to_owned(),
        config.to_string_lossy().into_owned(),
    ];
    args.extend(extra.iter().map(|a| (*a).to_owned()));
    args.extend(paths.iter().map(|p| (*p).to_owned()));
    let output = crate::support::testmeter_command(&config)
        .args(&args)
        .current_dir(&root)
        .env("RUST_LOG", "warn")
        .output()
        .expect("testmeter runs");
    let text = stdout(&output);
    (output, text)
}

#[test]
fn check_reports_every_finding_kind_with_file_place_and_expression() {
    let (output, text) = check_output(
        &[
            "tests/fixtures/check/dashboard.json",
            "tests/fixtures/check/rules.yml",
            "tests/fixtures/check/unloaded.yml",
        ],
        &["--scrape-config", "tests/fixtures/check/prometheus.yml"],
    );
    assert_eq!(output.status.code(), Some(1), "{text}");
    insta::assert_snapshot!(text);
    let (output, json) = check_output(
        &["tests/fixtures/check/dashboard.json"],
        &["--format", "json"],
    );
    assert_eq!(output.status.code(), Some(1));
    let value: serde_json::Value = serde_json::from_str(&json).expect("json");
    insta::assert_snapshot!(serde_json::to_string_pretty(&value).expect("json"));
}

#[test]
fn check_finds_the_real_problems_of_the_source_documents_files() {
    let (output, text) = check_output(
        &[
            "tests/fixtures/seed-monitoring/grafana_dashboard.json",
            "tests/fixtures/seed-monitoring/production_alerts.yml",
            "tests/fixtures/seed-monitoring/required_alerts.yml",
        ],
        &[
            "--scrape-config",
            "tests/fixtures/seed-monitoring/prometheus_config.yml",
        ],
    );
    assert_eq!(output.status.code(), Some(1), "{text}");
    insta::assert_snapshot!(text);
}

#[test]
fn gate_refuses_to_pass_without_data_and_names_unknown_slos() {
    let dir = tempfile::tempdir().expect("tempdir");
    // The suites run `true`: no report, so no samples.
    let config = config(dir.path());
    let output = testmeter(
        &config,
        &[
            "gate",
            "--config",
            &config.to_string_lossy(),
            "--slo",
            "OSWorldSuccessRateLow",
        ],
    );
    assert_eq!(output.status.code(), Some(1));
    let text = stdout(&output);
    assert!(
        text.contains("? OSWorldSuccessRateLow (critical, plugin osworld): unknown: the latest run produced no samples for it"),
        "{text}"
    );
    assert!(
        text.ends_with("gate: 1 SLO(s), 0 breached, 1 unknown: STOP (cannot decide)\n"),
        "{text}"
    );

    let output = testmeter(
        &config,
        &[
            "gate",
            "--config",
            &config.to_string_lossy(),
            "--slo",
            "NoSuchSlo",
        ],
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&output.stderr)
            .contains("error: no SLO named NoSuchSlo; declared: LangMemDedupRateLow,"),
        "{output:?}"
    );
}
