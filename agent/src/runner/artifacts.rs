//! Collects the files a suite run wrote that match its artifact globs: only regular files
//! inside its working dir, reached without following a link, read with a byte cap per file
//! and per run. Plugins read files only this way.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::model::{Artifact, DroppedArtifact};

/// What to collect, from one suite's config.
#[derive(Debug, Clone)]
pub struct Collect<'a> {
    pub working_dir: &'a Path,
    /// Globs relative to the working dir (validated: no absolute path, no `..`).
    pub patterns: &'a [String],
    /// Files modified at or after this time were written by the run (fresh).
    pub fresh_since: SystemTime,
    /// Whether only fresh files are artifacts (`artifacts_fresh`).
    pub only_fresh: bool,
    /// Most bytes read from one file.
    pub max_bytes: u64,
    /// Most bytes read over all files.
    pub max_total_bytes: u64,
}

/// The artifacts in name order, and the files that matched but were dropped, with why. An
/// invalid glob is a dropped "file" named by the glob.
pub fn collect(request: &Collect<'_>) -> (Vec<Artifact>, Vec<DroppedArtifact>) {
    let mut dropped = Vec::new();
    let Ok(root) = request.working_dir.canonicalize() else {
        return (Vec::new(), dropped);
    };
    let mut paths: Vec<(String, PathBuf)> = Vec::new();
    for pattern in request.patterns {
        let full = root.join(pattern);
        let matches = match glob::glob(&full.to_string_lossy()) {
            Ok(matches) => matches,
            Err(error) => {
                dropped.push(DroppedArtifact {
                    name: pattern.clone(),
                    reason: "unreadable",
                    detail: format!("invalid artifact glob: {error}"),
                });
                continue;
            }
        };
        for path in matches.flatten() {
            let name = path
                .strip_prefix(&root)
                .unwrap_or(&path)
                .to_string_lossy()
                .into_owned();
            if !paths.iter().any(|(known, _)| *known == name) {
                paths.push((name, path));
            }
        }
    }
    paths.sort();
    let mut artifacts = Vec::new();
    let mut total: u64 = 0;
    for (name, path) in paths {
        let budget = request
            .max_bytes
            .min(request.max_total_bytes.saturating_sub(total));
        match read(&root, &path, request, budget) {
            Ok(Some((content, fresh))) => {
                total += content.len() as u64;
                artifacts.push(Artifact {
                    name,
                    content,
                    fresh,
                });
            }
            Ok(None) => {}
            Err(Refused::TooLarge) if budget < request.max_bytes => dropped.push(DroppedArtifact {
                detail: format!(
                    "the run's artifacts would pass the {}-byte total cap ({total} bytes kept before it)",
                    request.max_total_bytes
                ),
                name,
                reason: "total_cap",
            }),
            Err(Refused::TooLarge) => dropped.push(DroppedArtifact {
                detail: format!("over the {}-byte cap per file", request.max_bytes),
                name,
                reason: "too_large",
            }),
            Err(Refused::NotRegular(what)) => dropped.push(DroppedArtifact {
                detail: format!("not a regular file: {what}"),
                name,
                reason: "not_regular",
            }),
            Err(Refused::Outside) => dropped.push(DroppedArtifact {
                detail: "resolves outside the suite's working dir".to_owned(),
                name,
                reason: "outside",
            }),
            Err(Refused::Io(error)) => dropped.push(DroppedArtifact {
                detail: format!("failed to read it: {error}"),
                name,
                reason: "unreadable",
            }),
        }
    }
    (artifacts, dropped)
}

enum Refused {
    TooLarge,
    NotRegular(&'static str),
    Outside,
    Io(std::io::Error),
}

/// The file's content, at most `budget` bytes, and whether it is fresh; `None` when it is not
/// fresh and only fresh files are wanted.
/// Every directory on the way must be a real directory inside `root` (no link is followed),
/// and the file itself a regular file: opened without following a link and without blocking
/// (a FIFO never wedges the agent), then checked on the open descriptor, and read through a
/// cap rather than trusting the size the file system reports (procfs says 0).
fn read(
    root: &Path,
    path: &Path,
    request: &Collect<'_>,
    budget: u64,
) -> Result<Option<(Vec<u8>, bool)>, Refused> {
    use std::os::unix::fs::OpenOptionsExt;

    let relative = path.strip_prefix(root).map_err(|_| Refused::Outside)?;
    let mut dir = root.to_path_buf();
    let mut components = relative.components().peekable();
    while let Some(component) = components.next() {
        if components.peek().is_none() {
            break;
        }
        dir.push(component);
        let metadata = std::fs::symlink_metadata(&dir).map_err(Refused::Io)?;
        if metadata.file_type().is_symlink() {
            return Err(Refused::NotRegular("a directory on its path is a link"));
        }
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(|error| match error.raw_os_error() {
            Some(libc::ELOOP) => Refused::NotRegular("a link"),
            _ => Refused::Io(error),
        })?;
    let metadata = file.metadata().map_err(Refused::Io)?;
    if !metadata.is_file() {
        let what = if metadata.is_dir() {
            "a directory"
        } else {
            "a FIFO, socket or device"
        };
        return Err(Refused::NotRegular(what));
    }
    let fresh = metadata
        .modified()
        .is_ok_and(|modified| modified >= request.fresh_since);
    if request.only_fresh && !fresh {
        return Ok(None);
    }
    let mut content = Vec::new();
    file.take(budget.saturating_add(1))
        .read_to_end(&mut content)
        .map_err(Refused::Io)?;
    if content.len() as u64 > budget {
        return Err(Refused::TooLarge);
    }
    Ok(Some((content, fresh)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn request<'a>(dir: &'a Path, patterns: &'a [String], max: u64, total: u64) -> Collect<'a> {
        Collect {
            working_dir: dir,
            patterns,
            fresh_since: SystemTime::UNIX_EPOCH,
            only_fresh: true,
            max_bytes: max,
            max_total_bytes: total,
        }
    }

    fn reasons(dropped: &[DroppedArtifact]) -> Vec<(&str, &str)> {
        dropped
            .iter()
            .map(|d| (d.name.as_str(), d.reason))
            .collect()
    }

    #[test]
    fn collects_fresh_matching_files_and_caps_size() {
        let dir = tempfile::tempdir().expect("tempdir");
        let before = SystemTime::now() - Duration::from_secs(5);
        std::fs::create_dir(dir.path().join("results")).expect("mkdir");
        std::fs::write(dir.path().join("results/a.json"), b"{}").expect("write");
        std::fs::write(dir.path().join("results/big.json"), vec![b' '; 100]).expect("write");
        std::fs::write(dir.path().join("other.txt"), b"x").expect("write");
        let patterns = ["results/*.json".to_owned()];
        let mut fresh = request(dir.path(), &patterns, 10, 1000);
        fresh.fresh_since = before;
        let (artifacts, dropped) = collect(&fresh);
        assert_eq!(
            artifacts,
            vec![Artifact {
                name: "results/a.json".to_owned(),
                content: b"{}".to_vec(),
                fresh: true,
            }]
        );
        assert_eq!(reasons(&dropped), vec![("results/big.json", "too_large")]);
        assert_eq!(dropped[0].detail, "over the 10-byte cap per file");
        fresh.fresh_since = SystemTime::now() + Duration::from_secs(60);
        let (stale, _) = collect(&fresh);
        assert!(
            stale.is_empty(),
            "files older than the run are not its artifacts"
        );
        let mut resumed = fresh.clone();
        resumed.only_fresh = false;
        let (older, _) = collect(&resumed);
        assert_eq!(older.len(), 1, "without freshness, older files count");
        assert!(!older[0].fresh, "and say that they are older");
    }

    #[test]
    fn recursive_globs_and_a_total_cap_in_name_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        for (path, size) in [
            ("r/os/1/result.txt", 4),
            ("r/chrome/2/result.txt", 4),
            ("r/chrome/3/result.txt", 4),
        ] {
            let path = dir.path().join(path);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::fs::write(path, vec![b'1'; size]).expect("write");
        }
        let patterns = ["r/**/result.txt".to_owned()];
        let (artifacts, dropped) = collect(&request(dir.path(), &patterns, 100, 8));
        let names: Vec<&str> = artifacts.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, ["r/chrome/2/result.txt", "r/chrome/3/result.txt"]);
        assert_eq!(reasons(&dropped), vec![("r/os/1/result.txt", "total_cap")]);
    }

    #[test]
    fn links_fifos_and_procfs_are_not_read_past_their_limits() {
        let dir = tempfile::tempdir().expect("tempdir");
        let outside = tempfile::tempdir().expect("tempdir");
        std::fs::write(outside.path().join("secret.txt"), b"secret").expect("write");
        std::os::unix::fs::symlink("/proc/self/environ", dir.path().join("env.txt")).expect("link");
        std::os::unix::fs::symlink(outside.path(), dir.path().join("linked")).expect("link");
        let fifo = std::ffi::CString::new(dir.path().join("pipe.txt").to_string_lossy().as_bytes())
            .expect("path");
        // SAFETY: mkfifo reads a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
        let patterns = ["*.txt".to_owned(), "linked/*.txt".to_owned()];
        let (artifacts, dropped) = collect(&request(dir.path(), &patterns, 1 << 20, 1 << 20));
        assert!(artifacts.is_empty(), "{artifacts:?}");
        assert_eq!(
            reasons(&dropped),
            vec![
                ("env.txt", "not_regular"),
                ("linked/secret.txt", "not_regular"),
                ("pipe.txt", "not_regular"),
            ]
        );
    }

    #[test]
    fn the_cap_counts_bytes_read_not_the_size_reported() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("a.txt"), vec![b'x'; 64]).expect("write");
        let patterns = ["a.txt".to_owned()];
        let (artifacts, dropped) = collect(&request(dir.path(), &patterns, 63, 1 << 20));
        assert!(artifacts.is_empty());
        assert_eq!(reasons(&dropped), vec![("a.txt", "too_large")]);
    }
}
