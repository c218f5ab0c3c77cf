//! A template testmeter plugin: declares a pass-rate gauge, a test counter and a duration
//! histogram for one system, and derives them from the run's test cases as they stream past;
//! and shows the two optional sources: a case's properties (a test count per `category`
//! property) and the run's artifacts (a score read from a `score.txt` the suite wrote).

use testmeter_plugin_sdk::{
    metric, percent, slo, Case, CaseFields, MetricKind, Outcome, Outcomes, Plugin, PluginInfo,
    RunEnd, RunStart, Sample, Samples,
};

/// The system whose suites this plugin handles (a suite's `system` in the agent config).
const SYSTEM: &str = "template";
const PASS_RATE: &str = "template_pass_rate";
const TESTS: &str = "template_tests_total";
const DURATION: &str = "template_test_duration_seconds";
const BY_CATEGORY: &str = "template_category_tests_total";
const SCORE: &str = "template_score";

/// What one run's derivation keeps while its cases stream past: counts and observations,
/// never the cases themselves.
struct Run {
    outcomes: Outcomes,
    samples: Samples,
    /// Tests per `category` property, for the cases that have one.
    categories: std::collections::BTreeMap<String, u64>,
    /// The number in the run's `score.txt` artifact, when the suite wrote one.
    score: Option<f64>,
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
                metric(BY_CATEGORY, Counter, "1", "Tests run, by their `category` property", &["category"], &[]),
                metric(SCORE, Gauge, "1", "The score in the run's score.txt artifact", &[], &[]),
            ],
            slos: vec![slo("TemplatePassRateLow", "template_pass_rate < 95", 300, "warning", "Pass rate below 95%")],
            // Declare the optional case fields you read (messages, properties, output);
            // the agent leaves the others empty.
            reads: CaseFields::PROPERTIES,
        }
    }

    fn start(run: RunStart) -> Self {
        // Artifacts are the files the suite's `artifacts` globs matched, read by the agent.
        let score = run
            .artifacts
            .iter()
            .find(|artifact| artifact.name.ends_with("score.txt"))
            .and_then(|artifact| std::str::from_utf8(&artifact.content).ok())
            .and_then(|text| text.trim().parse::<f64>().ok());
        Run {
            outcomes: Outcomes::default(),
            // Counts the histogram's observations over its buckets as they come.
            samples: Samples::declared(&Self::describe()),
            categories: std::collections::BTreeMap::new(),
            score,
        }
    }

    fn case(&mut self, case: Case<'_>) -> Result<(), String> {
        self.outcomes.add(case.outcome());
        // A case the report gave no time is left out of the histogram, not observed as 0.
        if let (true, Some(seconds)) = (case.outcome() != Outcome::Skipped, case.duration_seconds()) {
            self.samples.push(DURATION, &[], seconds);
        }
        // `None` when the case has no such property: it is then not counted by category.
        if let Some(category) = case.property("category") {
            *self.categories.entry(category.to_owned()).or_default() += 1;
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
        for (category, count) in &self.categories {
            out.push(BY_CATEGORY, &[("category", category)], *count as f64);
        }
        // No score.txt, no score: never a made-up 0.
        if let Some(score) = self.score {
            out.push(SCORE, &[], score);
        }
        Ok(out.into_vec())
    }
}

testmeter_plugin_sdk::export!(Run);
