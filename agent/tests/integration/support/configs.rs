//! Configs a test writes for itself, from the shipped examples.

use super::*;

/// `examples/testmeter.toml` as shipped, with only what a test must own replaced: the plugins
/// dir, `dir` as every suite's working dir (pytest is given the example's directory, so its
/// reports, results JSON and artifacts stay under `dir`, as `<suite>-junit.xml` and
/// `<suite>_results.json`), a suite interval of 1 h (one run per test), plus `extra` top-level
/// tables. Suites run `python3` from the venv.
pub fn example_config(dir: &Path, plugins_dir: &Path, extra: &str) -> PathBuf {
    let examples = repo_root().join("examples");
    let text = std::fs::read_to_string(examples.join("testmeter.toml")).expect("example config");
    let mut config: toml::Table = toml::from_str(&text).expect("example config parses");
    config.insert(
        "plugins_dir".into(),
        plugins_dir.display().to_string().into(),
    );
    config.remove("prometheus");
    config.remove("otlp");
    let suites = config
        .get_mut("suite")
        .and_then(|s| s.as_array_mut())
        .expect("[[suite]] tables");
    for suite in suites.iter_mut().filter_map(|s| s.as_table_mut()) {
        let example_dir = suite
            .get("working_dir")
            .and_then(|w| w.as_str())
            .map_or_else(|| examples.clone(), |w| examples.join(w));
        // The suite runs in `dir`, so what it writes (and its artifacts) stays there; pytest
        // is given the example's directory to collect.
        suite.insert("working_dir".into(), dir.display().to_string().into());
        if let Some(command) = suite.get_mut("command").and_then(|c| c.as_array_mut()) {
            command.push(example_dir.display().to_string().into());
        }
        suite.insert("interval".into(), "1h".into());
        // Each test's reports go under its own dir, so concurrent agents never share one.
        let name = suite
            .get("name")
            .and_then(|n| n.as_str())
            .unwrap_or("suite")
            .to_owned();
        if let Some(report) = suite
            .get("report")
            .and_then(|r| r.as_str())
            .map(str::to_owned)
        {
            let moved = dir.join(format!("{name}-junit.xml")).display().to_string();
            if let Some(command) = suite.get_mut("command").and_then(|c| c.as_array_mut()) {
                for arg in command.iter_mut() {
                    if arg.as_str() == Some(&format!("--junitxml={report}")) {
                        *arg = format!("--junitxml={moved}").into();
                    }
                }
            }
            suite.insert("report".into(), moved.into());
        }
        let results = format!("{name}_results.json");
        if let Some(env) = suite.get_mut("env").and_then(|e| e.as_table_mut()) {
            if env.contains_key("OSWORLD_RESULTS") {
                env.insert(
                    "OSWORLD_RESULTS".into(),
                    dir.join(&results).display().to_string().into(),
                );
                suite.insert("artifacts".into(), toml::Value::Array(vec![results.into()]));
            }
        }
    }
    let path = dir.join("testmeter.toml");
    let rendered = toml::to_string(&config).expect("render config");
    // Tables from `extra` go after the rendered top-level keys, where they cannot capture them.
    std::fs::write(&path, format!("{rendered}\n{extra}")).expect("write config");
    path
}

/// Writes a testmeter config for the osworld example suite that keeps its report and results
/// under `dir`, so test runs never write into the repo: the suite runs in `dir` (its artifacts
/// stay inside its working dir) and pytest is given the example's directory.
pub fn osworld_config(dir: &Path, plugins_dir: &Path, extra: &str) -> PathBuf {
    let example = repo_root().join("examples/osworld");
    let config = format!(
        r#"plugins_dir = {plugins:?}
{extra}
[[suite]]
name = "osworld"
system = "osworld"
command = [{python:?}, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "junit_family=xunit1", "--junitxml={junit}", {example:?}]
working_dir = {dir:?}
report = {junit:?}
artifacts = ["osworld_results.json"]
env = {{ OSWORLD_RESULTS = {results:?}, PYTHONDONTWRITEBYTECODE = "1" }}
timeout = "2m"
interval = "1h"
"#,
        plugins = plugins_dir.display().to_string(),
        python = venv_python().display().to_string(),
        example = example.display().to_string(),
        dir = dir.display().to_string(),
        junit = dir.join("junit.xml").display().to_string(),
        results = dir.join("osworld_results.json").display().to_string(),
    );
    let path = dir.join("testmeter.toml");
    std::fs::write(&path, config).expect("write config");
    path
}

/// A config in `dir` with `plugins_dir = "plugins"`, `/metrics` on `port`, and one suite
/// `name` of system `system` that runs the WaltzRL example's pytest every `interval`, writing
/// its report to `dir/<name>-junit.xml`. Returns the config path and the report path.
pub fn waltzrl_suite_config(
    dir: &Path,
    port: u16,
    name: &str,
    system: &str,
    interval: &str,
) -> (PathBuf, PathBuf) {
    let report = dir.join(format!("{name}-junit.xml"));
    let config = dir.join("testmeter.toml");
    std::fs::write(
        &config,
        format!(
            r#"plugins_dir = "plugins"
[prometheus]
listen = "127.0.0.1:{port}"

[[suite]]
name = {name:?}
system = {system:?}
command = [{python:?}, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--junitxml={report}"]
working_dir = {example:?}
report = {report:?}
env = {{ PYTHONDONTWRITEBYTECODE = "1" }}
interval = {interval:?}
"#,
            python = venv_python().display().to_string(),
            example = repo_root().join("examples/waltzrl").display().to_string(),
            report = report.display().to_string(),
        ),
    )
    .expect("write config");
    (config, report)
}

/// A config serving on `port` with `prometheus` added to its `[prometheus]` table, and one
/// suite `s` (no plugins) that copies the real pytest xunit2 report into place every
/// `interval`: the endpoint tests' agent.
pub fn endpoint_config(dir: &Path, port: u16, prometheus: &str, interval: &str) -> PathBuf {
    let fixture = repo_root().join("tests/fixtures/pytest/xunit2.xml");
    std::fs::create_dir_all(dir.join("plugins")).expect("plugins");
    let path = dir.join("testmeter.toml");
    std::fs::write(
        &path,
        format!(
            "plugins_dir = \"plugins\"\n[prometheus]\nlisten = \"127.0.0.1:{port}\"\n{prometheus}\n\n[[suite]]\nname = \"s\"\nsystem = \"none\"\ncommand = [\"cp\", {fixture:?}, \"report.xml\"]\nworking_dir = {dir:?}\nreport = \"report.xml\"\ninterval = {interval:?}\njitter = \"0s\"\n",
            fixture = fixture.display().to_string(),
            dir = dir.display().to_string(),
        ),
    )
    .expect("config");
    path
}
