"""A testmeter plugin written in Python, built into a WebAssembly component with
componentize-py against the same WIT as the Rust plugins (wit/plugin.wit).

It reports retry health for any suite whose system is "flaky-demo": how many tests passed only
on a retry, how many extra attempts the run needed, and the share of tests that passed at
their first attempt. Every value comes from the run's test cases (their `attempts` and
`flaky` fields); a run with no test that ran emits no rate.
"""

from typing import List

import wit_world
from wit_world.imports import host
from wit_world.imports.types import (
    Metric, MetricKind, Outcome, PluginInfo, Sample, Slo, SuiteRun,
)

SYSTEM = "flaky-demo"
FLAKY = "flaky_demo_flaky_tests"
RETRIES = "flaky_demo_retries_total"
FIRST_ATTEMPT = "flaky_demo_first_attempt_pass_rate"


class WitWorld(wit_world.WitWorld):
    def describe(self) -> PluginInfo:
        return PluginInfo(
            name="flaky-demo",
            version="0.1.0",
            systems=[SYSTEM],
            metrics=[
                Metric(FLAKY, MetricKind.GAUGE, "1",
                       "Tests that passed only after a retry in the latest run", [], []),
                Metric(RETRIES, MetricKind.COUNTER, "1",
                       "Attempts beyond the first, over all tests", [], []),
                Metric(FIRST_ATTEMPT, MetricKind.GAUGE, "%",
                       "Tests that passed at their first attempt / tests that ran", [], []),
            ],
            slos=[Slo("FlakyTestsPresent", "flaky_demo_flaky_tests > 0", 900, "warning",
                      "Tests pass only on retry")],
        )

    def derive(self, run: SuiteRun) -> List[Sample]:
        ran = [case for case in run.cases if case.outcome != Outcome.SKIPPED]
        flaky = sum(1 for case in ran if case.flaky)
        retries = sum(case.attempts - 1 for case in ran)
        first_try = sum(1 for case in ran if case.outcome == Outcome.PASSED and case.attempts == 1)
        host.log(host.LogLevel.DEBUG, f"{len(ran)} tests ran, {flaky} flaky, {retries} retries")
        samples = [Sample(FLAKY, [], [float(flaky)]), Sample(RETRIES, [], [float(retries)])]
        if ran:
            samples.append(Sample(FIRST_ATTEMPT, [], [100.0 * first_try / len(ran)]))
        return samples
