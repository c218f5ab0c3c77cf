//! Traces end to end: `once` runs a suite under a CI job's `TRACEPARENT`, the suite's command
//! is handed its run's span, and a real collector (rotel) receives the run's span as a child of
//! the job's and its notable cases as children of the run's, with the test semantic-convention
//! attributes and the CI resource.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use crate::support::{
    free_port, plugins_dir_with_osworld, repo_root, run_until_suites_ran, testmeter_command,
    wait_for, Prometheus, ReceivedSpan, Rotel,
};

/// The CI job's span, as otel-cli or a pipeline's instrumentation would hand it down.
const CI_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CI_SPAN: &str = "00f067aa0ba902b7";

/// A config whose one suite copies the real osworld fixture report (10 tasks: one failed, one
/// skipped) and writes down the `TRACEPARENT` it was given.
fn config(dir: &Path, collector_http: u16, extra: &str) -> std::path::PathBuf {
    plugins_dir_with_osworld(dir);
    let fixture = repo_root().join("tests/fixtures/osworld/junit.xml");
    let config = dir.join("testmeter.toml");
    std::fs::write(
        &config,
        format!(
            "plugins_dir = \"plugins\"\n\
             [otlp]\nendpoint = \"http://127.0.0.1:{collector_http}\"\nprotocol = \"http/protobuf\"\n\
             {extra}\n\
             [[suite]]\nname = \"osworld\"\nsystem = \"osworld\"\n\
             command = [\"sh\", \"-c\", \"printf %s \\\"$TRACEPARENT\\\" > traceparent.txt; cp {} junit.xml\"]\n\
             report = \"junit.xml\"\n",
            fixture.display()
        ),
    )
    .expect("write config");
    config
}

/// Runs `testmeter once` on `config` in `dir` with `env` added; returns the `TRACEPARENT` the
/// suite's command was given (empty when none).
fn once(dir: &Path, config: &Path, env: &[(&str, &str)]) -> String {
    let output = testmeter_command(config)
        .current_dir(dir)
        .envs(env.iter().copied())
        .env("RUST_LOG", "warn")
        .args(["once", "--config"])
        .arg(config)
        .output()
        .expect("testmeter runs");
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    std::fs::read_to_string(dir.join("traceparent.txt")).expect("written")
}

/// A span for a snapshot: its name, whose child it is, its status and attributes, with the
/// figures that change from run to run redacted.
fn described(span: &ReceivedSpan, run_id: &str) -> String {
    let parent = match span.parent_id.as_str() {
        CI_SPAN => "the CI job",
        id if id == run_id => "the run",
        other => other,
    };
    let mut text = format!(
        "{} (child of {parent}) {} {}\n",
        span.name, span.status, span.status_message
    );
    for (key, value) in &span.attributes {
        let value = match key.as_str() {
            "testmeter.agent.duration_s" | "testmeter.suite.duration_s" => "[seconds]",
            _ => value,
        };
        text.push_str(&format!("  {key} = {value}\n"));
    }
    for event in &span.events {
        let attributes: BTreeMap<&String, &String> = event
            .iter()
            .filter(|(k, _)| k.starts_with("exception."))
            .collect();
        text.push_str(&format!(
            "  event {}: {attributes:?}\n",
            event.get("Name").map_or("?", String::as_str)
        ));
    }
    text
}

#[test]
fn once_under_a_ci_trace_sends_the_run_and_its_notable_cases_to_a_real_collector() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rotel = Rotel::start_traces(dir.path());
    let config = config(dir.path(), rotel.http_port, "");
    let parent = format!("00-{CI_TRACE}-{CI_SPAN}-01");
    let handed = once(
        dir.path(),
        &config,
        &[
            ("TRACEPARENT", parent.as_str()),
            // What GitHub Actions sets in a job (docs.github.com, "Variables reference").
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_SERVER_URL", "https://github.com"),
            ("GITHUB_REPOSITORY", "octo-org/octo-repo"),
            ("GITHUB_RUN_ID", "1658821493"),
            ("GITHUB_WORKFLOW", "CI"),
            ("GITHUB_JOB", "bench"),
            ("GITHUB_SHA", "ffac537e6cbbf934b08745a378932722df287a53"),
            ("GITHUB_REF", "refs/heads/main"),
            ("GITHUB_REF_NAME", "main"),
            ("GITHUB_REF_TYPE", "branch"),
        ],
    );

    // The suite's command was handed its run's span, in the CI job's trace.
    let fields: Vec<&str> = handed.split('-').collect();
    assert_eq!(fields.len(), 4, "{handed}");
    assert_eq!((fields[0], fields[1], fields[3]), ("00", CI_TRACE, "01"));
    let run_id = fields[2].to_owned();
    assert_ne!(run_id, CI_SPAN);

    // The run and its notable cases: the failed task and the 5 slowest of the others.
    let spans = wait_for(
        "the collector to receive 7 spans",
        Duration::from_secs(30),
        || {
            let spans = rotel.spans();
            (spans.len() >= 7).then_some(spans)
        },
    );
    assert_eq!(spans.len(), 7, "{spans:#?}");
    assert!(spans.iter().all(|s| s.trace_id == CI_TRACE), "{spans:#?}");
    let run = spans
        .iter()
        .find(|s| s.id == run_id)
        .expect("the run's span has the ids its command was given");
    assert_eq!(run.parent_id, CI_SPAN);
    let mut cases: Vec<&ReceivedSpan> = spans.iter().filter(|s| s.id != run_id).collect();
    assert!(cases.iter().all(|s| s.parent_id == run_id), "{cases:#?}");
    cases.sort_by(|a, b| a.name.cmp(&b.name));
    let text: String = std::iter::once(run)
        .chain(cases)
        .map(|s| described(s, &run_id))
        .collect::<Vec<_>>()
        .join("\n");
    insta::assert_snapshot!("spans", text);

    // The resource names the service and the CI run; metrics do not carry the CI run.
    let resource: BTreeMap<&String, &String> = run
        .resource
        .iter()
        .filter(|(k, _)| k.starts_with("cicd.") || k.starts_with("vcs.") || *k == "service.name")
        .collect();
    insta::assert_debug_snapshot!("resource", resource);
}

#[test]
fn traces_off_by_config_or_by_otel_traces_exporter_send_no_span_and_set_no_traceparent() {
    for (extra, variable) in [("[traces]\nenabled = false\n", None), ("", Some("none"))] {
        let dir = tempfile::tempdir().expect("tempdir");
        let rotel = Rotel::start_traces(dir.path());
        let config = config(dir.path(), rotel.http_port, extra);
        let env: Vec<(&str, &str)> = variable
            .map(|value| ("OTEL_TRACES_EXPORTER", value))
            .into_iter()
            .collect();
        let handed = once(dir.path(), &config, &env);
        assert_eq!(
            handed, "",
            "no run span, so no TRACEPARENT ({extra:?}, {variable:?})"
        );
        // Metrics still go (the run's push on exit); no span ever arrives.
        std::thread::sleep(Duration::from_millis(500));
        assert!(rotel.spans().is_empty(), "{:#?}", rotel.spans());
    }
}

#[test]
fn a_prometheus_exemplar_on_the_run_duration_leads_to_a_case_span_the_collector_received() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rotel = Rotel::start_traces(dir.path());
    let port = free_port();
    let config = config(
        dir.path(),
        rotel.http_port,
        &format!("[prometheus]\nlisten = \"127.0.0.1:{port}\"\n"),
    );
    let (_agent, _) = run_until_suites_ran(&config, port, 1);

    // What a scraper that asks for OpenMetrics gets: the run's trace on its duration bucket.
    let openmetrics = ureq::get(&format!("http://127.0.0.1:{port}/metrics"))
        .header("Accept", "application/openmetrics-text;version=1.0.0")
        .call()
        .expect("scrape")
        .body_mut()
        .read_to_string()
        .expect("body");
    assert!(openmetrics.ends_with("# EOF\n"), "{openmetrics}");
    let with_exemplar: Vec<&str> = openmetrics
        .lines()
        .filter(|l| {
            l.starts_with("testmeter_suite_run_duration_seconds_bucket") && l.contains(" # {")
        })
        .collect();
    assert_eq!(with_exemplar.len(), 1, "{openmetrics}");

    // A real Prometheus keeps it, and it names a trace the collector holds a case of.
    let prometheus = Prometheus::start(dir.path(), &format!("127.0.0.1:{port}"));
    let exemplars = wait_for(
        "Prometheus to keep an exemplar of the run duration",
        Duration::from_secs(30),
        || {
            let found = prometheus.exemplars("testmeter_suite_run_duration_seconds_bucket");
            (!found.is_empty()).then_some(found)
        },
    );
    let trace_id = exemplars[0]["labels"]["trace_id"]
        .as_str()
        .expect("a trace_id label")
        .to_owned();
    let span_id = exemplars[0]["labels"]["span_id"]
        .as_str()
        .expect("a span_id label")
        .to_owned();
    let spans = wait_for("the run's spans", Duration::from_secs(30), || {
        let spans = rotel.spans();
        spans.iter().any(|s| s.id == span_id).then_some(spans)
    });
    let case = spans
        .iter()
        .find(|s| s.trace_id == trace_id && s.parent_id == span_id)
        .expect("a case span of the exemplar's run");
    assert_eq!(
        case.attributes.get("test.suite.name").map(String::as_str),
        Some("Str(osworld)")
    );
    // The daemon's runs start traces of their own.
    let run = spans
        .iter()
        .find(|s| s.id == span_id)
        .expect("the run span");
    assert_eq!(run.parent_id, "", "{run:#?}");
    // Prometheus scraped the OpenMetrics text, and every series kept its name.
    assert_eq!(
        prometheus.value("testmeter_suite_runs_total"),
        Some(1.0),
        "{openmetrics}"
    );
}

#[test]
fn ingest_under_a_ci_trace_joins_it_and_keeps_the_configured_suites_trace_cases() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rotel = Rotel::start_traces(dir.path());
    // The configured suite of the same name sends its run's span only.
    let config = config(dir.path(), rotel.http_port, "");
    let text = std::fs::read_to_string(&config).expect("config");
    std::fs::write(&config, format!("{text}trace_cases = \"none\"\n")).expect("config");
    let report = repo_root().join("tests/fixtures/osworld/junit.xml");
    let output = testmeter_command(&config)
        .env("TRACEPARENT", format!("00-{CI_TRACE}-{CI_SPAN}-01"))
        .env("RUST_LOG", "warn")
        .arg("ingest")
        .arg(&report)
        .args(["--system", "osworld", "--suite", "osworld", "--config"])
        .arg(&config)
        .output()
        .expect("testmeter runs");
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    wait_for("the run's span", Duration::from_secs(30), || {
        (!rotel.spans().is_empty()).then_some(())
    });
    // `ingest` flushed before it exited: whatever it sent has arrived.
    let spans = rotel.spans();
    assert_eq!(spans.len(), 1, "only the run's span: {spans:#?}");
    let run = &spans[0];
    assert_eq!(
        (
            run.trace_id.as_str(),
            run.parent_id.as_str(),
            run.name.as_str()
        ),
        (CI_TRACE, CI_SPAN, "suite osworld")
    );
    assert_eq!(
        run.attributes
            .get("testmeter.case_spans")
            .map(String::as_str),
        Some("Int(0)")
    );
}
