//! The one error type of the parsers: every failure names where in the input it happened.

use std::path::PathBuf;

/// Why a report could not be parsed. Nothing here panics or allocates without bound; the
/// offending position is given as 1-based line and column where the format has them.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    #[error("failed to read report {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("report {path} is {kind}, not a regular file; only regular files are read")]
    NotAFile { path: PathBuf, kind: &'static str },
    #[error("report is {size} bytes, over the limit of {limit} bytes (raise max_report_bytes to accept it)")]
    TooLarge { size: u64, limit: u64 },
    #[error("report is empty")]
    Empty,
    #[error("malformed XML at line {line}, column {column}: {message}")]
    Xml {
        line: u64,
        column: u64,
        message: String,
    },
    #[error("refused XML at line {line}, column {column}: {reason}")]
    Refused {
        line: u64,
        column: u64,
        reason: &'static str,
    },
    #[error("XML nests deeper than {limit} elements at line {line}, column {column}")]
    TooDeep {
        line: u64,
        column: u64,
        limit: usize,
    },
    #[error("not a {format} report: {reason}")]
    NotThisFormat {
        format: &'static str,
        reason: String,
    },
    #[error("could not recognise the report format (looked for JUnit XML, libtest/go test JSON, TAP, pytest and libtest text)")]
    Unrecognised,
}

impl ParseError {
    /// Short, low-cardinality reason for metric labels.
    pub fn reason(&self) -> &'static str {
        match self {
            ParseError::Read { .. } | ParseError::NotAFile { .. } => "read",
            ParseError::TooLarge { .. } => "too_large",
            ParseError::Empty => "empty",
            ParseError::Xml { .. } => "malformed",
            ParseError::Refused { .. } | ParseError::TooDeep { .. } => "refused",
            ParseError::NotThisFormat { .. } | ParseError::Unrecognised => "unrecognised",
        }
    }
}
