//! Executes one configured suite: clears its stale report, runs its command, checks that it
//! left a report (a file, or its stdout) and collects its artifacts into a `SuiteRun`. The
//! report is read later, while plugins derive it (`crate::pipeline::reading`).

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use testmeter_parse::{Limits, ParseError};

use crate::config::{ReportSetting, SuiteConfig};
use crate::model::{ReportSource, RunReport, SuiteRun, TraceContext};
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
    /// A report another job wrote (`testmeter ingest`) that cannot be read.
    #[error("failed to parse report {report}")]
    Ingest {
        report: String,
        #[source]
        source: ParseError,
    },
    #[error("the report reader stopped unexpectedly: {message}")]
    Reader { message: String },
}

impl RunError {
    /// Short, low-cardinality reason for the `testmeter_suite_runs_total{result}` label.
    pub fn reason(&self) -> &'static str {
        match self {
            RunError::Process(ProcessError::Spawn { .. }) => "spawn_error",
            RunError::Process(ProcessError::Wait { .. })
            | RunError::ClearReport { .. }
            | RunError::Reader { .. } => "error",
            RunError::Timeout { .. } => "timeout",
            RunError::NoReport { .. } | RunError::NoOutput { .. } => "no_report",
            RunError::Report { source, .. } | RunError::Ingest { source, .. } => match source {
                ParseError::TooLarge { .. } => "report_too_large",
                _ => "parse_error",
            },
        }
    }
}

/// Runs the suite once; `plugins_read_output` says whether a plugin of its system reads
/// captured output (see [`SuiteConfig::argv`]).
/// `trace`, when given, is the run's span: the command gets it as `TRACEPARENT`, so an
/// instrumented test process can make its spans children of the run's.
pub async fn execute(
    suite: &SuiteConfig,
    plugins_read_output: bool,
    trace: Option<&TraceContext>,
) -> Result<SuiteRun, RunError> {
    if let Some(report) = suite.report.file() {
        match std::fs::remove_file(report) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(RunError::ClearReport {
                    path: report.to_path_buf(),
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
    let argv = suite.argv(plugins_read_output);
    let traced_env;
    let env = match trace {
        Some(trace) => {
            let mut env = suite.env.clone();
            env.insert(TraceContext::VARIABLE.to_owned(), trace.to_string());
            traced_env = env;
            &traced_env
        }
        None => &suite.env,
    };
    let mut outcome = process::run(&ProcessSpec {
        argv: &argv,
        working_dir: suite.working_dir(),
        env,
        timeout: suite.timeout,
        kill_grace: KILL_GRACE,
        keep_stdout: (suite.report == ReportSetting::Stdout).then_some(suite.max_report_bytes),
    })
    .await?;
    let report = match located_report(suite, &mut outcome) {
        Ok(report) => report,
        // A hung suite that was killed may have left no report at all.
        Err(_) if outcome.timed_out => {
            return Err(RunError::Timeout {
                timeout: suite.timeout,
            })
        }
        Err(error) => return Err(error),
    };
    let (artifacts, dropped_artifacts) = artifacts::collect(&artifacts::Collect {
        working_dir: suite.working_dir(),
        patterns: &suite.artifacts,
        fresh_since,
        only_fresh: suite.artifacts_fresh,
        max_bytes: suite.artifact_max_bytes,
        max_total_bytes: suite.artifact_max_total_bytes,
    });
    for dropped in &dropped_artifacts {
        // Debug formatting escapes newlines and control characters in the suite's file names.
        tracing::warn!(
            suite = suite.name,
            artifact = ?dropped.name,
            reason = dropped.reason,
            detail = dropped.detail,
            "artifact dropped"
        );
    }
    Ok(SuiteRun {
        suite: suite.name.clone(),
        system: suite.system.clone(),
        labels: suite.labels.clone(),
        started: Some(started),
        duration: Some(outcome.duration),
        exit_code: outcome.exit_code,
        peak_rss_bytes: outcome.peak_rss_bytes,
        partial: outcome
            .timed_out
            .then(|| format!("suite timed out after {:?} and was killed", suite.timeout)),
        timed_out: outcome.timed_out.then_some(suite.timeout),
        status: Some(exit_status(&outcome)),
        artifacts,
        dropped_artifacts,
        report: RunReport {
            source: report,
            format: suite.format,
            limits: Limits {
                max_report_bytes: suite.max_report_bytes,
            },
        },
    })
}

/// The suite's report file, its stdout when it has no report file, or none for a suite that
/// writes no report; an error when it left none.
fn located_report(
    suite: &SuiteConfig,
    outcome: &mut ProcessOutcome,
) -> Result<ReportSource, RunError> {
    let status = exit_status(outcome);
    match &suite.report {
        ReportSetting::None => Ok(ReportSource::None),
        ReportSetting::File(path) => {
            if !path.exists() {
                return Err(RunError::NoReport {
                    path: path.clone(),
                    status,
                    stderr_tail: last_lines(&outcome.stderr_tail, 5),
                });
            }
            Ok(ReportSource::Files(vec![path.clone()]))
        }
        ReportSetting::Stdout => {
            if outcome.stdout_overflowed {
                return Err(RunError::Report {
                    report: "its stdout".to_owned(),
                    status,
                    source: ParseError::TooLarge {
                        size: suite.max_report_bytes.saturating_add(1),
                        limit: suite.max_report_bytes,
                    },
                });
            }
            let stdout = outcome.stdout.take().unwrap_or_default();
            if stdout.iter().all(u8::is_ascii_whitespace) {
                return Err(RunError::NoOutput {
                    status,
                    stderr_tail: last_lines(&outcome.stderr_tail, 5),
                });
            }
            Ok(ReportSource::Bytes {
                what: "its stdout".to_owned(),
                bytes: stdout,
            })
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
