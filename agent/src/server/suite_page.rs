//! The `/suite/<name>` page: a suite's recent runs from the per-test history, its pass rate and
//! duration drawn as inline SVG (no script, like `/`), and the tests of its latest run that are
//! new failures, failing, fixed, flaky, slower or quarantined, each with its recent outcomes as
//! a strip.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

use super::html::{ago, escape, STYLE};
use crate::history::store::{RunRow, SuitePage};
use crate::history::State;
use crate::model::Outcome;

/// Runs drawn and stripped.
pub const RUNS: usize = 30;
/// Tests listed of each state.
pub const LISTED: usize = 50;

const PAGE_STYLE: &str = "\
svg{display:block;margin:4px 0 12px;background:#f6f8fa;border:1px solid #d0d7de}\
.strip{display:inline-flex;gap:2px;vertical-align:middle}\
.strip i{display:inline-block;width:8px;height:14px;border-radius:2px;background:#eaeef2}\
.strip i.passed{background:#1a7f37}.strip i.failed,.strip i.errored{background:#cf222e}\
.strip i.skipped{background:#afb8c1}\
.new_failure,.failing{background:#cf222e}.fixed{background:#1a7f37}\
.flaky,.slower{background:#bf8700}.quarantined{background:#6e7781}";

const WIDTH: f64 = 600.0;
const HEIGHT: f64 = 120.0;

/// Renders the page of `suite` from what its history holds, as of `now`.
pub fn render(suite: &str, page: &SuitePage, now: SystemTime) -> String {
    let mut out = String::new();
    let name = escape(suite);
    let _ = write!(
        out,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<title>{name} · testmeter</title><style>{STYLE}{PAGE_STYLE}</style></head>\n<body>\n\
<header><h1>{name}</h1><nav><a href=\"/\">all suites</a><a href=\"/metrics\">/metrics</a></nav>\
</header>\n<main>\n"
    );
    let Some(latest) = page.runs.first() else {
        out.push_str("<p>No run of this suite is recorded in the per-test history yet.</p>\n");
        out.push_str("</main>\n</body></html>\n");
        return out;
    };
    let started = SystemTime::UNIX_EPOCH
        + Duration::from_millis(u64::try_from(latest.started_unix_ms).unwrap_or(0));
    let _ = writeln!(
        out,
        "<p>{runs} recorded run(s) shown; the latest started {ago} ago: {result}, {tests} tests, \
{failed} failed, {errored} errored, {new} new failure(s){commit}</p>",
        runs = page.runs.len(),
        ago = ago(started, now),
        result = escape(&latest.result),
        tests = latest.tests,
        failed = latest.failed,
        errored = latest.errored,
        new = latest.new_failures,
        commit = latest
            .commit
            .as_deref()
            .map(|c| format!(" at commit <code>{}</code>", escape(c)))
            .unwrap_or_default(),
    );
    let oldest_first: Vec<&RunRow> = page.runs.iter().rev().collect();
    out.push_str("<h2>Pass rate</h2>\n");
    pass_rate_chart(&mut out, &oldest_first);
    out.push_str("<h2>Duration</h2>\n");
    duration_chart(&mut out, &oldest_first);
    out.push_str("<h2>Tests to look at in the latest run</h2>\n");
    if page.tests.is_empty() {
        out.push_str("<p>None: every test passed or was skipped, as before.</p>\n");
    } else {
        out.push_str(
            "<table class=\"tests\"><thead><tr><th>State</th><th>Test</th><th>Recent runs \
(oldest first)</th><th>Message</th></tr></thead><tbody>\n",
        );
        for test in &page.tests {
            let state = test.state.as_str();
            let streak = if test.state == State::Failing {
                format!("<br><small>{} runs in a row</small>", test.fail_streak)
            } else {
                String::new()
            };
            let full = if test.classname.is_empty() {
                test.name.clone()
            } else {
                format!("{}::{}", test.classname, test.name)
            };
            let _ = write!(
                out,
                "<tr data-test=\"{full}\" data-state=\"{state}\"><td><span class=\"badge {state}\">\
{state}</span>{streak}</td><td><code>{full}</code></td><td><span class=\"strip\">",
                full = escape(&full),
            );
            for outcome in &test.strip {
                let word = outcome.map_or("absent", Outcome::as_str);
                let _ = write!(out, "<i class=\"{word}\" title=\"{word}\"></i>");
            }
            let _ = writeln!(
                out,
                "</span></td><td><code>{}</code></td></tr>",
                escape(test.message.as_deref().unwrap_or(""))
            );
        }
        out.push_str("</tbody></table>\n");
    }
    out.push_str("</main>\n</body></html>\n");
    out
}

/// x of the `index`th of `count` runs.
fn x(index: usize, count: usize) -> f64 {
    if count <= 1 {
        WIDTH / 2.0
    } else {
        10.0 + (WIDTH - 20.0) * index as f64 / (count - 1) as f64
    }
}

/// Passed of the tests that ran (skipped left out), in percent; `None` for a run of no test.
fn pass_rate(run: &RunRow) -> Option<f64> {
    let ran = run.tests - run.skipped;
    (ran > 0).then(|| 100.0 * (ran - run.failed - run.errored) as f64 / ran as f64)
}

fn pass_rate_chart(out: &mut String, runs: &[&RunRow]) {
    let points: Vec<(f64, f64, &RunRow, f64)> = runs
        .iter()
        .enumerate()
        .filter_map(|(i, run)| {
            let rate = pass_rate(run)?;
            Some((
                x(i, runs.len()),
                10.0 + (HEIGHT - 20.0) * (1.0 - rate / 100.0),
                *run,
                rate,
            ))
        })
        .collect();
    let _ = write!(
        out,
        "<svg class=\"pass-rate\" width=\"{WIDTH}\" height=\"{HEIGHT}\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" \
role=\"img\" aria-label=\"pass rate per run\"><line x1=\"0\" y1=\"10\" x2=\"{WIDTH}\" y2=\"10\" \
stroke=\"#d0d7de\"/><text x=\"{label}\" y=\"22\" font-size=\"10\" text-anchor=\"end\" \
fill=\"#59636e\">100%</text><text x=\"{label}\" y=\"{bottom}\" font-size=\"10\" \
text-anchor=\"end\" fill=\"#59636e\">0%</text><polyline fill=\"none\" stroke=\"#0969da\" stroke-width=\"2\" points=\"",
        label = LABEL_X,
        bottom = HEIGHT - 12.0,
    );
    for (x, y, ..) in &points {
        let _ = write!(out, "{x:.1},{y:.1} ");
    }
    out.push_str("\"/>");
    for (x, y, run, rate) in &points {
        let _ = write!(
            out,
            "<circle data-run=\"{id}\" data-rate=\"{rate:.1}\" cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"3\" \
fill=\"#0969da\"><title>run {id}: {rate:.1}% passed</title></circle>",
            id = run.id,
        );
    }
    out.push_str("</svg>\n");
}

/// Where the charts' labels end, inside their right edge.
const LABEL_X: f64 = WIDTH - 4.0;

fn duration_chart(out: &mut String, runs: &[&RunRow]) {
    let longest = runs.iter().map(|r| r.duration_ms).max().unwrap_or(0).max(1) as f64;
    let bar = ((WIDTH - 20.0) / runs.len().max(1) as f64 - 2.0).max(1.0);
    let _ = write!(
        out,
        "<svg class=\"duration\" width=\"{WIDTH}\" height=\"{HEIGHT}\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" \
role=\"img\" aria-label=\"duration per run\"><text x=\"{LABEL_X}\" y=\"12\" font-size=\"10\" \
text-anchor=\"end\" fill=\"#59636e\">longest {longest_s:.2} s</text>",
        longest_s = longest / 1000.0,
    );
    for (i, run) in runs.iter().enumerate() {
        // The top 20 px are the label's.
        let height = (HEIGHT - 30.0) * run.duration_ms as f64 / longest;
        let _ = write!(
            out,
            "<rect data-run=\"{id}\" data-ms=\"{ms}\" x=\"{left:.1}\" y=\"{top:.1}\" width=\"{bar:.1}\" \
height=\"{height:.1}\" fill=\"#8250df\"><title>run {id}: {seconds:.2} s</title></rect>",
            id = run.id,
            ms = run.duration_ms,
            left = 10.0 + i as f64 * (bar + 2.0),
            top = HEIGHT - 10.0 - height,
            seconds = run.duration_ms as f64 / 1000.0,
        );
    }
    out.push_str("</svg>\n");
}

/// `/suite/<name>` with `name` percent-decoded; `None` for another path or a name that does
/// not decode to UTF-8.
pub fn suite_of(path: &str) -> Option<String> {
    let encoded = path.strip_prefix("/suite/")?;
    let mut bytes = Vec::with_capacity(encoded.len());
    let mut rest = encoded.as_bytes();
    while let [first, tail @ ..] = rest {
        if *first == b'%' {
            let hex = tail.get(..2)?;
            let value = u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?;
            bytes.push(value);
            rest = &tail[2..];
        } else {
            bytes.push(*first);
            rest = tail;
        }
    }
    String::from_utf8(bytes)
        .ok()
        .filter(|name| !name.is_empty())
}

/// A suite name as a path segment of its page's URL.
pub fn href(suite: &str) -> String {
    let mut out = String::from("/suite/");
    for byte in suite.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(byte));
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suite_names_round_trip_through_their_urls() {
        for name in ["osworld", "a b/c", "ü&<x>", "100%"] {
            assert_eq!(suite_of(&href(name)).as_deref(), Some(name));
        }
        assert_eq!(suite_of("/suite/"), None);
        assert_eq!(suite_of("/suite/%zz"), None);
        assert_eq!(suite_of("/other"), None);
    }
}
