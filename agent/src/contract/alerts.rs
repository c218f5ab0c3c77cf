//! Prometheus alert rules generated from the contract: one group per plugin from its declared
//! SLOs, and one group for the agent with a staleness alert per suite, a quarantine alert and a
//! new-test-failures alert from the per-test history.

use std::collections::BTreeMap;
use std::time::Duration;

use super::model::{Contract, ContractSuite};
use super::rules::{prometheus_duration, Rule, RuleFile, RuleGroup};
use crate::export::self_metrics;

/// How long a suite may go without a successful run before it is stale: three missed
/// intervals, plus the run's own timeout.
pub fn stale_after(suite: &ContractSuite) -> Duration {
    suite.interval * 3 + suite.timeout
}

fn annotations(pairs: &[(&str, String)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

/// `text` as it reads, in a label or annotation, which Prometheus expands as a Go template:
/// every `{{` and `}}` in what a plugin declared is written as a template printing it, so no
/// summary, expression or name can break the rule file or run a template.
fn literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(['{', '}']) {
        let (before, from) = rest.split_at(at);
        out.push_str(before);
        if let Some(after) = from.strip_prefix("{{") {
            out.push_str(r#"{{ "{{" }}"#);
            rest = after;
        } else if let Some(after) = from.strip_prefix("}}") {
            out.push_str(r#"{{ "}}" }}"#);
            rest = after;
        } else {
            out.push_str(&from[..1]);
            rest = &from[1..];
        }
    }
    out.push_str(rest);
    out
}

/// The rule file for every declared SLO and every configured suite.
pub fn generate(contract: &Contract) -> RuleFile {
    let mut by_plugin: BTreeMap<&str, Vec<Rule>> = BTreeMap::new();
    for slo in &contract.slos {
        let decl = &slo.decl;
        let mut labels = BTreeMap::from([
            ("severity".to_owned(), literal(&decl.severity)),
            ("plugin".to_owned(), literal(&slo.plugin)),
        ]);
        if let [system] = slo.systems.as_slice() {
            labels.insert("system".to_owned(), literal(system));
        }
        by_plugin.entry(&slo.plugin).or_default().push(Rule {
            alert: Some(decl.name.clone()),
            record: None,
            expr: decl.expr.clone(),
            for_: Some(prometheus_duration(Duration::from_secs(u64::from(
                decl.for_seconds,
            )))),
            labels,
            annotations: annotations(&[
                ("summary", literal(&decl.summary)),
                (
                    "description",
                    format!(
                        "{}: the value is {{{{ $value }}}} ({}). Declared by the {} plugin.",
                        literal(&decl.summary),
                        literal(&decl.expr),
                        literal(&slo.plugin)
                    ),
                ),
            ]),
        });
    }
    let mut groups: Vec<RuleGroup> = by_plugin
        .into_iter()
        .map(|(plugin, rules)| RuleGroup {
            name: format!("testmeter-{plugin}"),
            interval: None,
            rules,
        })
        .collect();
    let mut agent = Vec::new();
    let last = self_metrics::LAST_SUCCESS.name;
    for suite in &contract.suites {
        let selector = format!("{last}{{suite=\"{}\"}}", suite.name);
        let stale = stale_after(suite);
        agent.push(Rule {
            alert: Some("TestmeterSuiteStale".to_owned()),
            record: None,
            expr: format!(
                "(time() - {selector} > {}) or absent({selector})",
                stale.as_secs()
            ),
            // Room for the first run after a restart to finish before `absent` counts.
            for_: Some(prometheus_duration(suite.timeout.max(Duration::from_secs(60)))),
            labels: BTreeMap::from([
                ("severity".to_owned(), "critical".to_owned()),
                ("suite".to_owned(), suite.name.clone()),
                ("system".to_owned(), suite.system.clone()),
            ]),
            annotations: annotations(&[
                (
                    "summary",
                    format!("Suite {} has had no successful run for {}", suite.name, prometheus_duration(stale)),
                ),
                (
                    "description",
                    format!(
                        "No run of suite {} produced a report that every plugin derived in the last {} (3 intervals of {} plus its {} timeout), or the agent is not exporting. Its other metrics are stale.",
                        suite.name,
                        prometheus_duration(stale),
                        prometheus_duration(suite.interval),
                        prometheus_duration(suite.timeout)
                    ),
                ),
            ]),
        });
    }
    agent.push(Rule {
        alert: Some("TestmeterPluginQuarantined".to_owned()),
        record: None,
        expr: format!("{} == 1", self_metrics::PLUGIN_QUARANTINED.name),
        for_: Some("0s".to_owned()),
        labels: BTreeMap::from([("severity".to_owned(), "warning".to_owned())]),
        annotations: annotations(&[
            ("summary", "Plugin {{ $labels.plugin }} is quarantined".to_owned()),
            (
                "description",
                "Plugin {{ $labels.plugin }} failed repeatedly and is skipped until its backoff ends; its metrics keep their last good values.".to_owned(),
            ),
        ]),
    });
    agent.push(Rule {
        alert: Some("TestmeterNewTestFailures".to_owned()),
        record: None,
        expr: format!(
            "sum by (suite) ({}{{state=\"new_failure\"}}) > 0",
            self_metrics::HISTORY_TESTS.name
        ),
        for_: Some("0s".to_owned()),
        labels: BTreeMap::from([("severity".to_owned(), "warning".to_owned())]),
        annotations: annotations(&[
            (
                "summary",
                "Suite {{ $labels.suite }} has {{ $value }} new test failure(s)".to_owned(),
            ),
            (
                "description",
                "Tests of suite {{ $labels.suite }} that passed in its previous run fail in its latest one (per-test history). They are listed on the agent's page /suite/{{ $labels.suite }} and by `testmeter history --suite {{ $labels.suite }}`.".to_owned(),
            ),
        ]),
    });
    groups.push(RuleGroup {
        name: "testmeter-agent".to_owned(),
        interval: None,
        rules: agent,
    });
    RuleFile { groups }
}
