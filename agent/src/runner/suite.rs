//! Executes one configured suite: clears its stale report, runs its command, parses the JUnit
//! report it wrote and collects its artifacts into a `SuiteRun`.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use crate::config::SuiteConfig;
use crate::model::SuiteRun;
use crate::parse::{parse_junit_file, ParseError};
use crate::runner::artifacts;
use crate::runner::process::{self, ProcessError, ProcessSpec};

/// Time a timed-out suite gets between SIGTERM and SIGKILL.
const KILL_GRACE: Duration = Duration::from_secs(5);

/// Why a suite run produced no report. Test failures are not errors: they are in the report.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Process(#[from] ProcessError),
    #[error("suite timed out after {timeout:?}")]
    Timeout { timeout: Duration },
    #[error("failed to clear the previous report {path}")]
    ClearReport {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("suite exited with {status} and wrote no report at {path}{}", stderr_note(.stderr_tail))]
    NoReport {
        path: PathBuf,
        status: String,
        stderr_tail: String,
    },
    #[error(transparent)]
    Report(#[from] ParseError),
}

impl RunError {
    /// Short, low-cardinality reason for the `testmeter_suite_runs_total{result}` label.
    pub fn reason(&self) -> &'static str {
        match self {
            RunError::Process(ProcessError::Spawn { .. }) => "spawn_error",
            RunError::Process(ProcessError::Wait { .. }) | RunError::ClearReport { .. } => "error",
            RunError::Timeout { .. } => "timeout",
            RunError::NoReport { .. } => "no_report",
            RunError::Report(_) => "parse_error",
        }
    }
}

/// Runs the suite once.
pub async fn execute(suite: &SuiteConfig) -> Result<SuiteRun, RunError> {
    match std::fs::remove_file(&suite.junit) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => {
            return Err(RunError::ClearReport {
                path: suite.junit.clone(),
                source,
            })
        }
    }
    if let Some(parent) = suite.junit.parent() {
        // A missing report directory would make every runner fail; create it like CI would.
        let _ = std::fs::create_dir_all(parent);
    }
    // File times can be coarser than the clock; allow for it when judging freshness.
    let started = SystemTime::now();
    let fresh_since = started - Duration::from_secs(1);
    let outcome = process::run(&ProcessSpec {
        argv: &suite.command,
        working_dir: suite.working_dir(),
        env: &suite.env,
        timeout: suite.timeout,
        kill_grace: KILL_GRACE,
    })
    .await?;
    if outcome.timed_out {
        return Err(RunError::Timeout {
            timeout: suite.timeout,
        });
    }
    if !suite.junit.exists() {
        let status = match (outcome.exit_code, outcome.signal) {
            (Some(code), _) => format!("exit code {code}"),
            (None, Some(signal)) => format!("signal {signal}"),
            (None, None) => "an unknown status".to_owned(),
        };
        return Err(RunError::NoReport {
            path: suite.junit.clone(),
            status,
            stderr_tail: last_lines(&outcome.stderr_tail, 5),
        });
    }
    let report = parse_junit_file(&suite.junit)?;
    let (artifacts, artifact_errors) = artifacts::collect(
        suite.working_dir(),
        &suite.artifacts,
        fresh_since,
        suite.artifact_max_bytes,
    );
    for error in artifact_errors {
        tracing::warn!(suite = suite.name, error = %crate::agent::error_chain(&error), "artifact skipped");
    }
    Ok(SuiteRun {
        suite: suite.name.clone(),
        system: suite.system.clone(),
        labels: suite.labels.clone(),
        started,
        duration: outcome.duration,
        exit_code: outcome.exit_code,
        peak_rss_bytes: outcome.peak_rss_bytes,
        report,
        artifacts,
    })
}

fn stderr_note(stderr_tail: &str) -> String {
    if stderr_tail.is_empty() {
        String::new()
    } else {
        format!("; stderr ends with: {stderr_tail}")
    }
}

fn last_lines(text: &str, count: usize) -> String {
    let lines: Vec<&str> = text.trim_end().lines().collect();
    lines[lines.len().saturating_sub(count)..].join("\n")
}
