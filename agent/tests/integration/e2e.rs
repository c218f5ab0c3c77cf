//! End to end with real parts: the bundled plugins built from source, `examples/testmeter.toml`
//! with its three real pytest example suites (osworld, langmem, waltzrl), `testmeter run` scraped by a real Prometheus and pushing OTLP/gRPC to a real rotel
//! collector, and `testmeter once` pushing OTLP/HTTP (configured through OTEL_* variables)
//! to a second rotel.

use std::time::Duration;

use crate::support::{
    built_plugins_dir, example_config, venv_path, wait_for, Guard, Prometheus, Rotel,
};

/// Every name the three bundled plugins export on the example suites, sorted.
const EXAMPLE_METRICS: &[&str] = &[
    "genesis_langmem_cache_size",
    "genesis_langmem_dedup_latency_seconds",
    "genesis_langmem_dedup_rate",
    "genesis_langmem_exact_dedup_total",
    "genesis_langmem_memory_usage_mb",
    "genesis_langmem_p95_latency_ms",
    "genesis_langmem_semantic_dedup_total",
    "genesis_langmem_tests_passed",
    "genesis_langmem_tests_total",
    "genesis_langmem_ttl_cleanups_total",
    "genesis_osworld_memory_usage_bytes",
    "genesis_osworld_step_count",
    "genesis_osworld_success_rate",
    "genesis_osworld_task_duration_seconds",
    "genesis_osworld_tasks_passed",
    "genesis_osworld_tasks_total",
    "genesis_test_pass_rate",
    "genesis_tests_failed_total",
    "genesis_tests_passed_total",
    "genesis_tests_skipped_total",
    "genesis_tests_total",
    "genesis_waltzrl_module_pass_rate",
    "genesis_waltzrl_module_tests",
    "genesis_waltzrl_tests_passing",
];

/// Test counts of a JUnit report the agent's run wrote, parsed independently of the agent.
fn report_summary(path: &std::path::Path) -> testmeter::parse::Summary {
    let parsed = testmeter::parse::parse_file(
        path,
        testmeter::parse::Format::Junit,
        testmeter::parse::Limits::default(),
    )
    .expect("the suite wrote its report");
    testmeter::parse::Summary::of(&parsed.report)
}

fn results_json(path: &std::path::Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).expect("the suite wrote its results JSON"))
        .expect("results JSON parses")
}

/// The series a run of the example suites must export, with their values, computed from what
/// the suites wrote into `dir` (the osworld results JSON and the langmem and waltzrl reports),
/// independently of the agent: the one truth `/metrics` and both OTLP collectors are held to.
fn expected_values(dir: &std::path::Path) -> Vec<(String, f64)> {
    let results = results_json(&dir.join("osworld_results.json"));
    let number = |value: &serde_json::Value| value.as_f64().expect("a number");
    let total = number(&results["total_tasks"]);
    let passed = number(&results["passed_tasks"]);
    assert!(passed < total, "the example fails one task by design");
    let mut expected = vec![
        (
            "genesis_osworld_success_rate{task_category=\"all\"}".to_owned(),
            number(&results["success_rate"]) * 100.0,
        ),
        (
            "genesis_osworld_tasks_total{status=\"passed\"}".to_owned(),
            passed,
        ),
        (
            "genesis_osworld_tasks_total{status=\"failed\"}".to_owned(),
            total - passed,
        ),
        ("genesis_osworld_tasks_passed{}".to_owned(), passed),
        (
            "genesis_osworld_memory_usage_bytes{}".to_owned(),
            number(&results["memory_usage_bytes"]),
        ),
    ];
    for (category, stats) in results["category_stats"]
        .as_object()
        .expect("category_stats")
    {
        expected.push((
            format!("genesis_osworld_success_rate{{task_category=\"{category}\"}}"),
            100.0 * number(&stats["passed"]) / number(&stats["total"]),
        ));
        // One duration observation per task of the category.
        expected.push((
            format!("genesis_osworld_task_duration_seconds_count{{category=\"{category}\"}}"),
            number(&stats["total"]),
        ));
    }
    let langmem = report_summary(&dir.join("langmem-junit.xml"));
    expected.push((
        "genesis_langmem_tests_total{}".to_owned(),
        langmem.tests as f64,
    ));
    expected.push((
        "genesis_langmem_tests_passed{}".to_owned(),
        langmem.passed as f64,
    ));
    let waltzrl = report_summary(&dir.join("waltzrl-junit.xml"));
    for (name, value) in [
        ("genesis_tests_total", waltzrl.tests),
        ("genesis_tests_passed_total", waltzrl.passed),
        ("genesis_tests_skipped_total", waltzrl.skipped),
        ("genesis_waltzrl_tests_passing", waltzrl.passed),
    ] {
        expected.push((format!("{name}{{}}"), value as f64));
    }
    expected.push((
        "genesis_test_pass_rate{}".to_owned(),
        100.0 * waltzrl.passed as f64 / waltzrl.tests as f64,
    ));
    expected
}

fn close(got: f64, want: f64) -> bool {
    (got - want).abs() <= 1e-9 * want.abs().max(1.0)
}

/// Every expected series reached the collector with its expected value.
fn assert_collector_has(collector: &Rotel, expected: &[(String, f64)], what: &str) {
    let received = collector.values();
    for (series, value) in expected {
        let got = received.get(series).copied();
        assert!(
            got.is_some_and(|got| close(got, *value)),
            "{what}: {series} is {got:?}, expected {value}"
        );
    }
}

#[test]
fn suite_flows_through_the_wasm_plugin_to_prometheus_and_otlp() {
    let plugins = &built_plugins_dir();
    let dir = tempfile::tempdir().expect("tempdir");
    let run_dir = dir.path().join("run");
    let once_dir = dir.path().join("once");
    std::fs::create_dir_all(&run_dir).expect("mkdir");
    std::fs::create_dir_all(&once_dir).expect("mkdir");

    let grpc_collector = Rotel::start(&run_dir);
    let http_collector = Rotel::start(&once_dir);
    let metrics_port = crate::support::free_port();
    let prometheus = Prometheus::start(dir.path(), &format!("127.0.0.1:{metrics_port}"));

    // `testmeter run`: OTLP over gRPC from the config file, /metrics scraped by Prometheus.
    let run_config = example_config(
        &run_dir,
        plugins,
        &format!(
            "[prometheus]\nlisten = \"127.0.0.1:{metrics_port}\"\n[otlp]\nendpoint = \"http://127.0.0.1:{}\"\nprotocol = \"grpc\"\ninterval = \"1s\"\n",
            grpc_collector.grpc_port
        ),
    );
    let run_log = std::fs::File::create(run_dir.join("testmeter.log")).expect("log file");
    let mut agent = Guard::spawn(
        "testmeter run",
        crate::support::testmeter_command(&run_config)
            .args(["run", "--config"])
            .arg(&run_config)
            .env("PATH", venv_path())
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .stdout(run_log.try_clone().expect("clone"))
            .stderr(run_log),
    );

    wait_for(
        "Prometheus to scrape the first run of every suite",
        Duration::from_secs(120),
        || {
            let ready = prometheus
                .value("sum(genesis_osworld_tasks_total)")
                .is_some()
                && ["osworld", "langmem", "waltzrl"].iter().all(|suite| {
                    prometheus
                        .value(&format!(
                            "sum(testmeter_suite_runs_total{{suite=\"{suite}\"}})"
                        ))
                        .is_some()
                })
                && prometheus.value("genesis_tests_total").is_some()
                && prometheus.value("genesis_langmem_tests_total").is_some();
            ready.then_some(())
        },
    );
    let expected = expected_values(&run_dir);
    for (series, value) in &expected {
        let got = prometheus.value(series);
        assert!(
            got.is_some_and(|got| close(got, *value)),
            "{series} on /metrics, as Prometheus scraped it: {got:?}, expected {value}"
        );
    }
    assert_eq!(
        prometheus.value("sum(genesis_waltzrl_module_tests)"),
        prometheus.value("genesis_tests_total"),
        "the per-module breakdown adds up to the total"
    );
    assert_eq!(
        prometheus.value("testmeter_suite_runs_total{suite=\"osworld\",result=\"failed\"}"),
        Some(1.0)
    );
    assert!(prometheus
        .value("testmeter_last_success_timestamp_seconds{suite=\"osworld\"}")
        .is_some());
    assert!(
        prometheus
            .value("testmeter_suite_peak_rss_bytes{suite=\"osworld\"}")
            .is_some_and(|bytes| bytes > 0.0),
        "the suite's peak RSS is the agent's own series"
    );

    // The names as stored by Prometheus, character for character: no unit or _total suffixes.
    let mut names: Vec<String> = prometheus
        .names()
        .into_iter()
        .filter(|n| n.starts_with("genesis_") || n.starts_with("testmeter_"))
        .collect();
    names.sort();
    insta::assert_yaml_snapshot!("prometheus_metric_names", names);

    let grpc_names = grpc_collector.wait_for_metrics(EXAMPLE_METRICS);
    assert_collector_has(&grpc_collector, &expected, "OTLP/gRPC from `run`");

    let status = agent.terminate(Duration::from_secs(20));
    assert!(
        status.is_some_and(|s| s.success()),
        "testmeter run exits 0 on SIGTERM, got {status:?}"
    );

    // `testmeter once`: OTLP over HTTP, configured only through the standard variables.
    let once_config = example_config(
        &once_dir,
        plugins,
        "[prometheus]\nlisten = \"127.0.0.1:0\"\n",
    );
    let once = crate::support::testmeter_command(&once_config)
        .args(["once", "--config"])
        .arg(&once_config)
        .env("PATH", venv_path())
        .env(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            format!("http://127.0.0.1:{}", http_collector.http_port),
        )
        .env("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
        .env("OTEL_SERVICE_NAME", "testmeter-e2e")
        .output()
        .expect("testmeter once runs");
    assert!(
        once.status.success(),
        "a failing test is not a failed run: {}",
        String::from_utf8_lossy(&once.stderr)
    );
    let http_names = http_collector.wait_for_metrics(EXAMPLE_METRICS);
    assert_collector_has(
        &http_collector,
        &expected_values(&once_dir),
        "OTLP/HTTP from `once`",
    );
    let plugin_names = |names: &[String]| -> Vec<String> {
        names
            .iter()
            .filter(|n| n.starts_with("genesis_"))
            .cloned()
            .collect()
    };
    assert_eq!(plugin_names(&grpc_names), plugin_names(&http_names));
    assert_eq!(plugin_names(&grpc_names), EXAMPLE_METRICS);
    assert!(
        http_collector
            .output()
            .contains("service.name: Str(testmeter-e2e)"),
        "OTEL_SERVICE_NAME names the resource"
    );
}
