//! Reports another job wrote, made into one `SuiteRun` so they go through the same plugins
//! and exporters as a suite the agent ran itself (`testmeter ingest`).

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use testmeter_parse::{Format, Limits};

use crate::model::{Artifact, ReportSource, RunReport, SuiteRun};

/// What to ingest.
#[derive(Debug)]
pub struct IngestRequest<'a> {
    pub suite: &'a str,
    pub system: &'a str,
    pub labels: BTreeMap<String, String>,
    /// Report files, read in order as one report; `-` alone reads standard input.
    pub reports: &'a [PathBuf],
    pub format: Format,
    pub limits: Limits,
    /// Files handed to plugins as artifacts (e.g. a benchmark's results JSON).
    pub artifacts: &'a [PathBuf],
    pub artifact_max_bytes: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("failed to read the report from standard input")]
    Stdin {
        #[source]
        source: std::io::Error,
    },
    #[error("standard input (`-`) can only be ingested on its own, not with report files")]
    StdinWithFiles,
    #[error("failed to read artifact {path}")]
    Artifact {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("artifact {path} is over the limit of {limit} bytes")]
    ArtifactTooLarge { path: PathBuf, limit: u64 },
    #[error("artifact {path} cannot be read as a file")]
    ArtifactNotAFile {
        path: PathBuf,
        #[source]
        source: testmeter_parse::ParseError,
    },
}

/// The reports and artifacts as one run. Its start is the earliest report timestamp (else
/// the time it is read) and its duration the sum of the suites' times; the reports are read
/// while the plugins derive them.
pub fn run_of(request: &IngestRequest<'_>) -> Result<SuiteRun, IngestError> {
    let stdin = Path::new("-");
    let source = if request.reports.iter().any(|path| path == stdin) {
        if request.reports.len() > 1 {
            return Err(IngestError::StdinWithFiles);
        }
        let mut bytes = Vec::new();
        std::io::stdin()
            .lock()
            .take(request.limits.max_report_bytes.saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(|source| IngestError::Stdin { source })?;
        ReportSource::Bytes {
            what: "-".to_owned(),
            bytes,
        }
    } else {
        ReportSource::Files(request.reports.to_vec())
    };
    let artifacts = request
        .artifacts
        .iter()
        .map(|path| read_artifact(path, request.artifact_max_bytes))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(SuiteRun {
        suite: request.suite.to_owned(),
        system: request.system.to_owned(),
        labels: request.labels.clone(),
        started: None,
        duration: None,
        exit_code: None,
        peak_rss_bytes: None,
        partial: None,
        timed_out: None,
        status: None,
        artifacts,
        dropped_artifacts: Vec::new(),
        report: RunReport {
            source,
            format: request.format,
            limits: request.limits,
        },
    })
}

/// The artifact at `path`: a regular file (opened without blocking, so a FIFO named on the
/// command line cannot wedge the run), read through the cap rather than trusting the size the
/// file system reports (procfs reports 0).
fn read_artifact(path: &Path, limit: u64) -> Result<Artifact, IngestError> {
    let file = testmeter_parse::open_regular(path).map_err(|source| match source {
        testmeter_parse::ParseError::Read { source, .. } => IngestError::Artifact {
            path: path.to_path_buf(),
            source,
        },
        source => IngestError::ArtifactNotAFile {
            path: path.to_path_buf(),
            source,
        },
    })?;
    let mut content = Vec::new();
    file.take(limit.saturating_add(1))
        .read_to_end(&mut content)
        .map_err(|source| IngestError::Artifact {
            path: path.to_path_buf(),
            source,
        })?;
    if content.len() as u64 > limit {
        return Err(IngestError::ArtifactTooLarge {
            path: path.to_path_buf(),
            limit,
        });
    }
    let name = path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    // A file named on the command line is this run's result.
    Ok(Artifact {
        name,
        content,
        fresh: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_artifact_named_on_the_command_line_is_read_only_as_a_regular_file_within_its_cap() {
        let dir = tempfile::tempdir().expect("tempdir");
        let fifo = dir.path().join("results.json");
        let path = std::ffi::CString::new(fifo.to_string_lossy().as_bytes()).expect("path");
        // SAFETY: mkfifo reads a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o600) }, 0);
        let error = read_artifact(&fifo, 1 << 20).expect_err("a FIFO is refused, not waited on");
        assert!(
            matches!(error, IngestError::ArtifactNotAFile { .. }),
            "{error}"
        );
        // procfs reports size 0: the cap counts what is read.
        let error = read_artifact(Path::new("/proc/self/environ"), 4).expect_err("over the cap");
        assert!(
            matches!(error, IngestError::ArtifactTooLarge { limit: 4, .. }),
            "{error}"
        );
        let file = dir.path().join("ok.json");
        std::fs::write(&file, b"{}").expect("write");
        assert_eq!(
            read_artifact(&file, 2).expect("within the cap").content,
            b"{}"
        );
    }
}
