//! Test inputs shared by the parser's unit tests (included with `#[path]`) and its integration
//! tests: the repository's fixtures and the fuzz corpus.

use std::path::{Path, PathBuf};

/// Every file under `dir`, recursively.
pub fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    walk(dir, &mut out);
    out
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("input dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            walk(&path, out);
        } else {
            out.push(path);
        }
    }
}

/// The repository's fixtures directory.
pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures")
}

/// The fuzz corpus unpacked into a temporary directory named after `test`, which the caller
/// removes when done; its inputs are under `corpus/`, one directory per format.
pub fn unpack_fuzz_corpus(test: &str) -> PathBuf {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus.tar.xz");
    let dir = std::env::temp_dir().join(format!("testmeter-{test}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let status = std::process::Command::new("tar")
        .arg("-xJf")
        .arg(&corpus)
        .arg("-C")
        .arg(&dir)
        .status()
        .expect("tar runs");
    assert!(status.success());
    dir
}
