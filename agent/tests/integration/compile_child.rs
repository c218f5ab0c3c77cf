//! Plugins compiled by a child process (`testmeter compile-plugin`) on a cold compiled-plugin
//! cache: the child writes the very entry the agent then maps, and anything the child cannot
//! compile is still reported by the agent with its real error.

use std::path::Path;
use std::process::Output;

use crate::support::{plugins_dir_with_osworld, testmeter_bin, testmeter_command};

fn write_config(dir: &Path, plugins: &Path, cache: &Path) -> std::path::PathBuf {
    let config = dir.join("testmeter.toml");
    std::fs::write(
        &config,
        format!(
            "plugins_dir = {:?}\n[sandbox]\ncache_dir = {:?}\n",
            plugins.display().to_string(),
            cache.display().to_string()
        ),
    )
    .expect("write config");
    config
}

fn list_plugins(config: &Path) -> (Output, String) {
    let output = testmeter_command(config)
        .args(["plugins", "--config"])
        .arg(config)
        .env("RUST_LOG", "testmeter=debug")
        .output()
        .expect("testmeter plugins runs");
    let log = String::from_utf8_lossy(&output.stderr).into_owned();
    (output, log)
}

fn entries(cache: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(cache)
        .map(|dir| {
            dir.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// The line of `log` that says `plugin` was loaded.
fn loaded_line<'a>(log: &'a str, plugin: &str) -> &'a str {
    log.lines()
        .find(|l| l.contains("plugin loaded") && l.contains(&format!("plugin=\"{plugin}\"")))
        .unwrap_or_else(|| panic!("no `plugin loaded` line for {plugin}:\n{log}"))
}

#[test]
fn the_child_writes_the_entry_the_agent_then_loads_as_a_hit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let plugins = plugins_dir_with_osworld(dir.path());
    let cache = dir.path().join("compiled");
    let status = std::process::Command::new(testmeter_bin())
        .args(["compile-plugin", "--cache-dir"])
        .arg(&cache)
        .arg(plugins.join("osworld.wasm"))
        .status()
        .expect("compile-plugin runs");
    assert!(status.success(), "compile-plugin failed: {status}");
    let written = entries(&cache);
    assert_eq!(written.len(), 1, "{written:?}");
    assert!(written[0].ends_with(".cwasm"), "{written:?}");

    // Same binary, same engine configuration: the agent's key is the child's key.
    let config = write_config(dir.path(), &plugins, &cache);
    let (output, log) = list_plugins(&config);
    assert!(output.status.success(), "{log}");
    assert!(
        loaded_line(&log, "osworld").ends_with("cache=hit"),
        "{}",
        loaded_line(&log, "osworld")
    );
    assert_eq!(entries(&cache), written);
}

#[test]
fn a_cold_start_compiles_in_children_and_reports_what_they_cannot_compile() {
    let dir = tempfile::tempdir().expect("tempdir");
    let plugins = plugins_dir_with_osworld(dir.path());
    std::fs::write(plugins.join("broken.wasm"), b"not a component").expect("write broken");
    let cache = dir.path().join("compiled");
    let config = write_config(dir.path(), &plugins, &cache);

    let (_, log) = list_plugins(&config);
    // osworld: compiled by the child (no fallback line), stored, and counted as a miss.
    assert!(
        loaded_line(&log, "osworld").ends_with("cache=miss"),
        "{log}"
    );
    let fallbacks: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("compiling in a child process failed"))
        .collect();
    assert_eq!(fallbacks.len(), 1, "{log}");
    assert!(fallbacks[0].contains("broken.wasm"), "{}", fallbacks[0]);
    assert_eq!(entries(&cache).len(), 1, "{:?}", entries(&cache));
    // broken.wasm: the agent compiled it itself after the child failed, and reports why.
    let refused = log
        .lines()
        .find(|l| l.contains("plugin not loaded"))
        .unwrap_or_else(|| panic!("broken.wasm was not reported:\n{log}"));
    assert!(
        refused.contains("broken.wasm") && refused.contains("magic header not detected"),
        "{refused}"
    );

    // The next start maps what the child wrote.
    let (_, log) = list_plugins(&config);
    assert!(loaded_line(&log, "osworld").ends_with("cache=hit"), "{log}");
}
