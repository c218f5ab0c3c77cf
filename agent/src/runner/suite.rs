//! Executes one configured suite: clears its stale report, runs its command, parses the
//! report it wrote (a file, or its stdout) and collects its artifacts into a `SuiteRun`.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use testmeter_parse::{parse_bytes, parse_file, Limits, ParseError, Parsed};

use crate::config::SuiteConfig;
use crate::model::SuiteRun;
use crate::runner::artifacts;
use crate::runner::process::{self, ProcessError, ProcessOutcome, ProcessSpec};

/// Time a timed-out suite gets between SIGTERM and SIGKILL.
const KILL_GRACE: Duration = Duration::from_secs(5);

/// Why a suite run produced no report. Test failures are not errors: they are in the report.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Process(#[from] ProcessError),
    #[error("suite timed out after {timeout:?} and left no readable report")]
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
    #[error("suite exited with {status} and printed no report on stdout{}", stderr_note(.stderr_tail))]
    NoOutput { status: String, stderr_tail: String },
    #[error("failed to read the report in {report} (the suite exited with {status})")]
    Report {
        /// The report file, or "its stdout".
        report: String,
        status: String,
        #[source]
        source: ParseError,
    },
}

impl RunError {
    /// Short, low-cardinality reason for the `testmeter_suite_runs_total{result}` label.
    pub fn reason(&self) -> &'static str {
        match self {
            RunError::Process(ProcessError::Spawn { .. }) => "spawn_error",
            RunError::Process(ProcessError::Wait { .. }) | RunError::ClearReport { .. } => "error",
            RunError::Timeout { .. } => "timeout",
            RunError::NoReport { .. } | RunError::NoOutput { .. } => "no_report",
            RunError::Report { source, .. } => match source {
                ParseError::TooLarge { .. } => "report_too_large",
                _ => "parse_error",
            },
        }
    }
}

/// Runs the suite once.
pub async fn execute(suite: &SuiteConfig) -> Result<SuiteRun, RunError> {
    if let Some(report) = &suite.report {
        match std::fs::remove_file(report) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(RunError::ClearReport {
                    path: report.clone(),
                    source,
                })
            }
        }
        if let Some(parent) = report.parent() {
            // A missing report directory would make every runner fail; create it like CI would.
            let _ = std::fs::create_dir_all(parent);
        }
    }
    // File times can be coarser than the clock; allow for it when judging freshness.
    let started = SystemTime::now();
    let fresh_since = started - Duration::from_secs(1);
    let argv = suite.argv();
    let outcome = process::run(&ProcessSpec {
        argv: &argv,
        working_dir: suite.working_dir(),
        env: &suite.env,
        timeout: suite.timeout,
        kill_grace: KILL_GRACE,
        keep_stdout: suite.report.is_none().then_some(suite.max_report_bytes),
    })
    .await?;
    let parsed = match read_report(suite, &outcome) {
        Ok(parsed) => parsed,
        // A hung suite that was killed may still have left the cases it completed.
        Err(_) if outcome.timed_out => {
            return Err(RunError::Timeout {
                timeout: suite.timeout,
            })
        }
        Err(error) => return Err(error),
    };
    let partial = if outcome.timed_out {
        let cut = format!("suite timed out after {:?} and was killed", suite.timeout);
        Some(match parsed.partial {
            Some(reason) => format!("{cut}; {reason}"),
            None => cut,
        })
    } else {
        parsed.partial
    };
    if let Some(reason) = &partial {
        tracing::warn!(
            suite = suite.name,
            reason,
            "partial run: only the cases that completed are reported"
        );
    }
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
        report: parsed.report,
        partial,
        artifacts,
    })
}

/// Parses the suite's report file, or its stdout when it has no report file.
fn read_report(suite: &SuiteConfig, outcome: &ProcessOutcome) -> Result<Parsed, RunError> {
    let limits = Limits {
        max_report_bytes: suite.max_report_bytes,
    };
    let status = exit_status(outcome);
    let report_error = |source| RunError::Report {
        report: suite
            .report
            .as_ref()
            .map_or_else(|| "its stdout".to_owned(), |p| p.display().to_string()),
        status: status.clone(),
        source,
    };
    match &suite.report {
        Some(path) => {
            if !path.exists() {
                return Err(RunError::NoReport {
                    path: path.clone(),
                    status: status.clone(),
                    stderr_tail: last_lines(&outcome.stderr_tail, 5),
                });
            }
            parse_file(path, suite.format, limits).map_err(report_error)
        }
        None => {
            if outcome.stdout_overflowed {
                return Err(report_error(ParseError::TooLarge {
                    size: suite.max_report_bytes.saturating_add(1),
                    limit: suite.max_report_bytes,
                }));
            }
            let stdout = outcome.stdout.as_deref().unwrap_or_default();
            if stdout.iter().all(u8::is_ascii_whitespace) {
                return Err(RunError::NoOutput {
                    status: status.clone(),
                    stderr_tail: last_lines(&outcome.stderr_tail, 5),
                });
            }
            parse_bytes(stdout, suite.format, limits).map_err(report_error)
        }
    }
}

fn exit_status(outcome: &ProcessOutcome) -> String {
    match (outcome.exit_code, outcome.signal) {
        (Some(code), _) => format!("exit code {code}"),
        (None, Some(signal)) => format!("signal {signal}"),
        (None, None) => "an unknown status".to_owned(),
    }
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
