//! Collects the files a suite run wrote that match its artifact globs, with a size cap.
//! Plugins read files only this way.

use std::path::Path;
use std::time::SystemTime;

use crate::model::Artifact;

/// Errors collecting artifacts. None of them fails the run: they are logged and skipped.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    #[error("invalid artifact glob {pattern:?}")]
    Pattern {
        pattern: String,
        #[source]
        source: glob::PatternError,
    },
    #[error("artifact {path} is {size} bytes, over the {limit}-byte cap")]
    TooLarge { path: String, size: u64, limit: u64 },
    #[error("failed to read artifact {path}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// Files under `working_dir` matching `patterns` that were modified at or after `since`
/// (so a stale file from an earlier run is never mistaken for this run's output).
pub fn collect(
    working_dir: &Path,
    patterns: &[String],
    since: SystemTime,
    max_bytes: u64,
) -> (Vec<Artifact>, Vec<ArtifactError>) {
    let mut artifacts: Vec<Artifact> = Vec::new();
    let mut errors = Vec::new();
    for pattern in patterns {
        let full = working_dir.join(pattern);
        let paths = match glob::glob(&full.to_string_lossy()) {
            Ok(paths) => paths,
            Err(source) => {
                errors.push(ArtifactError::Pattern {
                    pattern: pattern.clone(),
                    source,
                });
                continue;
            }
        };
        for path in paths.flatten() {
            let name = path
                .strip_prefix(working_dir)
                .unwrap_or(&path)
                .to_string_lossy()
                .into_owned();
            if artifacts.iter().any(|a| a.name == name) {
                continue;
            }
            match read_fresh(&path, &name, since, max_bytes) {
                Ok(Some(content)) => artifacts.push(Artifact { name, content }),
                Ok(None) => {}
                Err(error) => errors.push(error),
            }
        }
    }
    artifacts.sort_by(|a, b| a.name.cmp(&b.name));
    (artifacts, errors)
}

/// The file's content; `None` when it is not a regular file written since `since`.
fn read_fresh(
    path: &Path,
    name: &str,
    since: SystemTime,
    max_bytes: u64,
) -> Result<Option<Vec<u8>>, ArtifactError> {
    let read_error = |source| ArtifactError::Read {
        path: name.to_owned(),
        source,
    };
    let metadata = std::fs::metadata(path).map_err(read_error)?;
    if !metadata.is_file() || metadata.modified().map_or(true, |m| m < since) {
        return Ok(None);
    }
    if metadata.len() > max_bytes {
        return Err(ArtifactError::TooLarge {
            path: name.to_owned(),
            size: metadata.len(),
            limit: max_bytes,
        });
    }
    std::fs::read(path).map(Some).map_err(read_error)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn collects_fresh_matching_files_and_caps_size() {
        let dir = tempfile::tempdir().expect("tempdir");
        let before = SystemTime::now() - Duration::from_secs(5);
        std::fs::create_dir(dir.path().join("results")).expect("mkdir");
        std::fs::write(dir.path().join("results/a.json"), b"{}").expect("write");
        std::fs::write(dir.path().join("results/big.json"), vec![b' '; 100]).expect("write");
        std::fs::write(dir.path().join("other.txt"), b"x").expect("write");
        let (artifacts, errors) = collect(dir.path(), &["results/*.json".to_owned()], before, 10);
        assert_eq!(
            artifacts,
            vec![Artifact {
                name: "results/a.json".to_owned(),
                content: b"{}".to_vec()
            }]
        );
        assert_eq!(errors.len(), 1);
        assert_eq!(
            errors[0].to_string(),
            "artifact results/big.json is 100 bytes, over the 10-byte cap"
        );
        let later = SystemTime::now() + Duration::from_secs(60);
        let (stale, _) = collect(dir.path(), &["results/*.json".to_owned()], later, 10);
        assert!(
            stale.is_empty(),
            "files older than the run are not artifacts of it"
        );
    }
}
