//! What can go wrong with the history store, each error naming the store's path, and the
//! low-cardinality reason `testmeter_history_errors_total` counts it under.

use std::path::{Path, PathBuf};

use super::codec::Malformed;

#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("history store {path}: {source}")]
    Sqlite {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("history store {path}: cannot create its directory: {source}")]
    Dir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("history store {path}: written by a newer testmeter (schema {found}, this one knows up to {knows})")]
    Newer {
        path: PathBuf,
        found: i64,
        knows: i64,
    },
    #[error("history store {path}: {source}")]
    Malformed {
        path: PathBuf,
        #[source]
        source: Malformed,
    },
}

impl HistoryError {
    /// Low-cardinality reason for `testmeter_history_errors_total{reason}`.
    pub fn reason(&self) -> &'static str {
        match self {
            HistoryError::Dir { .. } => "open",
            HistoryError::Newer { .. } => "schema",
            HistoryError::Malformed { .. } => "corrupt",
            HistoryError::Sqlite { source, .. } => match source.sqlite_error_code() {
                Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => {
                    "locked"
                }
                Some(rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase) => {
                    "corrupt"
                }
                Some(rusqlite::ErrorCode::ReadOnly) => "read_only",
                Some(rusqlite::ErrorCode::DiskFull) => "disk_full",
                Some(rusqlite::ErrorCode::CannotOpen) => "open",
                _ => "other",
            },
        }
    }
}

/// What turns a SQLite error into one that names the store at `path`.
pub fn at(path: &Path) -> impl Fn(rusqlite::Error) -> HistoryError + Copy + '_ {
    move |source| HistoryError::Sqlite {
        path: path.to_path_buf(),
        source,
    }
}
