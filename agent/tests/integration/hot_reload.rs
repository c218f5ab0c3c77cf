//! Plugins dropped into (or removed from) the plugins dir of a running agent are loaded
//! without a restart: a new plugin's metrics appear from the suite's next run, a new plugin
//! copied in slowly is loaded once complete with no failure reported, a replacement left
//! half-written is reported while the previous version keeps serving, and a removed plugin
//! leaves the set.

use std::io::Write;
use std::time::Duration;

use crate::support::{exposition_value as value, scrape, wait_for, Guard};

#[test]
fn a_plugin_dropped_into_a_running_agent_is_loaded_without_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let plugins = crate::support::plugins_dir_with_osworld(dir.path());
    let port = crate::support::free_port();
    let (config, _report) =
        crate::support::waltzrl_suite_config(dir.path(), port, "waltzrl", "waltzrl", "1s");
    let log = dir.path().join("testmeter.log");
    let log_file = std::fs::File::create(&log).expect("log file");
    let _agent = Guard::spawn(
        "testmeter run",
        crate::support::testmeter_command(&config)
            .args(["run", "--config"])
            .arg(&config)
            .env("RUST_LOG", "info")
            .stdout(log_file.try_clone().expect("clone"))
            .stderr(log_file),
    );
    let url = format!("http://127.0.0.1:{port}/metrics");
    let before = wait_for("the suite's first run", Duration::from_secs(60), || {
        scrape(&url).filter(|body| body.contains("testmeter_suite_runs_total{"))
    });
    assert!(
        !before.contains("genesis_tests_total"),
        "no waltzrl plugin yet"
    );

    let component = std::fs::read(crate::support::built_plugins_dir().join("waltzrl.wasm"))
        .expect("built waltzrl plugin");
    let install = |bytes: &[u8]| {
        // Written under another name and renamed into place, as `cargo plugins` does.
        let staged = plugins.join("waltzrl.wasm.partial");
        std::fs::write(&staged, bytes).expect("write staged");
        std::fs::rename(&staged, plugins.join("waltzrl.wasm")).expect("rename into place");
    };

    // A new plugin: used from the suite's next run.
    install(&component);
    let after = wait_for(
        "the new plugin's metrics from the next run",
        Duration::from_secs(60),
        || scrape(&url).filter(|body| body.contains("genesis_tests_total ")),
    );
    assert!(value(&after, "testmeter_plugin_reloads_total{result=\"ok\"}").is_some());
    assert!(after.contains("testmeter_plugin_info{plugin=\"waltzrl\""));
    let tests = value(&after, "genesis_tests_total ").expect("a value");
    assert!(
        tests > 0.0,
        "genesis_tests_total {tests} comes from the run"
    );

    // A new plugin copied in place slowly: the reload in the middle of the copy finds it
    // half-written and waits for it to settle; nothing is reported as failed.
    let langmem = std::fs::read(crate::support::built_plugins_dir().join("langmem.wasm"))
        .expect("built langmem plugin");
    {
        let mut file = std::fs::File::create(plugins.join("langmem.wasm")).expect("create");
        file.write_all(&langmem[..langmem.len() / 2])
            .expect("first half");
        file.sync_all().expect("sync");
        std::thread::sleep(Duration::from_millis(900));
        file.write_all(&langmem[langmem.len() / 2..])
            .expect("second half");
    }
    let loaded = wait_for(
        "the slowly copied plugin to be loaded",
        Duration::from_secs(30),
        || scrape(&url).filter(|body| body.contains("testmeter_plugin_info{plugin=\"langmem\"")),
    );
    let log_now = crate::support::strip_ansi(&std::fs::read_to_string(&log).expect("log"));
    assert!(
        log_now.lines().any(|l| l.contains("plugins reloaded")
            && l.contains("pending=[")
            && l.contains("langmem.wasm\"]")),
        "a reload caught the copy half-way:\n{log_now}"
    );
    assert!(!log_now.contains("plugin not loaded"), "{log_now}");
    assert_eq!(
        value(
            &loaded,
            "testmeter_plugin_reloads_total{result=\"partial\"}"
        ),
        None
    );
    // Started at 0 when the plugin loaded, and never counted a failed load.
    assert_eq!(
        value(
            &loaded,
            "testmeter_plugin_errors_total{plugin=\"langmem\",reason=\"load\"}"
        ),
        Some(0.0)
    );

    // A replacement left half-written: once it stops changing it is reported, and the
    // previous version keeps serving.
    std::fs::write(
        plugins.join("waltzrl.wasm"),
        &component[..component.len() / 3],
    )
    .expect("write half");
    let failed = wait_for(
        "the failed load to be counted",
        Duration::from_secs(30),
        || {
            scrape(&url).filter(|body| {
                value(body, "testmeter_plugin_reloads_total{result=\"partial\"}").is_some()
            })
        },
    );
    let calls = |body: &str| value(body, "testmeter_plugin_calls_total{plugin=\"waltzrl\"}");
    let calls_then = calls(&failed).expect("waltzrl derived before");
    wait_for(
        "the previous version to derive again",
        Duration::from_secs(30),
        || scrape(&url).filter(|body| calls(body).is_some_and(|now| now > calls_then)),
    );

    // The complete replacement.
    install(&component);
    wait_for(
        "the replacement to be loaded",
        Duration::from_secs(30),
        || {
            scrape(&url).filter(|body| {
                value(body, "testmeter_plugin_reloads_total{result=\"ok\"}")
                    .is_some_and(|n| n >= 2.0)
            })
        },
    );

    // Removed again: the set shrinks back; the agent keeps serving.
    std::fs::remove_file(plugins.join("waltzrl.wasm")).expect("remove");
    wait_for(
        "the removal to be reloaded",
        Duration::from_secs(30),
        || {
            let log = std::fs::read_to_string(&log).unwrap_or_default();
            log.lines()
                .any(|l| l.contains("plugins reloaded") && l.contains("removed=[\"waltzrl\"]"))
                .then_some(())
        },
    );
    // The agent's own reads of the plugins must not set off more reloads.
    std::thread::sleep(Duration::from_secs(2));
    let log = crate::support::strip_ansi(&std::fs::read_to_string(&log).expect("log"));
    let reloads: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("plugins reloaded"))
        .collect();
    assert!(
        reloads.len() <= 9,
        "one reload per change, not a loop: {reloads:#?}"
    );
    assert!(
        reloads.iter().all(|l| l.contains("time_to_ready=")),
        "{reloads:?}"
    );
}
