//! Shared helpers of the integration tests: the repo's paths, a freshly built plugin dir, the
//! Python venv, free loopback ports, and child processes that are stopped when dropped.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("agent/ has a parent")
        .to_path_buf()
}

/// A `testmeter` command for the config at `config`: its compiled-plugin cache lives beside
/// the config (never in the machine's real cache dir), and no ambient OTLP endpoint leaks in.
pub fn testmeter_command(config: &Path) -> Command {
    let mut command = Command::new(testmeter_bin());
    command
        .env(
            "XDG_CACHE_HOME",
            config.parent().unwrap_or(config).join("cache"),
        )
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .env_remove("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT");
    command
}

/// The testmeter binary built for this test run.
pub fn testmeter_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_testmeter"))
}

/// The Python venv made by `scripts/setup.sh` (override with TESTMETER_VENV).
pub fn venv() -> PathBuf {
    let venv = std::env::var_os("TESTMETER_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".venv"));
    assert!(
        venv.join("bin/python").exists(),
        "no Python venv at {}: run scripts/setup.sh first",
        venv.display()
    );
    venv
}

pub fn venv_python() -> PathBuf {
    venv().join("bin/python")
}

/// The rotel collector binary shipped in the `rotel` PyPI package.
pub fn rotel_agent() -> PathBuf {
    let lib = venv().join("lib");
    for entry in std::fs::read_dir(&lib).expect("venv lib dir") {
        let candidate = entry
            .expect("dir entry")
            .path()
            .join("site-packages/rotel/rotel-agent");
        if candidate.exists() {
            return candidate;
        }
    }
    panic!(
        "rotel-agent not found under {}: run scripts/setup.sh",
        lib.display()
    );
}

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

/// A port that was free on 127.0.0.1 a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind an ephemeral port")
        .local_addr()
        .expect("local addr")
        .port()
}

/// A child process that is sent SIGTERM, then SIGKILL, when dropped.
pub struct Guard {
    pub name: &'static str,
    pub child: Child,
}

impl Guard {
    pub fn spawn(name: &'static str, command: &mut Command) -> Self {
        let child = command
            .stdin(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("failed to start {name}: {e}"));
        Self { name, child }
    }

    /// Sends SIGTERM and waits up to `grace` for the exit status.
    pub fn terminate(&mut self, grace: Duration) -> Option<std::process::ExitStatus> {
        // SAFETY: kill has no memory-safety preconditions.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        if self.terminate(Duration::from_secs(5)).is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Polls `probe` until it returns Some or `timeout` passes.
pub fn wait_for<T>(what: &str, timeout: Duration, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = probe() {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Starts `testmeter run` on `config` with its output discarded, waits until `suites` suites
/// have each run once (each has a `testmeter_suite_runs_total` series on `/metrics` at
/// `port`), and returns the running agent with that exposition.
pub fn run_until_suites_ran(config: &Path, port: u16, suites: usize) -> (Guard, String) {
    let agent = Guard::spawn(
        "testmeter run",
        testmeter_command(config)
            .args(["run", "--config"])
            .arg(config)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    let url = format!("http://127.0.0.1:{port}/metrics");
    let exposition = wait_for(
        &format!("{suites} suites to have run"),
        Duration::from_secs(60),
        || {
            let body = scrape(&url)?;
            let runs = body
                .lines()
                .filter(|l| l.starts_with("testmeter_suite_runs_total{"))
                .count();
            (runs == suites).then_some(body)
        },
    );
    (agent, exposition)
}

/// The exposition lines that start with one of `prefixes`, sorted, for snapshots.
pub fn lines_starting_with<'a>(exposition: &'a str, prefixes: &[&str]) -> Vec<&'a str> {
    let mut lines: Vec<&str> = exposition
        .lines()
        .filter(|line| prefixes.iter().any(|p| line.starts_with(p)))
        .collect();
    lines.sort_unstable();
    lines
}

/// The body of a GET to `url`, or None while the server is not answering.
pub fn scrape(url: &str) -> Option<String> {
    ureq::get(url).call().ok()?.body_mut().read_to_string().ok()
}

/// The value of the first exposition line starting with `prefix` (a name and its labels).
pub fn exposition_value(exposition: &str, prefix: &str) -> Option<f64> {
    exposition
        .lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit_once(' '))
        .and_then(|(_, v)| v.parse().ok())
}

/// Runs of a suite in `testmeter_suite_runs_total`, whatever their result.
pub fn suite_runs(exposition: &str, suite: &str) -> f64 {
    exposition
        .lines()
        .filter(|l| {
            l.starts_with("testmeter_suite_runs_total{")
                && l.contains(&format!("suite=\"{suite}\""))
        })
        .filter_map(|l| l.rsplit_once(' ').and_then(|(_, v)| v.parse::<f64>().ok()))
        .sum()
}

/// Removes ANSI colour codes.
pub fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// A real rotel OTLP collector on loopback that logs every metric it receives to a file.
pub struct Rotel {
    pub grpc_port: u16,
    pub http_port: u16,
    log: PathBuf,
    _guard: Guard,
}

impl Rotel {
    pub fn start(dir: &Path) -> Self {
        Self::start_on(dir, free_port(), free_port(), "rotel")
    }

    /// A collector on given ports, logging to `<dir>/<name>.log`: a second one can take over
    /// the ports of one that was stopped.
    pub fn start_on(dir: &Path, grpc_port: u16, http_port: u16, name: &str) -> Self {
        let log = dir.join(format!("{name}.log"));
        let out = std::fs::File::create(&log).expect("rotel log");
        let guard = Guard::spawn(
            "rotel-agent",
            Command::new(rotel_agent())
                .args(["start", "--otlp-grpc-endpoint"])
                .arg(format!("127.0.0.1:{grpc_port}"))
                .arg("--otlp-http-endpoint")
                .arg(format!("127.0.0.1:{http_port}"))
                .args([
                    "--exporter",
                    "blackhole",
                    "--debug-log",
                    "metrics",
                    "--debug-log-verbosity",
                    "detailed",
                ])
                .arg("--pid-file")
                .arg(dir.join(format!("{name}.pid")))
                .stdout(out.try_clone().expect("clone log handle"))
                .stderr(out),
        );
        let rotel = Self {
            grpc_port,
            http_port,
            log,
            _guard: guard,
        };
        wait_for("rotel to listen", Duration::from_secs(20), || {
            std::net::TcpStream::connect(("127.0.0.1", grpc_port)).ok()?;
            std::net::TcpStream::connect(("127.0.0.1", http_port)).ok()
        });
        rotel
    }

    /// What rotel printed so far, without colours.
    pub fn output(&self) -> String {
        strip_ansi(&std::fs::read_to_string(&self.log).unwrap_or_default())
    }

    /// Waits until every one of `expected` has arrived; returns all names received by then.
    pub fn wait_for_metrics(&self, expected: &[&str]) -> Vec<String> {
        wait_for(
            "the collector to receive the metrics",
            Duration::from_secs(30),
            || {
                let names = self.metric_names();
                expected
                    .iter()
                    .all(|m| names.iter().any(|n| n == m))
                    .then_some(names)
            },
        )
    }

    /// The latest value rotel received of every number series (gauges and sums) and of every
    /// histogram's `_count` and `_sum`, keyed `name{k="v",...}` with sorted attributes (the
    /// resource's and scope's left out), from its detailed debug log.
    pub fn values(&self) -> std::collections::BTreeMap<String, f64> {
        let mut values = std::collections::BTreeMap::new();
        let (mut name, mut attrs, mut in_attrs) = (String::new(), Vec::new(), false);
        let key = |name: &str, suffix: &str, attrs: &[String]| {
            let mut attrs = attrs.to_vec();
            attrs.sort();
            format!("{name}{suffix}{{{}}}", attrs.join(","))
        };
        for line in self.output().lines() {
            let line = line.trim();
            if let Some(rest) = line.strip_prefix("-> Name: ") {
                name = rest.to_owned();
            } else if line.starts_with("NumberDataPoints #")
                || line.starts_with("HistogramDataPoints #")
            {
                attrs.clear();
                in_attrs = false;
            } else if line == "Data point attributes:" {
                in_attrs = true;
            } else if let (true, Some(rest)) = (in_attrs, line.strip_prefix("-> ")) {
                if let Some((k, v)) = rest.split_once(": ") {
                    let v = v
                        .strip_prefix("Str(")
                        .and_then(|v| v.strip_suffix(')'))
                        .unwrap_or(v);
                    attrs.push(format!("{k}={v:?}"));
                }
            } else if line.starts_with("StartTimestamp: ") {
                in_attrs = false;
            } else if let Some(value) = line.strip_prefix("Value: ") {
                if let Ok(value) = value.parse() {
                    values.insert(key(&name, "", &attrs), value);
                }
            } else if let Some(count) = line.strip_prefix("Count: ") {
                if let Ok(count) = count.parse() {
                    values.insert(key(&name, "_count", &attrs), count);
                }
            } else if let Some(sum) = line.strip_prefix("Sum: ") {
                if let Ok(sum) = sum.parse() {
                    values.insert(key(&name, "_sum", &attrs), sum);
                }
            }
        }
        values
    }

    /// The metric names rotel received, sorted and deduplicated.
    pub fn metric_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .output()
            .lines()
            .filter_map(|line| line.trim().strip_prefix("-> Name: "))
            .map(str::to_owned)
            .collect();
        names.sort();
        names.dedup();
        names
    }
}

/// A real Prometheus server on loopback, scraping `target` every second.
pub struct Prometheus {
    pub port: u16,
    _guard: Guard,
}

impl Prometheus {
    pub fn start(dir: &Path, target: &str) -> Self {
        Self::start_with_job(
            dir,
            &format!(
                "  - job_name: testmeter\n    static_configs:\n      - targets: ['{target}']\n"
            ),
        )
    }

    /// A Prometheus scraping every second with one given scrape job (YAML under
    /// `scrape_configs:`).
    pub fn start_with_job(dir: &Path, job: &str) -> Self {
        let port = free_port();
        let config = dir.join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n{job}"
            ),
        )
        .expect("prometheus config");
        let log = std::fs::File::create(dir.join("prometheus.log")).expect("prometheus log");
        let guard = Guard::spawn(
            "prometheus",
            Command::new("prometheus")
                .arg(format!("--config.file={}", config.display()))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    dir.join("tsdb").display()
                ))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .stdout(log.try_clone().expect("clone log handle"))
                .stderr(log),
        );
        let prometheus = Self {
            port,
            _guard: guard,
        };
        wait_for("prometheus to be ready", Duration::from_secs(30), || {
            ureq::get(&format!("http://127.0.0.1:{port}/-/ready"))
                .call()
                .ok()
        });
        prometheus
    }

    /// Runs an instant query and returns its result vector.
    pub fn query(&self, promql: &str) -> Vec<serde_json::Value> {
        let body: serde_json::Value =
            ureq::get(&format!("http://127.0.0.1:{}/api/v1/query", self.port))
                .query("query", promql)
                .call()
                .expect("query prometheus")
                .body_mut()
                .read_json()
                .expect("json answer");
        assert_eq!(body["status"], "success", "query {promql} failed: {body}");
        body["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// The single value of an instant query, if the result has exactly one series.
    pub fn value(&self, promql: &str) -> Option<f64> {
        match self.query(promql).as_slice() {
            [one] => one["value"][1].as_str()?.parse().ok(),
            _ => None,
        }
    }

    /// Every metric name Prometheus has stored.
    pub fn names(&self) -> Vec<String> {
        let body: serde_json::Value = ureq::get(&format!(
            "http://127.0.0.1:{}/api/v1/label/__name__/values",
            self.port
        ))
        .call()
        .expect("label values")
        .body_mut()
        .read_json()
        .expect("json answer");
        body["data"]
            .as_array()
            .map(|names| {
                names
                    .iter()
                    .filter_map(|n| n.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }
}

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

/// PATH with the venv's bin first, so suites' `python3` is the one with pytest.
pub fn venv_path() -> std::ffi::OsString {
    let mut paths = vec![venv().join("bin")];
    paths.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    std::env::join_paths(paths).expect("PATH joins")
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
    testmeter::reading::derive_one(runtime, plugin, run).await
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

/// Text with the run time that ends a line of `testmeter once`'s closing table (`0.33s`)
/// replaced by `[TIME]`, for snapshots.
pub fn redact_run_times(text: &str) -> String {
    let lines: Vec<String> = text
        .lines()
        .map(|line| match line.rsplit_once("  ") {
            Some((head, time))
                if time
                    .strip_suffix('s')
                    .is_some_and(|t| t.contains('.') && t.parse::<f64>().is_ok()) =>
            {
                format!("{head}  [TIME]")
            }
            _ => line.to_owned(),
        })
        .collect();
    lines.join("\n")
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
