//! `testmeter compile-plugin` (hidden): compiles one plugin into the compiled-plugin cache, in
//! the child process the agent starts so it never holds the compiler's memory itself.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;

pub fn run(cache_dir: &Path, wasm: &Path) -> anyhow::Result<ExitCode> {
    testmeter::plugin::runtime::compile_into_cache(cache_dir, wasm)
        .with_context(|| format!("failed to compile {}", wasm.display()))?;
    Ok(ExitCode::SUCCESS)
}
