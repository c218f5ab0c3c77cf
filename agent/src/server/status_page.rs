//! The `/` status page: one self-contained HTML document (no script, no external resources)
//! with each suite's latest run, its result, the SLO verdicts on that run and the loaded plugins.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

use super::html::{ago, escape, STYLE};
use crate::consumers::status::{self, Health, RunResult, Snapshot, SuiteRow, SuiteStatus};
use crate::contract::gate::Verdict;

/// Seconds between the page's own reloads.
const REFRESH_SECS: u32 = 30;

/// Renders the page for `snapshot` as of `now`; with `history`, each suite's name links to its
/// page (`/suite/<name>`).
pub fn render(snapshot: &Snapshot, now: SystemTime, history: bool) -> String {
    let mut out = String::new();
    let failing = snapshot
        .suites
        .iter()
        .filter_map(|row| row.last.as_ref())
        .filter(|last| last.health() != Health::Passed)
        .count();
    let breached: usize = snapshot
        .suites
        .iter()
        .filter_map(|row| row.last.as_ref())
        .map(|last| last.slo_counts().0)
        .sum();
    let _ = write!(
        out,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta http-equiv=\"refresh\" content=\"{REFRESH_SECS}\">\
<title>testmeter status</title><style>{STYLE}</style></head>\n<body>\n<header>\
<h1>testmeter</h1><p>version {version} · up {up} · {suites} suite(s), {failing} not passing, \
{breached} SLO breach(es) on their latest runs</p>\
<nav><a href=\"/metrics\">/metrics</a><a href=\"/healthz\">/healthz</a>\
<a href=\"/readyz\">/readyz</a></nav></header>\n<main>\n",
        version = escape(snapshot.version),
        up = ago(snapshot.started_at, now),
        suites = snapshot.suites.len(),
    );
    out.push_str(
        "<h2>Suites</h2>\n<table class=\"suites\"><thead><tr><th>Suite</th><th>System</th>\
<th>Last run</th><th>Duration</th><th>Result</th><th>Tests</th><th>SLOs on this run</th>\
</tr></thead><tbody>\n",
    );
    for row in &snapshot.suites {
        suite_row(&mut out, row, now, history);
    }
    out.push_str("</tbody></table>\n<h2>Plugins</h2>\n");
    if snapshot.plugins.is_empty() {
        out.push_str("<p class=\"problem\">No plugin is loaded.</p>\n");
    } else {
        out.push_str(
            "<table class=\"plugins\"><thead><tr><th>Plugin</th><th>Version</th><th>WIT</th>\
<th>Systems</th></tr></thead><tbody>\n",
        );
        for plugin in &snapshot.plugins {
            let _ = writeln!(
                out,
                "<tr data-plugin=\"{name}\"><td>{name}</td><td>{version}</td><td>{wit}</td>\
<td>{systems}</td></tr>",
                name = escape(&plugin.name),
                version = escape(&plugin.version),
                wit = escape(&plugin.wit),
                systems = escape(&plugin.systems.join(", ")),
            );
        }
        out.push_str("</tbody></table>\n");
    }
    out.push_str("</main>\n</body></html>\n");
    out
}

fn suite_row(out: &mut String, row: &SuiteRow, now: SystemTime, history: bool) {
    let name = escape(&row.suite);
    let title = if history {
        format!(
            "<a href=\"{}\">{name}</a>",
            escape(&super::suite_page::href(&row.suite))
        )
    } else {
        name.clone()
    };
    let system = escape(&row.system);
    let Some(last) = &row.last else {
        let _ = writeln!(
            out,
            "<tr data-suite=\"{name}\" data-result=\"pending\"><td>{title}</td><td>{system}</td>\
<td>not yet</td><td></td><td><span class=\"badge pending\">pending</span></td><td></td>\
<td></td></tr>"
        );
        return;
    };
    let health = last.health();
    let _ = write!(
        out,
        "<tr data-suite=\"{name}\" data-result=\"{result}\"><td>{title}</td><td>{system}</td>\
<td><time datetime=\"{at}\">{ago} ago</time><br><small>{interval}</small></td>\
<td>{duration}</td><td><span class=\"badge {result}\">{result}</span></td><td>",
        result = health.as_str(),
        at = humantime::format_rfc3339_seconds(last.finished_at),
        ago = ago(last.finished_at, now),
        interval = row.interval.map_or_else(
            || "ingested".to_owned(),
            |every| format!("every {}", humantime::format_duration(every))
        ),
        duration = seconds(last.duration),
    );
    tests_cell(out, last);
    out.push_str("</td><td>");
    slos_cell(out, last);
    out.push_str("</td></tr>\n");
}

fn tests_cell(out: &mut String, last: &SuiteStatus) {
    match &last.result {
        RunResult::Ran {
            counts, partial, ..
        } => {
            let _ = write!(
                out,
                "<span data-tests=\"{tests}\">{passed} passed · {failed} failed · \
{errored} errored · {skipped} skipped</span>",
                tests = counts.tests,
                passed = counts.passed,
                failed = counts.failed,
                errored = counts.errored,
                skipped = counts.skipped,
            );
            if counts.flaky > 0 {
                let _ = write!(out, "<br><small>{} flaky</small>", counts.flaky);
            }
            if let Some(reason) = partial {
                let _ = write!(out, "<br><small>partial: {}</small>", escape(reason));
            }
        }
        RunResult::NotRun { error } => {
            let _ = write!(
                out,
                "<span class=\"problem\">could not run</span><br><code>{}</code>",
                escape(error)
            );
        }
    }
    for plugin in &last.plugins {
        if let Some(error) = &plugin.error {
            let _ = write!(
                out,
                "<br><span class=\"problem\">plugin {} failed:</span> <code>{}</code>",
                escape(&plugin.plugin),
                escape(error)
            );
        }
        if plugin.rejected > 0 {
            let _ = write!(
                out,
                "<br><small>plugin {}: {} sample(s) rejected</small>",
                escape(&plugin.plugin),
                plugin.rejected
            );
        }
    }
}

fn slos_cell(out: &mut String, last: &SuiteStatus) {
    if last.slos.is_empty() {
        out.push_str("<small>none declared</small>");
        return;
    }
    out.push_str("<ul class=\"slos\">");
    for slo in &last.slos {
        let word = status::verdict_word(&slo.verdict);
        let observed = status::observed_text(&slo.observed);
        let detail = match &slo.verdict {
            Verdict::Unknown { reason } => format!(" · {}", escape(reason)),
            _ if observed.is_empty() => String::new(),
            _ => format!(" · {}", escape(&observed)),
        };
        let _ = write!(
            out,
            "<li data-slo=\"{name}\" data-verdict=\"{word}\" title=\"{expr}\">\
<span class=\"badge {word}\">{word}</span> {name} <small>{severity}{detail}</small></li>",
            name = escape(&slo.slo),
            expr = escape(&slo.expr),
            severity = escape(&slo.severity),
        );
    }
    out.push_str("</ul>");
}

fn seconds(duration: Duration) -> String {
    format!("{:.2} s", duration.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::consumers::status::{PluginInfo, PluginResult};
    use crate::contract::gate::{Observed, SloResult};
    use testmeter_parse::Summary;

    fn slo(name: &str, verdict: Verdict, value: Option<f64>) -> SloResult {
        SloResult {
            slo: name.to_owned(),
            plugin: "osworld".to_owned(),
            severity: "warning".to_owned(),
            expr: "genesis_osworld_success_rate{task_category=\"all\"} < 90".to_owned(),
            verdict,
            observed: value
                .map(|value| {
                    vec![Observed {
                        labels: BTreeMap::new(),
                        value,
                    }]
                })
                .unwrap_or_default(),
        }
    }

    #[test]
    fn the_page_shows_each_suite_its_result_and_slo_verdicts_escaped() {
        let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let counts = Summary {
            tests: 9,
            passed: 8,
            failed: 1,
            ..Summary::default()
        };
        let ran = SuiteStatus {
            suite: "osworld".to_owned(),
            system: "osworld".to_owned(),
            finished_at: start + Duration::from_secs(60),
            duration: Duration::from_millis(3_210),
            result: RunResult::Ran {
                counts,
                passed: false,
                partial: None,
            },
            plugins: vec![PluginResult {
                plugin: "osworld".to_owned(),
                error: None,
                rejected: 0,
            }],
            slos: vec![
                slo(
                    "OSWorldSuccessRateLow",
                    Verdict::Breached {
                        series: vec!["{} 88.9".to_owned()],
                    },
                    Some(88.888),
                ),
                slo("OSWorldSuccessRateRollback", Verdict::Met, Some(88.888)),
            ],
        };
        let broken = SuiteStatus {
            suite: "<script>".to_owned(),
            system: "osworld".to_owned(),
            finished_at: start + Duration::from_secs(30),
            duration: Duration::from_millis(15),
            result: RunResult::NotRun {
                error: "failed to start \"x\" & <y>".to_owned(),
            },
            plugins: Vec::new(),
            slos: vec![slo(
                "OSWorldSuccessRateLow",
                Verdict::Unknown {
                    reason: "the latest run produced no samples for it".to_owned(),
                },
                None,
            )],
        };
        let row = |status: Option<SuiteStatus>, name: &str| SuiteRow {
            suite: name.to_owned(),
            system: "osworld".to_owned(),
            interval: Some(Duration::from_secs(60)),
            last: status,
        };
        let snapshot = Snapshot {
            started_at: start,
            version: "0.0.0-test",
            plugins: vec![PluginInfo {
                name: "osworld".to_owned(),
                version: "0.1.0".to_owned(),
                wit: "0.2.0".to_owned(),
                systems: vec!["osworld".to_owned()],
            }],
            suites: vec![
                row(Some(ran), "osworld"),
                row(Some(broken), "<script>"),
                row(None, "later"),
            ],
        };
        let page = render(&snapshot, start + Duration::from_secs(75), true);
        assert!(!page.contains("<script>"), "suite names are escaped");
        insta::assert_snapshot!(page.replace("><", ">\n<"));
    }
}
