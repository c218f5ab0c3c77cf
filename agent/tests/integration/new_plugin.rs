//! `testmeter new-plugin` end to end, for Rust and for Python: the project it writes is built,
//! checked, and served on `/metrics` by exactly the commands of the README it writes (and of
//! the five-minute path that opens docs/plugins.md), and derives the sample report's real
//! values.

use std::path::Path;
use std::process::Command;

/// The commands of the README's `sh` block.
fn readme_commands(project: &Path) -> Vec<String> {
    let readme = std::fs::read_to_string(project.join("README.md")).expect("README.md");
    let block = readme
        .split("```sh\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("a sh block");
    block.lines().map(str::to_owned).collect()
}

/// The walks share the port the generated config serves on: one at a time.
static PORT: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Writes a project with `new-plugin`, runs its README's commands in it as one script with
/// `testmeter` on PATH, and returns the system's lines that `ingest --print` printed and those
/// the running agent served on `/metrics`.
fn walk(lang: &str, name: &str, system: &str, prefix: &str) -> (Vec<String>, Vec<String>) {
    let _port = PORT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    assert!(
        std::net::TcpListener::bind(testmeter::plugin::scaffold::LISTEN).is_ok(),
        "{} is taken: the walk-through serves there",
        testmeter::plugin::scaffold::LISTEN
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let written = Command::new(crate::support::testmeter_bin())
        .args([
            "new-plugin",
            name,
            "--system",
            system,
            "--lang",
            lang,
            "--dir",
        ])
        .arg(dir.path())
        .output()
        .expect("new-plugin runs");
    assert!(written.status.success(), "{written:?}");
    let project = dir.path().join(name);
    // A Rust build shares the test plugins' compiled dependencies: the project's target/ is
    // that dir (the README's commands stay as they are).
    if lang == "rust" {
        std::os::unix::fs::symlink(
            crate::support::repo_root().join("target/test-plugins"),
            project.join("target"),
        )
        .expect("link target/");
    }
    let bin_dir = crate::support::testmeter_bin()
        .parent()
        .expect("bin dir")
        .to_path_buf();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    // The README's block as it is, stopped on the first failure; the agent it starts in the
    // background is stopped however the script ends.
    let script = format!(
        "set -eu\ntrap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n{}",
        readme_commands(&project).join("\n")
    );
    let output = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .current_dir(&project)
        .env("PATH", &path)
        .env(
            "COMPONENTIZE_PY",
            crate::support::venv().join("bin/componentize-py"),
        )
        .env("XDG_CACHE_HOME", dir.path().join("cache"))
        .env("XDG_STATE_HOME", dir.path().join("state"))
        .env("RUST_LOG", "off")
        .output()
        .expect("bash runs");
    assert!(output.status.success(), "{script}\n{output:?}");
    let printed = String::from_utf8_lossy(&output.stdout).into_owned();
    let (ingested, served) = printed
        .split_once("ready\n")
        .expect("/readyz answered between ingest and /metrics");
    let ours = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|l| l.starts_with(prefix))
            .map(str::to_owned)
            .collect()
    };
    (ours(ingested), ours(served))
}

#[test]
fn a_new_rust_plugin_builds_and_derives_by_its_readme() {
    let (ingested, served) = walk("rust", "webshop", "web-shop", "web_shop_");
    assert_eq!(served, ingested, "/metrics serves what ingest printed");
    insta::assert_yaml_snapshot!(served);
}

/// docs/plugins.md opens with the same commands: `new-plugin`, `cd`, then the README's.
#[test]
fn the_five_minute_path_of_the_docs_is_the_readme_new_plugin_writes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let written = Command::new(crate::support::testmeter_bin())
        .args(["new-plugin", "webshop", "--system", "web-shop", "--dir"])
        .arg(dir.path())
        .output()
        .expect("new-plugin runs");
    assert!(written.status.success(), "{written:?}");
    let mut expected = vec![
        "testmeter new-plugin webshop --system web-shop".to_owned(),
        "cd webshop".to_owned(),
    ];
    expected.extend(readme_commands(&dir.path().join("webshop")));
    let docs = std::fs::read_to_string(crate::support::repo_root().join("docs/plugins.md"))
        .expect("docs/plugins.md");
    let walk: Vec<&str> = docs
        .split("## Five minutes to a plugin\n\n```sh\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("the five-minute block")
        .lines()
        .collect();
    assert_eq!(walk, expected);
}

#[test]
fn a_new_python_plugin_builds_and_derives_by_its_readme() {
    let (ingested, served) = walk("python", "shopbot", "shop-bot", "shop_bot_");
    assert_eq!(served, ingested, "/metrics serves what ingest printed");
    insta::assert_yaml_snapshot!(served);
}
