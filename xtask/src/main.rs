//! Build helper behind `cargo plugins`: compiles every plugin crate under `plugins/*/` for
//! wasm32-wasip2 with plain `cargo build`, then installs each as `plugins/<dir>.wasm`.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

const TARGET: &str = "wasm32-wasip2";

struct PluginCrate {
    dir_name: String,
    package: String,
}

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("plugins") => match build_plugins() {
            Ok(()) => ExitCode::SUCCESS,
            Err(message) => {
                eprintln!("error: {message}");
                ExitCode::FAILURE
            }
        },
        _ => {
            eprintln!("usage: cargo xtask plugins   (or the alias: cargo plugins)");
            ExitCode::from(2)
        }
    }
}

fn workspace_root() -> PathBuf {
    let manifest_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest_dir
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or(manifest_dir)
}

fn build_plugins() -> Result<(), String> {
    let root = workspace_root();
    let plugins_dir = root.join("plugins");
    let crates = find_plugin_crates(&plugins_dir)?;
    if crates.is_empty() {
        return Err(format!("no plugin crates under {}", plugins_dir.display()));
    }
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut command = Command::new(cargo);
    command
        .current_dir(&root)
        .args(["build", "--release", "--target", TARGET]);
    for plugin in &crates {
        command.args(["-p", &plugin.package]);
    }
    let status = command
        .status()
        .map_err(|e| format!("failed to start cargo: {e}"))?;
    if !status.success() {
        return Err(format!("cargo build for {TARGET} failed ({status})"));
    }
    let target_dir = env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|dir| {
            if dir.is_relative() {
                root.join(dir)
            } else {
                dir
            }
        })
        .unwrap_or_else(|| root.join("target"));
    for plugin in &crates {
        let built = target_dir
            .join(TARGET)
            .join("release")
            .join(format!("{}.wasm", plugin.package.replace('-', "_")));
        let installed = plugins_dir.join(format!("{}.wasm", plugin.dir_name));
        install(&built, &installed)?;
        println!("installed {}", installed.display());
    }
    Ok(())
}

/// Copies to a temporary name beside the destination, then renames, so a running agent
/// watching `plugins/` never sees a half-written file.
fn install(built: &Path, installed: &Path) -> Result<(), String> {
    let partial = installed.with_extension("wasm.partial");
    fs::copy(built, &partial).map_err(|e| {
        format!(
            "failed to copy {} to {}: {e}",
            built.display(),
            partial.display()
        )
    })?;
    fs::rename(&partial, installed).map_err(|e| {
        format!(
            "failed to rename {} to {}: {e}",
            partial.display(),
            installed.display()
        )
    })
}

fn find_plugin_crates(plugins_dir: &Path) -> Result<Vec<PluginCrate>, String> {
    let entries = fs::read_dir(plugins_dir)
        .map_err(|e| format!("failed to read {}: {e}", plugins_dir.display()))?;
    let mut crates = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| format!("failed to read {}: {e}", plugins_dir.display()))?;
        let manifest = entry.path().join("Cargo.toml");
        if !manifest.is_file() {
            continue;
        }
        let text = fs::read_to_string(&manifest)
            .map_err(|e| format!("failed to read {}: {e}", manifest.display()))?;
        // Libraries for plugins (the SDK) live here too; only cdylib crates are plugins.
        if !text.contains("\"cdylib\"") {
            continue;
        }
        let package = package_name(&text)
            .ok_or_else(|| format!("no package name in {}", manifest.display()))?;
        crates.push(PluginCrate {
            dir_name: entry.file_name().to_string_lossy().into_owned(),
            package,
        });
    }
    crates.sort_by(|a, b| a.dir_name.cmp(&b.dir_name));
    Ok(crates)
}

/// The `name` of the `[package]` table; enough TOML for our own manifests.
fn package_name(manifest: &str) -> Option<String> {
    let mut in_package = false;
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            in_package = line == "[package]";
        } else if in_package {
            if let Some(value) = line.strip_prefix("name") {
                let value = value.trim_start().strip_prefix('=')?.trim();
                return Some(value.trim_matches('"').to_owned());
            }
        }
    }
    None
}
