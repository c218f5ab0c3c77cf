//! Traces end to end: `once` runs a suite under a CI job's `TRACEPARENT`, the suite's command
//! is handed its run's span, and a real collector (rotel) receives the run's span as a child of
//! the job's and its notable cases as children of the run's, with the test semantic-convention
//! attributes and the CI resource.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use crate::support::{
    plugins_dir_with_osworld, repo_root, testmeter_command, wait_for, ReceivedSpan, Rotel,
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
    let output = testmeter_command(&config)
        .current_dir(dir.path())
        .env("TRACEPARENT", format!("00-{CI_TRACE}-{CI_SPAN}-01"))
        // What GitHub Actions sets in a job (docs.github.com, "Variables reference").
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_SERVER_URL", "https://github.com")
        .env("GITHUB_REPOSITORY", "octo-org/octo-repo")
        .env("GITHUB_RUN_ID", "1658821493")
        .env("GITHUB_WORKFLOW", "CI")
        .env("GITHUB_JOB", "bench")
        .env("GITHUB_SHA", "ffac537e6cbbf934b08745a378932722df287a53")
        .env("GITHUB_REF", "refs/heads/main")
        .env("GITHUB_REF_NAME", "main")
        .env("GITHUB_REF_TYPE", "branch")
        .env("RUST_LOG", "warn")
        .args(["once", "--config"])
        .arg(&config)
        .output()
        .expect("testmeter runs");
    assert_eq!(output.status.code(), Some(0), "{output:?}");

    // The suite's command was handed its run's span, in the CI job's trace.
    let handed = std::fs::read_to_string(dir.path().join("traceparent.txt")).expect("written");
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
        let mut command = testmeter_command(&config);
        if let Some(value) = variable {
            command.env("OTEL_TRACES_EXPORTER", value);
        }
        let output = command
            .current_dir(dir.path())
            .env("RUST_LOG", "warn")
            .args(["once", "--config"])
            .arg(&config)
            .output()
            .expect("testmeter runs");
        assert_eq!(output.status.code(), Some(0), "{output:?}");
        let handed = std::fs::read_to_string(dir.path().join("traceparent.txt")).expect("written");
        assert_eq!(
            handed, "",
            "no run span, so no TRACEPARENT ({extra:?}, {variable:?})"
        );
        // Metrics still go (the run's push on exit); no span ever arrives.
        std::thread::sleep(Duration::from_millis(500));
        assert!(rotel.spans().is_empty(), "{:#?}", rotel.spans());
    }
}
