//! Compiles plugins in a child process of the agent's own binary (`testmeter compile-plugin`),
//! which writes the compiled-plugin cache; the agent then maps the entry like any warm start.
//!
//! Cranelift touches megabytes of the binary's code and heap while it compiles. A daemon that
//! compiled its plugins itself kept them resident for its whole life: idle at 27.8 MiB after a
//! cold start, against 17.4 MiB after a warm one (docs/performance.md). A child also keeps a
//! compiler crash on a hostile component out of the agent. Anything that goes wrong in the
//! child (no binary, a crash, a component that does not compile) falls back to compiling in
//! the agent, which then reports the real error. The child's side is
//! `runtime::compile_into_cache`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;

use super::cache::CompiledCache;

/// The hidden subcommand the child runs.
pub const SUBCOMMAND: &str = "compile-plugin";

static CHILD_COMPILER: OnceLock<PathBuf> = OnceLock::new();

/// Makes every plugin runtime of this process compile cache misses by running `exe
/// compile-plugin`. Only the `testmeter` binary calls this, with its own path; a library user
/// (and every test) compiles in process.
pub fn use_child_compiler(exe: PathBuf) {
    let _ = CHILD_COMPILER.set(exe);
}

/// The binary set by [`use_child_compiler`], if any.
pub(crate) fn child_compiler() -> Option<&'static Path> {
    CHILD_COMPILER.get().map(PathBuf::as_path)
}

/// Runs `exe compile-plugin --cache-dir DIR WASM` and waits for it. `Err` says why no entry
/// was written: how the child ended and the start of what it printed.
pub(crate) async fn compile_in_child(
    exe: &Path,
    cache: &CompiledCache,
    wasm: &Path,
) -> Result<(), String> {
    let output = tokio::process::Command::new(exe)
        .arg(SUBCOMMAND)
        .arg("--cache-dir")
        .arg(cache.dir())
        .arg(wasm)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| format!("could not start {}: {e}", exe.display()))?;
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let said: String = stderr.split_whitespace().collect::<Vec<_>>().join(" ");
    let said: String = said.chars().take(400).collect();
    Err(format!("{}: {said}", output.status))
}
