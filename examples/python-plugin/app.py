"""A testmeter plugin written in Python, built into a WebAssembly component with
componentize-py against the same WIT as the Rust plugins (wit/plugin.wit).

It reports retry health for any suite whose system is "flaky-demo": how many tests passed only
on a retry, how many extra attempts the run needed, and the share of tests that passed at
their first attempt. Every value comes from the run's test cases (their `attempts` and
`flaky` fields); a run with no test that ran emits no rate.

This module declares the plugin (`describe`); `derive.py` derives each run as its cases stream
past (the `derive` interface of the WIT world).
"""

import wit_world
from wit_world.imports.types import CaseFields, Metric, MetricKind, PluginInfo, Slo

SYSTEM = "flaky-demo"
FLAKY = "flaky_demo_flaky_tests"
RETRIES = "flaky_demo_retries_total"
FIRST_ATTEMPT = "flaky_demo_first_attempt_pass_rate"


class WitWorld(wit_world.WitWorld):
    def describe(self) -> PluginInfo:
        return PluginInfo(
            name="flaky-demo",
            version="0.2.0",
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
            # Outcomes and attempts only: no messages, properties or output.
            reads=CaseFields(0),
        )
