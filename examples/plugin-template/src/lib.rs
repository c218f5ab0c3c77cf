//! A template testmeter plugin: declares a pass-rate gauge, a test counter and a duration
//! histogram for one system, and derives them from the run's test cases as they stream past.

use testmeter_plugin_sdk::{
    metric, percent, slo, Case, CaseFields, MetricKind, Outcome, Outcomes, Plugin, PluginInfo,
    RunEnd, RunStart, Sample, Samples,
};

/// The system whose suites this plugin handles (a suite's `system` in the agent config).
const SYSTEM: &str = "template";
const PASS_RATE: &str = "template_pass_rate";
const TESTS: &str = "template_tests_total";
const DURATION: &str = "template_test_duration_seconds";

/// What one run's derivation keeps while its cases stream past: counts and observations,
/// never the cases themselves.
struct Run {
    outcomes: Outcomes,
    samples: Samples,
}

impl Plugin for Run {
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
            // Declare the optional case fields you read (messages, properties, output);
            // the agent leaves the others empty.
            reads: CaseFields::empty(),
        }
    }

    fn start(_run: RunStart) -> Self {
        Run {
            outcomes: Outcomes::default(),
            // Counts the histogram's observations over its buckets as they come.
            samples: Samples::declared(&Self::describe()),
        }
    }

    fn case(&mut self, case: Case<'_>) -> Result<(), String> {
        self.outcomes.add(case.outcome());
        // A case the report gave no time is left out of the histogram, not observed as 0.
        if let (true, Some(seconds)) = (case.outcome() != Outcome::Skipped, case.duration_seconds()) {
            self.samples.push(DURATION, &[], seconds);
        }
        Ok(())
    }

    fn finish(self, _end: RunEnd) -> Result<Vec<Sample>, String> {
        let mut out = self.samples;
        let outcomes = self.outcomes;
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
        Ok(out.into_vec())
    }
}

testmeter_plugin_sdk::export!(Run);
