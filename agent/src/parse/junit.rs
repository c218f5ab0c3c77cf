//! JUnit XML reports (pytest `--junitxml` and compatible writers) into `quick_junit::Report`.

use std::path::{Path, PathBuf};

use quick_junit::Report;

/// Errors reading a report.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    #[error("failed to read report {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to parse JUnit XML {path}")]
    Junit {
        path: PathBuf,
        #[source]
        source: quick_junit::DeserializeError,
    },
}

/// Parses a JUnit XML file.
pub fn parse_junit_file(path: &Path) -> Result<Report, ParseError> {
    let text = std::fs::read_to_string(path).map_err(|source| ParseError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse_junit_str(&text).map_err(|source| ParseError::Junit {
        path: path.to_path_buf(),
        source,
    })
}

/// Parses JUnit XML text.
pub fn parse_junit_str(xml: &str) -> Result<Report, quick_junit::DeserializeError> {
    Report::deserialize_from_str(xml)
}
