//! A real OTLP collector (rotel) that goes away and comes back while `testmeter run` pushes to
//! it: the agent keeps serving `/metrics`, counts the failed exports, logs the outage once and
//! the recovery once, and resumes pushing to the returned collector by itself.

use std::time::Duration;

use crate::support::{built_plugins_dir, osworld_config, scrape, wait_for, Guard, Rotel};

fn export_errors(body: &str) -> Option<f64> {
    body.lines()
        .find_map(|l| l.strip_prefix("testmeter_export_errors_total{exporter=\"otlp\"} "))?
        .parse()
        .ok()
}

#[test]
fn export_resumes_by_itself_when_the_collector_returns() {
    let dir = tempfile::tempdir().expect("tempdir");
    let first = Rotel::start_on(
        dir.path(),
        crate::support::free_port(),
        crate::support::free_port(),
        "first",
    );
    let (grpc_port, http_port) = (first.grpc_port, first.http_port);
    let port = crate::support::free_port();
    let url = format!("http://127.0.0.1:{port}/metrics");
    let config = osworld_config(
        dir.path(),
        &built_plugins_dir(),
        &format!(
            "[prometheus]\nlisten = \"127.0.0.1:{port}\"\n[otlp]\nendpoint = \"http://127.0.0.1:{grpc_port}\"\nprotocol = \"grpc\"\ninterval = \"300ms\"\ntimeout = \"1s\"\n"
        ),
    );
    let log_path = dir.path().join("testmeter.log");
    let log = std::fs::File::create(&log_path).expect("log");
    let mut agent = Guard::spawn(
        "testmeter run",
        crate::support::testmeter_command(&config)
            .args(["run", "--config"])
            .arg(&config)
            .env("PATH", crate::support::venv_path())
            .env("RUST_LOG", "info")
            .stdout(std::process::Stdio::null())
            .stderr(log),
    );
    first.wait_for_metrics(&["genesis_osworld_tasks_passed"]);

    // The collector goes away: exports fail and are counted; /metrics keeps serving.
    drop(first);
    let failed = wait_for("three failed exports", Duration::from_secs(60), || {
        export_errors(&scrape(&url)?).filter(|n| *n >= 3.0)
    });

    // It comes back on the same address: pushes resume without a restart.
    let second = Rotel::start_on(dir.path(), grpc_port, http_port, "second");
    second.wait_for_metrics(&[
        "genesis_osworld_tasks_passed",
        "testmeter_export_errors_total",
    ]);
    let after = export_errors(&scrape(&url).expect("/metrics serves")).expect("counted");
    std::thread::sleep(Duration::from_secs(2));
    let later = export_errors(&scrape(&url).expect("/metrics serves")).expect("counted");
    assert_eq!(later, after, "no more failures once the collector is back");
    assert!(after >= failed);

    let status = agent.terminate(Duration::from_secs(20));
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
    let log = crate::support::strip_ansi(&std::fs::read_to_string(&log_path).expect("log"));
    assert_eq!(log.matches("metric export failing").count(), 1, "{log}");
    assert_eq!(log.matches("metric export resumed").count(), 1, "{log}");
}
