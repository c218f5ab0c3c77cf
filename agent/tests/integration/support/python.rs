//! The Python venv `scripts/setup.sh` makes, and the tools installed in it.

use super::*;

/// The Python venv made by `scripts/setup.sh` (override with TESTMETER_VENV).
pub fn venv() -> PathBuf {
    let venv = std::env::var_os("TESTMETER_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".venv"));
    assert!(
        venv.join("bin/python").exists(),
        "no Python venv at {}: run scripts/setup.sh first",
        venv.display()
    );
    venv
}

pub fn venv_python() -> PathBuf {
    venv().join("bin/python")
}

/// The rotel collector binary shipped in the `rotel` PyPI package.
pub fn rotel_agent() -> PathBuf {
    let lib = venv().join("lib");
    for entry in std::fs::read_dir(&lib).expect("venv lib dir") {
        let candidate = entry
            .expect("dir entry")
            .path()
            .join("site-packages/rotel/rotel-agent");
        if candidate.exists() {
            return candidate;
        }
    }
    panic!(
        "rotel-agent not found under {}: run scripts/setup.sh",
        lib.display()
    );
}

/// PATH with the venv's bin first, so suites' `python3` is the one with pytest.
pub fn venv_path() -> std::ffi::OsString {
    let mut paths = vec![venv().join("bin")];
    paths.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    std::env::join_paths(paths).expect("PATH joins")
}
