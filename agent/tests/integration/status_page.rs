//! The `/` status page of a real `testmeter run` of the three example suites, rendered by
//! headless Chromium: the rendered DOM lists every suite with the result, the test counts and
//! the SLO verdicts that `/metrics` shows for the same runs, and the screenshot shows the page
//! styled, with the red and green badges of those results.

use std::process::Stdio;
use std::time::Duration;

use crate::support::{
    attribute_values, built_plugins_dir, chromium, example_config, exposition_value, venv_path,
    wait_for, Guard, Screenshot, HEIGHT, WIDTH,
};

/// The badge colours of the page's style sheet.
const GREEN: [u8; 3] = [0x1a, 0x7f, 0x37];
const RED: [u8; 3] = [0xcf, 0x22, 0x2e];

/// One suite's row of the rendered page: its result, its test-count text and its SLOs with
/// their verdicts.
#[derive(Debug)]
struct Row<'a> {
    suite: &'a str,
    result: &'a str,
    tests: &'a str,
    slos: Vec<(&'a str, &'a str)>,
}

fn rows(dom: &str) -> Vec<Row<'_>> {
    dom.split("<tr data-suite=\"")
        .skip(1)
        .map(|row| {
            let row = row.split("</tr>").next().unwrap_or(row);
            let suite = row.split('"').next().unwrap_or_default();
            let result = attribute_values(row, "data-result")
                .first()
                .copied()
                .unwrap_or_default();
            let tests = row
                .split("data-tests=\"")
                .nth(1)
                .and_then(|t| t.split_once('>'))
                .and_then(|(_, t)| t.split('<').next())
                .unwrap_or_default();
            let slos = attribute_values(row, "data-slo")
                .into_iter()
                .zip(attribute_values(row, "data-verdict"))
                .collect();
            Row {
                suite,
                result,
                tests,
                slos,
            }
        })
        .collect()
}

#[test]
fn the_status_page_renders_in_chromium_with_the_results_metrics_show() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = crate::support::free_port();
    let config = example_config(
        dir.path(),
        &built_plugins_dir(),
        &format!("[prometheus]\nlisten = \"127.0.0.1:{port}\"\n"),
    );
    let _agent = Guard::spawn(
        "testmeter run",
        crate::support::testmeter_command(&config)
            .args(["run", "--config"])
            .arg(&config)
            .env("PATH", venv_path())
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    let base = format!("http://127.0.0.1:{port}");
    let exposition = wait_for("3 suites to have run", Duration::from_secs(90), || {
        let body = crate::support::scrape(&format!("{base}/metrics"))?;
        let runs = body
            .lines()
            .filter(|l| l.starts_with("testmeter_suite_runs_total{"))
            .count();
        (runs == 3).then_some(body)
    });

    let profile = dir.path().join("chromium");
    let dom = chromium(&profile, "--dump-dom", &format!("{base}/"));
    assert!(dom.status.success(), "chromium --dump-dom: {dom:?}");
    let dom = String::from_utf8_lossy(&dom.stdout).into_owned();
    let rows = rows(&dom);
    let names: Vec<(&str, Vec<&str>)> = rows
        .iter()
        .map(|r| (r.suite, r.slos.iter().map(|(slo, _)| *slo).collect()))
        .collect();
    insta::assert_debug_snapshot!(names);

    for row in &rows {
        // The result is the one /metrics counted for the same run.
        let counted = |result: &str| {
            exposition_value(
                &exposition,
                &format!(
                    "testmeter_suite_runs_total{{result=\"{result}\",suite=\"{}\"}}",
                    row.suite
                ),
            )
        };
        assert_eq!(counted(row.result), Some(1.0), "{row:?}");
        // The test counts are those of testmeter_suite_tests.
        let count = |outcome: &str| {
            exposition_value(
                &exposition,
                &format!(
                    "testmeter_suite_tests{{outcome=\"{outcome}\",suite=\"{}\"}}",
                    row.suite
                ),
            )
            .unwrap_or(f64::NAN)
        };
        assert_eq!(
            row.tests,
            format!(
                "{} passed · {} failed · {} errored · {} skipped",
                count("passed"),
                count("failed"),
                count("errored"),
                count("skipped")
            ),
            "{row:?}"
        );
    }
    // The osworld SLO verdicts follow the success rate the run exported.
    let rate = exposition_value(
        &exposition,
        "genesis_osworld_success_rate{task_category=\"all\"}",
    )
    .expect("osworld success rate exported");
    let osworld = rows
        .iter()
        .find(|r| r.suite == "osworld")
        .expect("osworld row");
    let verdict = |slo: &str| {
        osworld
            .slos
            .iter()
            .find(|(name, _)| *name == slo)
            .map(|(_, verdict)| *verdict)
    };
    let word = |breached: bool| if breached { "breached" } else { "met" };
    assert_eq!(verdict("OSWorldSuccessRateLow"), Some(word(rate < 90.0)));
    assert_eq!(
        verdict("OSWorldSuccessRateRollback"),
        Some(word(rate < 85.0))
    );

    // The screenshot: the page's size, mostly white, with the badges drawn in their colours.
    let shot = dir.path().join("status.png");
    let output = chromium(
        &profile,
        &format!("--screenshot={}", shot.display()),
        &format!("{base}/"),
    );
    assert!(output.status.success(), "chromium --screenshot: {output:?}");
    let screenshot = Screenshot::open(&shot);
    assert_eq!((screenshot.width, screenshot.height), (WIDTH, HEIGHT));
    let count = |rgb: [u8; 3]| screenshot.count(rgb);
    let total = (WIDTH * HEIGHT) as usize;
    assert!(count([0xff; 3]) > total / 2, "a white page");
    let shown = |words: &[&str]| {
        rows.iter()
            .any(|r| words.contains(&r.result) || r.slos.iter().any(|(_, v)| words.contains(v)))
    };
    // A badge is about 64×20 pixels of solid colour.
    for (colour, words, name) in [
        (GREEN, &["passed", "met"][..], "green"),
        (RED, &["failed", "breached", "error"][..], "red"),
    ] {
        let pixels = count(colour);
        assert_eq!(
            pixels > 1_000,
            shown(words),
            "{pixels} {name} pixels for {rows:?}"
        );
    }
}
