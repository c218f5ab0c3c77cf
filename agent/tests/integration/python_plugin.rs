//! A plugin written in Python (`examples/python-plugin`), built with componentize-py against
//! the same WIT, loaded by the agent and run on the real pytest-rerunfailures fixture.

use std::process::Command;

#[test]
fn a_componentize_py_plugin_derives_through_the_agent() {
    let dir = tempfile::tempdir().expect("tempdir");
    let plugins = dir.path().join("plugins");
    std::fs::create_dir_all(&plugins).expect("mkdir");
    let component = plugins.join("flaky-demo.wasm");
    // Built as a user would from a copy outside the repository: the example's files and the
    // WIT beside them, OUT relative to the directory build.sh is run from.
    let copy = dir.path().join("my-plugin");
    std::fs::create_dir_all(copy.join("wit")).expect("mkdir");
    let example = crate::support::repo_root().join("examples/python-plugin");
    for file in ["app.py", "derive.py", "build.sh"] {
        std::fs::copy(example.join(file), copy.join(file)).expect("copy the example");
    }
    std::fs::copy(
        crate::support::repo_root().join("wit/plugin.wit"),
        copy.join("wit/plugin.wit"),
    )
    .expect("copy the WIT");
    let status = Command::new(copy.join("build.sh"))
        .arg("plugins/flaky-demo.wasm")
        .current_dir(dir.path())
        .env(
            "COMPONENTIZE_PY",
            crate::support::venv().join("bin/componentize-py"),
        )
        .status()
        .expect("build.sh runs");
    assert!(status.success(), "componentize-py failed");
    assert!(component.is_file(), "OUT is relative to where build.sh ran");

    let config = dir.path().join("testmeter.toml");
    // An embedded CPython needs more than the default sandbox.
    std::fs::write(
        &config,
        "plugins_dir = \"plugins\"\n[sandbox]\nmemory_bytes = 268435456\ntimeout = \"10s\"\n",
    )
    .expect("write config");
    let reruns = crate::support::repo_root().join("tests/fixtures/pytest/reruns.xml");
    let output = crate::support::testmeter_command(&config)
        .args(["ingest"])
        .arg(&reruns)
        .args(["--system", "flaky-demo", "--print", "--config"])
        .arg(&config)
        .env("RUST_LOG", "off")
        .output()
        .expect("testmeter runs");
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let exposition = String::from_utf8_lossy(&output.stdout);
    // reruns.xml: 14 tests, 25 attempts, one passed on its second attempt, 6 of the 12 that
    // ran passed at the first.
    insta::assert_yaml_snapshot!(crate::support::lines_starting_with(
        &exposition,
        &["flaky_demo_"]
    ));

    // `testmeter plugins` says what the plugin costs in memory.
    let listed = crate::support::testmeter_command(&config)
        .args(["plugins", "--config"])
        .arg(&config)
        .env("RUST_LOG", "off")
        .output()
        .expect("testmeter runs");
    let listed = String::from_utf8_lossy(&listed.stdout);
    let cost = listed
        .lines()
        .find(|l| l.trim_start().starts_with("memory: "))
        .unwrap_or_else(|| panic!("no memory line in:\n{listed}"));
    assert!(
        cost.contains(" of compiled code in the agent; ")
            && cost.ends_with(" of linear memory per derivation at start (limit 256.0 MiB)"),
        "{cost}"
    );
    eprintln!("flaky-demo{cost}");
}
