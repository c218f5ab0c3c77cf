//! A template testmeter plugin: declares a pass-rate gauge, a test counter and a duration
//! histogram for one system, and derives them from the run's test cases.

use testmeter_plugin_sdk::{
    metric, percent, slo, Guest, MetricKind, Outcome, Outcomes, PluginInfo, Sample, Samples,
    SuiteRun,
};

/// The system whose suites this plugin handles (a suite's `system` in the agent config).
const SYSTEM: &str = "template";
const PASS_RATE: &str = "template_pass_rate";
const TESTS: &str = "template_tests_total";
const DURATION: &str = "template_test_duration_seconds";

struct Plugin;

impl Guest for Plugin {
    fn describe() -> PluginInfo {
        use MetricKind::{Counter, Gauge, Histogram};
        PluginInfo {
            name: SYSTEM.to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            systems: vec![SYSTEM.to_owned()],
            metrics: vec![
                metric(PASS_RATE, Gauge, "%", "Tests passed / tests run (skipped excluded) in the latest run", &[], &[]),
                metric(TESTS, Counter, "1", "Tests run, by outcome", &["outcome"], &[]),
                metric(DURATION, Histogram, "s", "Test duration", &[], &[0.01, 0.1, 1.0, 10.0, 60.0]),
            ],
            slos: vec![slo("TemplatePassRateLow", "template_pass_rate < 95", 300, "warning", "Pass rate below 95%")],
        }
    }

    fn derive(run: SuiteRun) -> Result<Vec<Sample>, String> {
        let mut out = Samples::default();
        let outcomes = Outcomes::of(&run.cases);
        let ran = outcomes.total() - outcomes.skipped;
        // No test ran: no pass rate, rather than a made-up 0 or 100.
        if let Some(rate) = percent(outcomes.passed, ran) {
            out.push(PASS_RATE, &[], rate);
        }
        for (outcome, count) in [
            ("passed", outcomes.passed),
            ("failed", outcomes.failed + outcomes.errored),
            ("skipped", outcomes.skipped),
        ] {
            out.push(TESTS, &[("outcome", outcome)], count as f64);
        }
        for case in run.cases.iter().filter(|c| c.outcome != Outcome::Skipped) {
            out.push(DURATION, &[], case.duration_seconds);
        }
        Ok(out.into_vec())
    }
}

testmeter_plugin_sdk::export_plugin!(Plugin);
