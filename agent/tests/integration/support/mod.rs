//! Shared helpers of the integration tests, split by what they support: the repo's paths and
//! the binary, free loopback ports, child processes stopped when dropped and waiting (here);
//! the Python venv (`python.rs`); freshly built plugins and in-process derivations
//! (`plugins.rs`); configs written for a test (`configs.rs`); reading an exposition
//! (`exposition.rs`); the real servers, rotel and Prometheus (`servers.rs`); and headless
//! Chromium (`browser.rs`).

#![allow(dead_code)]

mod browser;
mod configs;
mod exposition;
mod plugins;
mod python;
mod servers;

pub use browser::*;
pub use configs::*;
pub use exposition::*;
pub use plugins::*;
pub use python::*;
pub use servers::*;

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

/// A `testmeter` command for the config at `config`: its compiled-plugin cache and its history
/// store live beside the config (never in the machine's real cache and state dirs), and no
/// ambient OTLP endpoint or trace context leaks in.
pub fn testmeter_command(config: &Path) -> Command {
    let mut command = Command::new(testmeter_bin());
    command
        .env(
            "XDG_CACHE_HOME",
            config.parent().unwrap_or(config).join("cache"),
        )
        .env(
            "XDG_STATE_HOME",
            config.parent().unwrap_or(config).join("state-home"),
        )
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .env_remove("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT")
        .env_remove("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        .env_remove("TRACEPARENT");
    command
}

/// The testmeter binary built for this test run.
pub fn testmeter_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_testmeter"))
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
