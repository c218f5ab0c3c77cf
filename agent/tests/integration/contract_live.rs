//! `testmeter check --prometheus` and `testmeter gate` against a real Prometheus scraping a real
//! agent that runs the three example suites: every series the generated dashboards and rules
//! reference has recent samples and every generated panel returns data; the source document's
//! files show their real problems live too; a Prometheus that is down is an error, not a clean
//! report; and the gate's verdicts follow the values of real runs.

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use crate::support::{built_plugins_dir, example_config, venv_path, wait_for, Guard, Prometheus};

fn testmeter(config: &Path, args: &[String]) -> Output {
    crate::support::testmeter_command(config)
        .args(args)
        .current_dir(crate::support::repo_root())
        .env("RUST_LOG", "warn")
        .output()
        .expect("testmeter runs")
}

fn args(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

#[test]
fn generated_dashboards_and_rules_have_data_in_a_live_prometheus() {
    let dir = tempfile::tempdir().expect("tempdir");
    let metrics_port = crate::support::free_port();
    let prometheus = Prometheus::start(dir.path(), &format!("127.0.0.1:{metrics_port}"));
    let config = example_config(
        dir.path(),
        &built_plugins_dir(),
        &format!("[prometheus]\nlisten = \"127.0.0.1:{metrics_port}\"\n"),
    );
    let log = std::fs::File::create(dir.path().join("testmeter.log")).expect("log file");
    let _agent = Guard::spawn(
        "testmeter run",
        crate::support::testmeter_command(&config)
            .args(["run", "--config"])
            .arg(&config)
            .env("PATH", venv_path())
            .stdout(log.try_clone().expect("clone"))
            .stderr(log),
    );
    // Every suite ran and was scraped, and its counters have the two samples rate() needs.
    wait_for(
        "two scrapes after the first run of every suite",
        Duration::from_secs(120),
        || {
            ["osworld", "langmem", "waltzrl"]
                .iter()
                .all(|suite| {
                    prometheus
                        .query(&format!(
                            "count_over_time(testmeter_suite_runs_total{{suite=\"{suite}\"}}[1m]) >= 2"
                        ))
                        .len()
                        == 1
                })
                .then_some(())
        },
    );
    let config_arg = config.to_string_lossy().into_owned();
    let dashboards = dir.path().join("dashboards");
    let rules = dir.path().join("alerts.yml");
    for command in [
        args(&[
            "dashboards",
            "--config",
            &config_arg,
            "--out",
            &dashboards.to_string_lossy(),
        ]),
        args(&[
            "alerts",
            "--config",
            &config_arg,
            "--out",
            &rules.to_string_lossy(),
        ]),
    ] {
        let output = testmeter(&config, &command);
        assert!(output.status.success(), "{output:?}");
    }
    let url = format!("http://127.0.0.1:{}", prometheus.port);
    let output = testmeter(
        &config,
        &args(&[
            "check",
            "--config",
            &config_arg,
            "--prometheus",
            &url,
            &dashboards.to_string_lossy(),
            &rules.to_string_lossy(),
        ]),
    );
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{report}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(report.starts_with("0 finding(s) in "), "{report}");

    // The source document's own files, live: their offline problems, plus what Prometheus
    // shows (series that do not exist, a panel that stays empty).
    let output = testmeter(
        &config,
        &args(&[
            "check",
            "--config",
            &config_arg,
            "--prometheus",
            &url,
            "tests/fixtures/seed-monitoring/grafana_dashboard.json",
            "tests/fixtures/seed-monitoring/production_alerts.yml",
            "tests/fixtures/seed-monitoring/required_alerts.yml",
        ]),
    );
    assert_eq!(output.status.code(), Some(1));
    insta::assert_snapshot!(String::from_utf8_lossy(&output.stdout));

    // `gate` on the live Prometheus agrees with the value Prometheus holds.
    let output = testmeter(
        &config,
        &args(&[
            "gate",
            "--config",
            &config_arg,
            "--prometheus",
            &url,
            "--slo",
            "TestPassRateLow",
            "--format",
            "json",
        ]),
    );
    let results: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
    let rate = prometheus.query("genesis_test_pass_rate")[0]["value"][1]
        .as_str()
        .and_then(|v| v.parse::<f64>().ok())
        .expect("a pass rate");
    let breached = rate < 98.0;
    assert_eq!(
        results[0]["verdict"],
        if breached { "breached" } else { "met" },
        "pass rate {rate}: {results}"
    );
    assert_eq!(output.status.success(), !breached);
}

#[test]
fn gate_decides_the_osworld_rollback_trigger_on_a_run_it_makes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = example_config(dir.path(), &built_plugins_dir(), "");
    let output = crate::support::testmeter_command(&config)
        .args(["gate", "--config"])
        .arg(&config)
        .args([
            "--slo",
            "OSWorldSuccessRateRollback",
            "--slo",
            "OSWorldSuccessRateLow",
            "--format",
            "json",
        ])
        .env("PATH", venv_path())
        .env("RUST_LOG", "warn")
        .output()
        .expect("testmeter runs");
    let results: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
    // The verdicts follow the success rate the harness itself wrote for that run.
    let written: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.path().join("osworld_results.json")).expect("results JSON"),
    )
    .expect("parses");
    let rate = written["success_rate"].as_f64().expect("success_rate") * 100.0;
    let verdict = |below: f64| if rate < below { "breached" } else { "met" };
    assert_eq!(results[0]["slo"], "OSWorldSuccessRateRollback");
    assert_eq!(results[0]["verdict"], verdict(85.0), "{results}");
    assert_eq!(results[1]["verdict"], verdict(90.0), "{results}");
    assert_eq!(output.status.success(), rate >= 90.0);
}

#[test]
fn a_prometheus_that_is_down_is_an_error_not_a_clean_report() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = example_config(dir.path(), &built_plugins_dir(), "");
    let down = format!("http://127.0.0.1:{}", crate::support::free_port());
    let output = testmeter(
        &config,
        &args(&[
            "check",
            "--config",
            &config.to_string_lossy(),
            "--prometheus",
            &down,
            "tests/fixtures/check/rules.yml",
        ]),
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(output.stdout.is_empty(), "no report is printed");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("error: cannot query Prometheus at {down}: ")),
        "{stderr}"
    );
}
