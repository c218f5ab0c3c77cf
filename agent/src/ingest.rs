//! Reports another job wrote, read into one `SuiteRun` so they go through the same plugins
//! and exporters as a suite the agent ran itself (`testmeter ingest`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use testmeter_parse::{parse_file, parse_reader, Format, Limits, ParseError, Parsed};

use crate::model::{Artifact, SuiteRun};

/// What to ingest.
#[derive(Debug)]
pub struct IngestRequest<'a> {
    pub suite: &'a str,
    pub system: &'a str,
    pub labels: BTreeMap<String, String>,
    /// Report files; `-` reads standard input.
    pub reports: &'a [PathBuf],
    pub format: Format,
    pub limits: Limits,
    /// Files handed to plugins as artifacts (e.g. a benchmark's results JSON).
    pub artifacts: &'a [PathBuf],
    pub artifact_max_bytes: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("failed to parse report {path}")]
    Report {
        path: PathBuf,
        #[source]
        source: ParseError,
    },
    #[error("failed to read artifact {path}")]
    Artifact {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("artifact {path} is {size} bytes, over the limit of {limit} bytes")]
    ArtifactTooLarge {
        path: PathBuf,
        size: u64,
        limit: u64,
    },
}

/// Parses every report and reads every artifact into one run. The run's start is the
/// earliest report timestamp (else now) and its duration the sum of the suites' times.
pub fn read_run(request: &IngestRequest<'_>) -> Result<SuiteRun, IngestError> {
    let mut parts = Vec::with_capacity(request.reports.len());
    for path in request.reports {
        parts.push(parse_one(path, request.format, request.limits)?);
    }
    let parsed = Parsed::merge(request.suite, parts);
    let artifacts = request
        .artifacts
        .iter()
        .map(|path| read_artifact(path, request.artifact_max_bytes))
        .collect::<Result<Vec<_>, _>>()?;
    let started = parsed
        .report
        .timestamp
        .map(SystemTime::from)
        .unwrap_or_else(SystemTime::now);
    Ok(SuiteRun {
        suite: request.suite.to_owned(),
        system: request.system.to_owned(),
        labels: request.labels.clone(),
        started,
        duration: parsed.report.time.unwrap_or(Duration::ZERO),
        exit_code: None,
        peak_rss_bytes: None,
        report: parsed.report,
        partial: parsed.partial,
        artifacts,
    })
}

fn parse_one(path: &Path, format: Format, limits: Limits) -> Result<Parsed, IngestError> {
    let parsed = if path == Path::new("-") {
        parse_reader(std::io::stdin().lock(), format, limits)
    } else {
        parse_file(path, format, limits)
    };
    parsed.map_err(|source| IngestError::Report {
        path: path.to_path_buf(),
        source,
    })
}

fn read_artifact(path: &Path, limit: u64) -> Result<Artifact, IngestError> {
    let size = std::fs::metadata(path)
        .map_err(|source| IngestError::Artifact {
            path: path.to_path_buf(),
            source,
        })?
        .len();
    if size > limit {
        return Err(IngestError::ArtifactTooLarge {
            path: path.to_path_buf(),
            size,
            limit,
        });
    }
    let content = std::fs::read(path).map_err(|source| IngestError::Artifact {
        path: path.to_path_buf(),
        source,
    })?;
    let name = path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    Ok(Artifact { name, content })
}
