//! The agent's TOML configuration: suites to run, the plugins dir, and where metrics go.
//!
//! Relative paths are resolved against the config file's directory (a suite's `report` path
//! against its working directory), so a config works from any current directory.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// Errors reading or validating a config file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("failed to read config {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to parse config {path}")]
    Parse {
        path: PathBuf,
        #[source]
        source: toml::de::Error,
    },
    #[error("invalid config {path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

/// The whole config file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Directory whose `*.wasm` files are loaded as plugins. Default: `plugins`.
    #[serde(default = "default_plugins_dir")]
    pub plugins_dir: PathBuf,
    /// The Prometheus `/metrics` endpoint.
    #[serde(default)]
    pub prometheus: PrometheusConfig,
    /// OTLP export. Absent: on only when `OTEL_EXPORTER_OTLP_ENDPOINT` (or the metrics-specific
    /// variable) is set.
    #[serde(default)]
    pub otlp: Option<OtlpConfig>,
    /// In `testmeter run`, watch the plugins dir and reload the plugin set when a `.wasm` file
    /// is added, replaced or removed. Default: true.
    #[serde(default = "default_true")]
    pub watch_plugins: bool,
    /// Limits and fail policy for plugins.
    #[serde(default)]
    pub sandbox: SandboxConfig,
    /// How long `testmeter run` waits, on SIGTERM or Ctrl-C, for running suites to finish
    /// before it kills them. Default: 30s.
    #[serde(default = "default_shutdown_grace", with = "bounded")]
    pub shutdown_grace: Duration,
    /// In `testmeter run`, how many suites may run at the same time. Default: the number of
    /// CPUs.
    #[serde(default = "default_max_concurrent_suites")]
    pub max_concurrent_suites: usize,
    /// The per-test history store.
    #[serde(default)]
    pub history: HistoryConfig,
    /// Spans of each run and its notable cases, to the OTLP collector (`docs/traces.md`).
    #[serde(default)]
    pub traces: TracesConfig,
    /// The suites to run, as `[[suite]]` tables.
    #[serde(default, rename = "suite")]
    pub suites: Vec<SuiteConfig>,
}

/// The per-test history: where runs are kept, for how long, and the rules that classify tests
/// (docs/history.md).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HistoryConfig {
    /// Record every run and classify its tests. Default: true.
    pub enabled: bool,
    /// The SQLite file. Default: `$XDG_STATE_HOME/testmeter/history.db`, else
    /// `$HOME/.local/state/testmeter/history.db`. One agent's own: never shared between
    /// machines.
    pub path: Option<PathBuf>,
    /// Runs kept per suite; older ones are deleted as new ones are recorded. Default: 500.
    pub keep_runs: usize,
    /// Runs older than this are deleted. Default: 90 days.
    #[serde(with = "bounded")]
    pub keep_for: Duration,
    /// Runs looked at for flips between passing and failing. Default: 20.
    pub flaky_window: usize,
    /// Flips within `flaky_window` that make a test flaky. Default: 3.
    pub flaky_flips: usize,
    /// Runs a test needs before flips or durations give a verdict. Default: 5.
    pub min_runs: usize,
    /// Runs in each of the two windows whose median durations are compared. Default: 5.
    pub slower_window: usize,
    /// Growth of the median duration, as a share, that makes a test slower. Default: 0.5.
    pub slower_share: f64,
    /// And the least growth. Default: 100ms.
    #[serde(with = "bounded")]
    pub slower_min: Duration,
}

/// `[traces]`: a span per suite run and child spans for its cases, sent to the collector
/// `[otlp]` names.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TracesConfig {
    /// Send spans when OTLP is on. `OTEL_TRACES_EXPORTER=none` also turns them off.
    /// Default: true.
    pub enabled: bool,
    /// Which cases get spans, for suites that do not say (`trace_cases`). Default: notable.
    pub cases: TraceCases,
    /// The slowest cases of a run that get spans under `notable`. Default: 5.
    pub slowest: usize,
    /// Case spans of one run, at most; the cut is counted. Default: 1,000.
    pub max_case_spans: usize,
    /// Spans the batch processor queues before it drops (and counts) more. Default: 4,096.
    pub queue: usize,
}

impl Default for TracesConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            cases: TraceCases::Notable,
            slowest: 5,
            max_case_spans: 1000,
            queue: 4096,
        }
    }
}

/// Which of a run's cases get a span of their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TraceCases {
    /// Every case.
    All,
    /// Failed, errored and flaky cases, and the slowest few.
    #[default]
    Notable,
    /// None: the run's span only.
    None,
}

impl Default for HistoryConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            path: None,
            keep_runs: 500,
            keep_for: Duration::from_secs(90 * 24 * 3600),
            flaky_window: 20,
            flaky_flips: 3,
            min_runs: 5,
            slower_window: 5,
            slower_share: 0.5,
            slower_min: Duration::from_millis(100),
        }
    }
}

/// The XDG base directory `variable` names, else `$HOME/<under_home>`; empty values are unset.
fn xdg_dir(variable: &str, under_home: &str) -> Option<PathBuf> {
    let env_dir = |name: &str| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    env_dir(variable).or_else(|| env_dir("HOME").map(|home| home.join(under_home)))
}

impl HistoryConfig {
    /// The store's file, if history is on and a path can be named.
    pub fn effective_path(&self) -> Option<PathBuf> {
        if !self.enabled {
            return None;
        }
        self.path.clone().or_else(|| {
            xdg_dir("XDG_STATE_HOME", ".local/state").map(|d| d.join("testmeter/history.db"))
        })
    }
}

fn default_shutdown_grace() -> Duration {
    Duration::from_secs(30)
}

fn default_max_concurrent_suites() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrometheusConfig {
    /// Listen address of `/metrics`. Default: 127.0.0.1:9464 (loopback only).
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// A web config file (exporter-toolkit style) with `tls_server_config` and
    /// `basic_auth_users`. Default: none, plain HTTP without auth.
    #[serde(default)]
    pub web_config: Option<PathBuf>,
    /// Most connections open at once; past it a new connection is closed at once and counted.
    /// Also kept at least 256 descriptors under the open-file limit, for suites and plugins.
    /// Default: 256.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Time a client has to send a request's headers, and most time a kept-alive connection
    /// waits idle for the next request. Default: 10s.
    #[serde(default = "default_header_read_timeout", with = "bounded")]
    pub header_read_timeout: Duration,
    /// Most time one connection may stay open; it is then closed after its current response.
    /// Default: 5m.
    #[serde(default = "default_max_connection_age", with = "bounded")]
    pub max_connection_age: Duration,
}

fn default_max_connections() -> usize {
    256
}

fn default_header_read_timeout() -> Duration {
    Duration::from_secs(10)
}

fn default_max_connection_age() -> Duration {
    Duration::from_secs(300)
}

impl Default for PrometheusConfig {
    fn default() -> Self {
        Self {
            listen: default_listen(),
            web_config: None,
            max_connections: default_max_connections(),
            header_read_timeout: default_header_read_timeout(),
            max_connection_age: default_max_connection_age(),
        }
    }
}

/// Limits on every plugin call, and what happens to a plugin that keeps failing.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SandboxConfig {
    /// Linear memory one plugin instance may use. Default: 32 MiB.
    pub memory_bytes: usize,
    /// Wall-clock budget of one `describe` or `derive` call. Default: 500ms.
    #[serde(with = "bounded")]
    pub timeout: Duration,
    /// Wall-clock budget of all the calls of one run's derivation together, so a plugin that
    /// spends just under `timeout` on every batch cannot hold a large run. Default: 30s.
    #[serde(with = "bounded")]
    pub derivation_timeout: Duration,
    /// Most values one `derive` may return, over all its samples. Default: 100000.
    pub max_samples: usize,
    /// Longest metric name, label key or label value in a sample, in bytes. Default: 1024.
    pub max_string_bytes: usize,
    /// Distinct label sets one metric may have; samples past it are rejected and counted.
    /// Default: 1000.
    pub max_series_per_metric: usize,
    /// A counter or gauge series that a suite's last this many successful derivations (by
    /// the plugin that wrote it) did not write ages out: it is no longer exported and no
    /// longer counts against `max_series_per_metric`. Default: 3.
    pub series_idle_runs: u64,
    /// Most metrics one plugin may declare; a plugin over it is not loaded. Default: 1000.
    pub max_metrics: usize,
    /// Most label keys one declared metric may have. Default: 32.
    pub max_label_keys: usize,
    /// Most buckets one declared histogram may have. Default: 256.
    pub max_buckets: usize,
    /// Most SLOs one plugin may declare. Default: 200.
    pub max_slos: usize,
    /// Longest string in a plugin's declarations (a name, description, unit, system, SLO
    /// expression or summary), in bytes. Default: 4096.
    pub max_declaration_bytes: usize,
    /// Lines one derivation (or one `describe`) may write through `host.log`; the rest are
    /// suppressed and counted. Default: 100.
    pub max_log_lines: u32,
    /// Bytes one derivation may write through `host.log`. Default: 65536.
    pub max_log_bytes: usize,
    /// Lines one plugin may write through `host.log` in a minute, over all its derivations.
    /// Default: 600.
    pub max_log_lines_per_minute: u32,
    /// Consecutive failed derivations after which a plugin is quarantined. Default: 5.
    pub quarantine_after: u32,
    /// First quarantine length; it doubles on each failed retry, up to one hour. Default: 60s.
    #[serde(with = "bounded")]
    pub quarantine_backoff: Duration,
    /// Keep compiled plugins on disk so later starts skip compilation. Default: true.
    pub compiled_cache: bool,
    /// Where compiled plugins are kept. Default: `$XDG_CACHE_HOME/testmeter/compiled`, else
    /// `$HOME/.cache/testmeter/compiled`. Must be private to the agent's user.
    pub cache_dir: Option<PathBuf>,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            memory_bytes: 32 * 1024 * 1024,
            timeout: Duration::from_millis(500),
            derivation_timeout: Duration::from_secs(30),
            max_samples: 100_000,
            max_string_bytes: 1024,
            max_series_per_metric: 1000,
            series_idle_runs: 3,
            max_metrics: 1000,
            max_label_keys: 32,
            max_buckets: 256,
            max_slos: 200,
            max_declaration_bytes: 4096,
            max_log_lines: 100,
            max_log_bytes: 64 * 1024,
            max_log_lines_per_minute: 600,
            quarantine_after: 5,
            quarantine_backoff: Duration::from_secs(60),
            compiled_cache: true,
            cache_dir: None,
        }
    }
}

/// The OTLP transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum OtlpProtocol {
    #[serde(rename = "grpc")]
    Grpc,
    #[serde(rename = "http/protobuf")]
    HttpProtobuf,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OtlpConfig {
    /// Set to false to turn OTLP off even when the environment configures it.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Collector base URL, e.g. `http://127.0.0.1:4317`. For http/protobuf, `/v1/metrics` is
    /// appended. Default: `OTEL_EXPORTER_OTLP_METRICS_ENDPOINT`, then
    /// `OTEL_EXPORTER_OTLP_ENDPOINT`, then the OTLP default for the protocol.
    pub endpoint: Option<String>,
    /// `grpc` or `http/protobuf`. Default: `OTEL_EXPORTER_OTLP_METRICS_PROTOCOL`, then
    /// `OTEL_EXPORTER_OTLP_PROTOCOL`, then `http/protobuf`.
    pub protocol: Option<OtlpProtocol>,
    /// How often metrics are pushed. Default: `OTEL_METRIC_EXPORT_INTERVAL`, then 60s.
    #[serde(default, deserialize_with = "bounded::option::deserialize")]
    pub interval: Option<Duration>,
    /// Per-export timeout. Default: `OTEL_EXPORTER_OTLP_TIMEOUT`, then 10s.
    #[serde(default, deserialize_with = "bounded::option::deserialize")]
    pub timeout: Option<Duration>,
}

/// One suite: a command that writes a JUnit report.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SuiteConfig {
    /// Unique name; becomes the `suite` label of the agent's own metrics.
    pub name: String,
    /// The system the suite measures; runs go to the plugins that handle it.
    pub system: String,
    /// Program and arguments, run without a shell.
    pub command: Vec<String>,
    /// Directory the command runs in. Default: the config file's directory.
    pub working_dir: Option<PathBuf>,
    /// Extra environment variables for the command.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Wall-time limit of one run; the suite's process group is killed after it.
    #[serde(default = "default_timeout", with = "bounded")]
    pub timeout: Duration,
    /// Time between runs in `testmeter run`.
    #[serde(default = "default_interval", with = "bounded")]
    pub interval: Duration,
    /// Most random delay added to each interval, so agents and suites with the same interval
    /// spread out. Default: a tenth of the interval, at most 30s.
    #[serde(default, deserialize_with = "bounded::option::deserialize")]
    pub jitter: Option<Duration>,
    /// Where the command writes its report (relative to the working dir); `junit` is accepted
    /// as an older name. Without it, the command's standard output is the report (pytest -v,
    /// cargo test, go test -json, TAP). `false`: the suite writes no report (a benchmark
    /// harness that writes only a results tree); each run is judged by its exit code and its
    /// plugins read its artifacts.
    #[serde(default, alias = "junit")]
    pub report: ReportSetting,
    /// The report's format: auto, junit, pytest-text, libtest, libtest-json, go-test-json or
    /// tap. `auto` detects it from the report's first bytes.
    #[serde(default)]
    pub format: testmeter_parse::Format,
    /// Largest report accepted (file or captured stdout); a larger one fails the run with a
    /// clear error instead of being read.
    #[serde(default = "default_max_report_bytes")]
    pub max_report_bytes: u64,
    /// Globs of files the suite writes that plugins may read, relative to the working dir and
    /// inside it (no absolute paths, no `..`); `**` matches any number of directories
    /// (`results/**/result.txt`).
    #[serde(default)]
    pub artifacts: Vec<String>,
    /// Largest artifact file handed to plugins; a larger one is dropped with a warning.
    #[serde(default = "default_artifact_max_bytes")]
    pub artifact_max_bytes: u64,
    /// Most artifact bytes handed to plugins from one run, over all files (in name order); a
    /// file past it is dropped with a warning.
    #[serde(default = "default_artifact_max_total_bytes")]
    pub artifact_max_total_bytes: u64,
    /// Whether only files written during the run are its artifacts (the default), so a stale
    /// file from an earlier run is never taken for this run's output. `false` for a harness
    /// that resumes, whose earlier files are part of each run's result.
    #[serde(default = "default_true")]
    pub artifacts_fresh: bool,
    /// Labels added to every sample derived from this suite's runs.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Whether to add `-o junit_logging=all` to a pytest command that writes a JUnit report
    /// and does not set `junit_logging` itself, so captured logs and output reach the report
    /// (plugins such as langmem read log lines there). `"auto"` (the default) adds it when a
    /// plugin of the suite's system reads captured output, `true` always, `false` never.
    #[serde(default)]
    pub pytest_junit_logging: JunitLogging,
    /// Which of its cases get spans: `"all"`, `"notable"` or `"none"`. Default: `[traces]`
    /// `cases`.
    #[serde(default)]
    pub trace_cases: Option<TraceCases>,
}

/// Where a suite's report is (`report` in its config).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ReportSetting {
    /// No `report`: the command's standard output is the report.
    #[default]
    Stdout,
    /// A file the command writes.
    File(PathBuf),
    /// `report = false`: the suite writes no report; runs are judged by their exit code.
    None,
}

impl ReportSetting {
    /// The report file, when the suite writes one.
    pub fn file(&self) -> Option<&Path> {
        match self {
            ReportSetting::File(path) => Some(path),
            ReportSetting::Stdout | ReportSetting::None => None,
        }
    }
}

impl<'de> Deserialize<'de> for ReportSetting {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Setting;
        impl serde::de::Visitor<'_> for Setting {
            type Value = ReportSetting;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a report path, or false for a suite that writes no report")
            }
            fn visit_bool<E: serde::de::Error>(self, value: bool) -> Result<ReportSetting, E> {
                if value {
                    Err(E::invalid_value(serde::de::Unexpected::Bool(true), &self))
                } else {
                    Ok(ReportSetting::None)
                }
            }
            fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<ReportSetting, E> {
                Ok(ReportSetting::File(PathBuf::from(value)))
            }
        }
        deserializer.deserialize_any(Setting)
    }
}

/// When the agent asks pytest to write captured output into its JUnit report
/// (`pytest_junit_logging`): writing it costs the suite time, so by default only when a
/// plugin reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum JunitLogging {
    /// When a plugin of the suite's system reads `system-out` or `system-err`.
    #[default]
    Auto,
    Always,
    Never,
}

impl JunitLogging {
    /// Whether to add the option, given whether a plugin of the suite reads captured output.
    pub fn wanted(self, plugins_read_output: bool) -> bool {
        match self {
            JunitLogging::Auto => plugins_read_output,
            JunitLogging::Always => true,
            JunitLogging::Never => false,
        }
    }
}

impl<'de> Deserialize<'de> for JunitLogging {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Choice;
        impl serde::de::Visitor<'_> for Choice {
            type Value = JunitLogging;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(r#"true, false or "auto""#)
            }
            fn visit_bool<E: serde::de::Error>(self, value: bool) -> Result<JunitLogging, E> {
                Ok(if value {
                    JunitLogging::Always
                } else {
                    JunitLogging::Never
                })
            }
            fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<JunitLogging, E> {
                match value {
                    "auto" => Ok(JunitLogging::Auto),
                    _ => Err(E::invalid_value(serde::de::Unexpected::Str(value), &self)),
                }
            }
        }
        deserializer.deserialize_any(Choice)
    }
}

fn default_plugins_dir() -> PathBuf {
    PathBuf::from("plugins")
}
fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9464))
}
fn default_true() -> bool {
    true
}
fn default_timeout() -> Duration {
    Duration::from_secs(600)
}
fn default_interval() -> Duration {
    Duration::from_secs(60)
}
fn default_max_report_bytes() -> u64 {
    testmeter_parse::DEFAULT_MAX_REPORT_BYTES
}
fn default_artifact_max_bytes() -> u64 {
    8 * 1024 * 1024
}
fn default_artifact_max_total_bytes() -> u64 {
    16 * 1024 * 1024
}

impl Config {
    /// Reads, parses, validates and resolves the paths of a config file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        // Paths in the config are relative to its directory, made absolute here: a bare file
        // name's directory is the current one, and a suite's working dir must name a real
        // directory whatever the agent's own current dir is later.
        let parent = path.parent().unwrap_or(Path::new(""));
        let base = match std::env::current_dir() {
            Ok(current) if parent.as_os_str().is_empty() => current,
            Ok(current) => current.join(parent),
            Err(_) => parent.to_path_buf(),
        };
        Self::from_toml(&text, path, &base)
    }

    /// Parses config text; `path` names it in errors and `base` resolves relative paths.
    pub fn from_toml(text: &str, path: &Path, base: &Path) -> Result<Self, ConfigError> {
        let mut config: Config = toml::from_str(text).map_err(|source| ConfigError::Parse {
            path: path.to_path_buf(),
            source,
        })?;
        config.validate().map_err(|message| ConfigError::Invalid {
            path: path.to_path_buf(),
            message,
        })?;
        config.resolve_paths(base);
        config
            .validate_artifacts()
            .map_err(|message| ConfigError::Invalid {
                path: path.to_path_buf(),
                message,
            })?;
        Ok(config)
    }

    /// Every artifact glob stays inside its suite's working dir (after `resolve_paths` made an
    /// absolute one inside it relative).
    fn validate_artifacts(&self) -> Result<(), String> {
        for suite in &self.suites {
            if let Some(pattern) = suite.artifacts.iter().find(|p| !is_inside_glob(p)) {
                return Err(format!(
                    "suite {:?}: artifact glob {pattern:?} must stay inside the suite's working dir {} (a relative glob, or an absolute one under that dir, with no `..`)",
                    suite.name,
                    suite.working_dir().display()
                ));
            }
        }
        Ok(())
    }

    fn validate(&self) -> Result<(), String> {
        let sandbox = &self.sandbox;
        if sandbox.memory_bytes < 1024 * 1024
            || sandbox.timeout.is_zero()
            || sandbox.derivation_timeout.is_zero()
            || sandbox.series_idle_runs == 0
            || sandbox.max_samples == 0
        {
            return Err(
                "sandbox: memory_bytes must be at least 1 MiB, timeout, derivation_timeout, series_idle_runs and max_samples above zero"
                    .to_owned(),
            );
        }
        let prometheus = &self.prometheus;
        if prometheus.max_connections == 0
            || prometheus.header_read_timeout.is_zero()
            || prometheus.max_connection_age.is_zero()
        {
            return Err(
                "prometheus: max_connections, header_read_timeout and max_connection_age must be above zero"
                    .to_owned(),
            );
        }
        if sandbox.quarantine_after == 0 {
            return Err("sandbox: quarantine_after must be at least 1".to_owned());
        }
        if self.max_concurrent_suites == 0 {
            return Err("max_concurrent_suites must be at least 1".to_owned());
        }
        let history = &self.history;
        if history.keep_runs == 0
            || history.flaky_window < 2
            || history.slower_window == 0
            || !(history.slower_share.is_finite() && history.slower_share >= 0.0)
        {
            return Err(
                "history: keep_runs and slower_window must be at least 1, flaky_window at least 2, slower_share a share of 0 or more"
                    .to_owned(),
            );
        }
        let mut names = BTreeSet::new();
        for suite in &self.suites {
            if !names.insert(suite.name.as_str()) {
                return Err(format!("suite name {:?} is used twice", suite.name));
            }
            if suite.command.is_empty() {
                return Err(format!("suite {:?} has an empty command", suite.name));
            }
            if suite.interval.is_zero() || suite.timeout.is_zero() {
                return Err(format!(
                    "suite {:?}: interval and timeout must be greater than zero",
                    suite.name
                ));
            }
            if suite.jitter() > suite.interval {
                return Err(format!(
                    "suite {:?}: jitter must not exceed the interval",
                    suite.name
                ));
            }
            if let Some(key) = suite.labels.keys().find(|k| !is_label_name(k)) {
                return Err(format!(
                    "suite {:?}: label {key:?} is not a valid Prometheus label name",
                    suite.name
                ));
            }
        }
        Ok(())
    }

    fn resolve_paths(&mut self, base: &Path) {
        self.plugins_dir = base.join(&self.plugins_dir);
        if let Some(web) = &self.prometheus.web_config {
            self.prometheus.web_config = Some(base.join(web));
        }
        if let Some(dir) = &self.sandbox.cache_dir {
            self.sandbox.cache_dir = Some(base.join(dir));
        }
        if let Some(path) = &self.history.path {
            self.history.path = Some(base.join(path));
        }
        for suite in &mut self.suites {
            let working_dir = match &suite.working_dir {
                Some(dir) => base.join(dir),
                None => base.to_path_buf(),
            };
            if let ReportSetting::File(report) = &suite.report {
                suite.report = ReportSetting::File(working_dir.join(report));
            }
            // An absolute glob under the working dir is the same glob, relative.
            for pattern in &mut suite.artifacts {
                if let Ok(inside) = Path::new(pattern.as_str()).strip_prefix(&working_dir) {
                    *pattern = inside.to_string_lossy().into_owned();
                }
            }
            suite.working_dir = Some(working_dir);
        }
    }
}

impl SandboxConfig {
    /// The compiled-plugin cache dir in use, if the cache is on and a dir can be named.
    pub fn effective_cache_dir(&self) -> Option<PathBuf> {
        if !self.compiled_cache {
            return None;
        }
        self.cache_dir
            .clone()
            .or_else(|| xdg_dir("XDG_CACHE_HOME", ".cache").map(|d| d.join("testmeter/compiled")))
    }
}

impl SuiteConfig {
    /// The most random delay added to each interval.
    pub fn jitter(&self) -> Duration {
        self.jitter
            .unwrap_or_else(|| (self.interval / 10).min(Duration::from_secs(30)))
    }

    /// A suite that is not run here: its reports come from another job (`testmeter ingest`).
    pub fn ingested(name: &str, system: &str, labels: BTreeMap<String, String>) -> Self {
        SuiteConfig {
            name: name.to_owned(),
            system: system.to_owned(),
            command: Vec::new(),
            working_dir: None,
            env: BTreeMap::new(),
            timeout: default_timeout(),
            interval: default_interval(),
            jitter: None,
            report: ReportSetting::Stdout,
            format: testmeter_parse::Format::Auto,
            max_report_bytes: default_max_report_bytes(),
            artifacts: Vec::new(),
            artifact_max_bytes: default_artifact_max_bytes(),
            artifact_max_total_bytes: default_artifact_max_total_bytes(),
            artifacts_fresh: true,
            labels,
            pytest_junit_logging: JunitLogging::Auto,
            trace_cases: None,
        }
    }

    /// The command to run: as configured, plus `-o junit_logging=all` for a pytest command
    /// that writes a JUnit report and does not choose its own `junit_logging`, when
    /// `pytest_junit_logging` wants it (`plugins_read_output`: a plugin of the suite's system
    /// reads captured output).
    pub fn argv(&self, plugins_read_output: bool) -> Vec<String> {
        let mut argv = self.command.clone();
        let is_pytest = argv.iter().enumerate().any(|(index, arg)| {
            let program = Path::new(arg)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            (index == 0 && (program == "pytest" || program == "py.test"))
                || (arg == "pytest" && index > 0 && argv[index - 1] == "-m")
        });
        let writes_junit = argv
            .iter()
            .any(|arg| arg.starts_with("--junitxml") || arg.starts_with("--junit-xml"));
        let chooses = argv.iter().any(|arg| arg.contains("junit_logging"));
        let wanted = self.pytest_junit_logging.wanted(plugins_read_output);
        if wanted && is_pytest && writes_junit && !chooses {
            argv.push("-o".to_owned());
            argv.push("junit_logging=all".to_owned());
        }
        argv
    }

    /// The resolved working directory.
    pub fn working_dir(&self) -> &Path {
        self.working_dir.as_deref().unwrap_or(Path::new("."))
    }
}

/// A glob that can only match inside the directory it is joined to: relative, with no `..`
/// component.
fn is_inside_glob(pattern: &str) -> bool {
    let path = Path::new(pattern);
    !pattern.is_empty()
        && path.is_relative()
        && !path
            .components()
            .any(|c| matches!(c, std::path::Component::ParentDir))
}

/// `[a-zA-Z_][a-zA-Z0-9_]*`, not starting with the reserved `__`.
pub fn is_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with("__")
}

/// The longest duration a config key accepts: ten years. A longer one is a typo or an
/// attack (`interval = "500000000000y"` overflowed the scheduler's clock arithmetic and a huge
/// `shutdown_grace` panicked `main` on SIGTERM); every deadline the agent computes from a value
/// within it stays far inside what its clocks can add.
// humantime's years are 365.25 days: this is its `10years`.
pub const MAX_DURATION: Duration = Duration::from_secs(315_576_000);

/// Durations in the config: humantime text (`30s`, `5m`, `1h 30m`), at most [`MAX_DURATION`].
/// A longer value is refused where it is read, so the error names the key and its line.
mod bounded {
    use std::time::Duration;

    use serde::Deserializer;

    use super::MAX_DURATION;

    fn check<E: serde::de::Error>(duration: Duration) -> Result<Duration, E> {
        if duration > MAX_DURATION {
            return Err(E::custom(format!(
                "{} is longer than the longest duration accepted, {}",
                humantime::format_duration(duration),
                humantime::format_duration(MAX_DURATION)
            )));
        }
        Ok(duration)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        check(humantime_serde::deserialize(deserializer)?)
    }

    /// The same, for a key that may be left out.
    pub mod option {
        use std::time::Duration;

        use serde::Deserializer;

        pub fn deserialize<'de, D: Deserializer<'de>>(
            deserializer: D,
        ) -> Result<Option<Duration>, D::Error> {
            let duration: Option<Duration> = humantime_serde::deserialize(deserializer)?;
            duration.map(super::check).transpose()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::from_toml(text, Path::new("t.toml"), Path::new("/base"))
    }

    #[test]
    fn resolves_paths_against_config_dir() {
        let config = parse(
            r#"
            [[suite]]
            name = "a"
            system = "osworld"
            command = ["pytest"]
            working_dir = "examples/a"
            junit = "out/junit.xml"
            "#,
        )
        .expect("valid config");
        assert_eq!(config.plugins_dir, Path::new("/base/plugins"));
        assert_eq!(
            config.suites[0].working_dir(),
            Path::new("/base/examples/a")
        );
        assert_eq!(
            config.suites[0].report.file(),
            Some(Path::new("/base/examples/a/out/junit.xml"))
        );
        assert_eq!(config.prometheus.listen.to_string(), "127.0.0.1:9464");
        assert!(config.otlp.is_none());
    }

    #[test]
    fn unknown_key_is_an_error_naming_the_key_and_path() {
        let error = parse("plugin_dir = \"x\"\n").expect_err("unknown key");
        assert_eq!(error.to_string(), "failed to parse config t.toml");
        let cause = std::error::Error::source(&error).map(ToString::to_string);
        assert!(
            cause
                .as_deref()
                .is_some_and(|c| c.contains("unknown field `plugin_dir`")),
            "{cause:?}"
        );
    }

    #[test]
    fn absurd_durations_are_refused_with_their_key_and_line() {
        let cause = |text: &str| {
            let error = parse(text).expect_err("refused");
            std::error::Error::source(&error)
                .map(ToString::to_string)
                .unwrap_or_default()
        };
        let interval = cause(
            "[[suite]]\nname = \"s\"\nsystem = \"osworld\"\ncommand = [\"true\"]\ninterval = \"500000000000y\"\n",
        );
        insta::assert_snapshot!(interval, @r#"
        TOML parse error at line 5, column 12
          |
        5 | interval = "500000000000y"
          |            ^^^^^^^^^^^^^^^
        500000000000years is longer than the longest duration accepted, 10years
        "#);
        let grace = cause("shutdown_grace = \"100000y\"\n");
        assert!(grace.contains("line 1"), "{grace}");
        assert!(
            grace.contains("longer than the longest duration accepted"),
            "{grace}"
        );
        let backoff = cause("[sandbox]\nquarantine_backoff = \"11y\"\n");
        assert!(backoff.contains("line 2"), "{backoff}");
        // Ten years is still a duration.
        parse("shutdown_grace = \"3650days\"\n").expect("at the bound");
    }

    #[test]
    fn pytest_commands_get_junit_logging_when_plugins_read_output_unless_they_choose() {
        let config = |command: &str, extra: &str| {
            let text =
                format!("[[suite]]\nname = \"a\"\nsystem = \"s\"\ncommand = {command}\n{extra}");
            parse(&text).map(|config| config.suites[0].clone())
        };
        let suite = |command: &str, extra: &str| config(command, extra).expect("valid config");
        let logged = ["-o".to_owned(), "junit_logging=all".to_owned()];
        let pytest = r#"["python3", "-m", "pytest", "--junitxml=j.xml"]"#;
        assert_eq!(suite(pytest, "").argv(true)[4..], logged);
        assert_eq!(
            suite(pytest, "").argv(false).len(),
            4,
            "no plugin reads output"
        );
        let argv = suite(r#"["/venv/bin/pytest", "--junitxml", "j.xml"]"#, "").argv(true);
        assert_eq!(argv[3..], logged);
        let chosen = r#"["pytest", "--junitxml=j.xml", "-o", "junit_logging=system-out"]"#;
        assert_eq!(suite(chosen, "").argv(true).len(), 4);
        assert_eq!(
            suite(r#"["pytest", "-v"]"#, "").argv(true).len(),
            2,
            "no JUnit report"
        );
        assert_eq!(suite(r#"["cargo", "test"]"#, "").argv(true).len(), 2);
        let never = suite(pytest, "pytest_junit_logging = false");
        assert_eq!(never.argv(true).len(), 4);
        let always = suite(pytest, "pytest_junit_logging = true");
        assert_eq!(always.argv(false)[4..], logged);
        let auto = suite(pytest, "pytest_junit_logging = \"auto\"");
        assert_eq!(auto.pytest_junit_logging, JunitLogging::Auto);
        let error = config(pytest, "pytest_junit_logging = \"yes\"").expect_err("not a choice");
        let cause = std::error::Error::source(&error).map(ToString::to_string);
        assert!(
            cause
                .as_deref()
                .is_some_and(|c| c.contains(r#"expected true, false or "auto""#)),
            "{cause:?}"
        );
    }

    #[test]
    fn duplicate_suite_names_are_rejected() {
        let suite =
            "[[suite]]\nname = \"a\"\nsystem = \"s\"\ncommand = [\"x\"]\njunit = \"j.xml\"\n";
        let error = parse(&format!("{suite}{suite}")).expect_err("duplicate");
        assert_eq!(
            error.to_string(),
            "invalid config t.toml: suite name \"a\" is used twice"
        );
    }

    #[test]
    fn report_false_means_no_report_and_true_is_an_error() {
        let suite = |report: &str| {
            parse(&format!(
                "[[suite]]\nname = \"a\"\nsystem = \"s\"\ncommand = [\"x\"]\n{report}"
            ))
        };
        let none = suite("report = false").expect("valid");
        assert_eq!(none.suites[0].report, ReportSetting::None);
        let stdout = suite("").expect("valid");
        assert_eq!(stdout.suites[0].report, ReportSetting::Stdout);
        let error = suite("report = true").expect_err("true names no report");
        let cause = std::error::Error::source(&error).map(ToString::to_string);
        assert!(
            cause.as_deref().is_some_and(|c| c
                .contains("expected a report path, or false for a suite that writes no report")),
            "{cause:?}"
        );
    }

    #[test]
    fn artifact_globs_stay_inside_the_working_dir() {
        let suite = |glob: &str| {
            parse(&format!(
                "[[suite]]\nname = \"a\"\nsystem = \"s\"\ncommand = [\"x\"]\nartifacts = [{glob:?}]\n"
            ))
        };
        let config = suite("results/**/result.txt").expect("valid");
        assert!(config.suites[0].artifacts_fresh);
        for outside in ["../secrets/*", "/proc/self/environ", "a/../../b", ""] {
            let error = suite(outside).expect_err(outside);
            assert_eq!(
                error.to_string(),
                format!("invalid config t.toml: suite \"a\": artifact glob {outside:?} must stay inside the suite's working dir /base (a relative glob, or an absolute one under that dir, with no `..`)")
            );
        }
        let absolute = suite("/base/results/*.json").expect("under the working dir");
        assert_eq!(absolute.suites[0].artifacts, ["results/*.json"]);
    }

    #[test]
    fn label_names_follow_prometheus_rules() {
        assert!(is_label_name("task_category"));
        assert!(!is_label_name("task-category"));
        assert!(!is_label_name("1abc"));
        assert!(!is_label_name("__name__"));
    }
}
