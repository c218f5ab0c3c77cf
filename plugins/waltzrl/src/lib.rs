//! testmeter plugin for the WaltzRL safety modules: the generic test-health series the
//! existing Phase-4 dashboard queries (`genesis_tests_*`, `genesis_test_pass_rate`,
//! `genesis_waltzrl_tests_passing`), as gauges of the latest run, and a per-module breakdown
//! labelled with the test class.
//!
//! The generic names end in `_total` although they are gauges, against Prometheus naming
//! conventions: they are kept because the deployed dashboard and alert rules already query
//! exactly these names, and a renamed series would show "No Data" there.

use std::collections::BTreeMap;

use testmeter_plugin_sdk::{
    metric, percent, slo, Case, CaseFields, MetricKind, Outcomes, Plugin, PluginInfo, RunEnd,
    RunStart, Sample, Samples,
};

pub const TESTS_TOTAL: &str = "genesis_tests_total";
pub const TESTS_PASSED: &str = "genesis_tests_passed_total";
pub const TESTS_FAILED: &str = "genesis_tests_failed_total";
pub const TESTS_SKIPPED: &str = "genesis_tests_skipped_total";
pub const PASS_RATE: &str = "genesis_test_pass_rate";
pub const WALTZRL_PASSING: &str = "genesis_waltzrl_tests_passing";
pub const MODULE_TESTS: &str = "genesis_waltzrl_module_tests";
pub const MODULE_PASS_RATE: &str = "genesis_waltzrl_module_pass_rate";

/// One run's derivation: outcome counts overall and per module.
struct WaltzRl {
    all: Outcomes,
    modules: BTreeMap<String, Outcomes>,
}

impl Plugin for WaltzRl {
    fn describe() -> PluginInfo {
        use MetricKind::Gauge;
        PluginInfo {
            name: "waltzrl".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            systems: vec!["waltzrl".to_owned()],
            metrics: vec![
                metric(TESTS_TOTAL, Gauge, "1", "Tests in the latest run (a gauge despite the name, which the deployed dashboard queries)", &[], &[]),
                metric(TESTS_PASSED, Gauge, "1", "Tests passed in the latest run", &[], &[]),
                metric(TESTS_FAILED, Gauge, "1", "Tests failed or errored in the latest run", &[], &[]),
                metric(TESTS_SKIPPED, Gauge, "1", "Tests skipped in the latest run", &[], &[]),
                metric(PASS_RATE, Gauge, "%", "100 × passed / all tests of the latest run, skipped included, as the deployment computed it", &[], &[]),
                metric(WALTZRL_PASSING, Gauge, "1", "WaltzRL tests passing in the latest run", &[], &[]),
                metric(MODULE_TESTS, Gauge, "1", "WaltzRL tests per module (test class) and outcome in the latest run", &["module", "outcome"], &[]),
                metric(MODULE_PASS_RATE, Gauge, "%", "100 × passed / tests per module (test class) in the latest run", &["module"], &[]),
            ],
            slos: vec![slo(
                "TestPassRateLow",
                "genesis_test_pass_rate < 98",
                300,
                "critical",
                "Test pass rate below the 98% SLO",
            )],
            // Outcomes and classnames only.
            reads: CaseFields::empty(),
        }
    }

    fn start(_run: RunStart) -> Self {
        WaltzRl {
            all: Outcomes::default(),
            modules: BTreeMap::new(),
        }
    }

    fn case(&mut self, case: Case<'_>) -> Result<(), String> {
        self.all.add(case.outcome());
        let module = module_of(case.classname());
        match self.modules.get_mut(module) {
            Some(outcomes) => outcomes.add(case.outcome()),
            None => {
                let mut outcomes = Outcomes::default();
                outcomes.add(case.outcome());
                self.modules.insert(module.to_owned(), outcomes);
            }
        }
        Ok(())
    }

    fn finish(self, _end: RunEnd) -> Result<Vec<Sample>, String> {
        let mut out = Samples::default();
        let all = self.all;
        out.push(TESTS_TOTAL, &[], all.total() as f64);
        out.push(TESTS_PASSED, &[], all.passed as f64);
        out.push(TESTS_FAILED, &[], (all.failed + all.errored) as f64);
        out.push(TESTS_SKIPPED, &[], all.skipped as f64);
        out.push(WALTZRL_PASSING, &[], all.passed as f64);
        if let Some(rate) = percent(all.passed, all.total()) {
            out.push(PASS_RATE, &[], rate);
        }
        for (module, outcomes) in &self.modules {
            for (outcome, count) in [
                ("passed", outcomes.passed),
                ("failed", outcomes.failed + outcomes.errored),
                ("skipped", outcomes.skipped),
            ] {
                out.push(
                    MODULE_TESTS,
                    &[("module", module), ("outcome", outcome)],
                    count as f64,
                );
            }
            if let Some(rate) = percent(outcomes.passed, outcomes.total()) {
                out.push(MODULE_PASS_RATE, &[("module", module)], rate);
            }
        }
        Ok(out.into_vec())
    }
}

testmeter_plugin_sdk::export!(WaltzRl);

/// The module of a test: its test class without the `Test` prefix
/// (`test_waltzrl_modules.TestFeedbackAgent` → `FeedbackAgent`), or its Python module when
/// it is not in a class.
fn module_of(classname: &str) -> &str {
    let last = classname.rsplit('.').next().unwrap_or(classname);
    match last.strip_prefix("Test") {
        Some(rest) if rest.starts_with(|c: char| c.is_ascii_uppercase()) => rest,
        _ => last,
    }
}
