#!/usr/bin/env python3
"""The baseline a user would write instead of testmeter: a JUnit report read with
xml.etree.ElementTree.iterparse into prometheus_client metrics, osworld-style, the same ones the
osworld plugin derives from test cases (plugins/osworld/src/lib.rs, `from_cases`):

- genesis_osworld_tasks_total{status}: passed, and failed (failed or errored); skips are no tasks
- genesis_osworld_tasks_passed
- genesis_osworld_success_rate{task_category}: "all" and per `category` property, in %
- genesis_osworld_task_duration_seconds{category}: a histogram of case times by category
- genesis_osworld_step_count: a histogram of the `steps` property

Prints the Prometheus exposition, or with `--serve PORT` serves it on 127.0.0.1:PORT/metrics
until killed (the baseline of the /metrics load test).

Usage: osworld_baseline.py REPORT [--serve PORT]
"""

import sys
import time
import xml.etree.ElementTree as ET

import prometheus_client
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# The osworld plugin's declared buckets (plugins/osworld/src/declare.rs).
DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0)
STEP_BUCKETS = (1.0, 2.0, 3.0, 5.0, 8.0, 10.0, 15.0, 20.0, 30.0, 50.0)


def derive(path: str, registry: CollectorRegistry) -> None:
    tasks = Counter("genesis_osworld_tasks", "OSWorld tasks executed, by final status", ["status"], registry=registry)
    passed_gauge = Gauge("genesis_osworld_tasks_passed", "OSWorld tasks passed in the latest run", registry=registry)
    rate = Gauge("genesis_osworld_success_rate", "OSWorld task success rate", ["task_category"], registry=registry)
    duration = Histogram(
        "genesis_osworld_task_duration_seconds", "OSWorld task execution time", ["category"],
        buckets=DURATION_BUCKETS, registry=registry,
    )
    steps = Histogram("genesis_osworld_step_count", "Actions per OSWorld task", buckets=STEP_BUCKETS, registry=registry)
    total = passed = 0
    by_category = {}
    for _, elem in ET.iterparse(path, events=("end",)):
        if elem.tag != "testcase":
            continue
        outcome = "passed"
        seconds = float(elem.get("time") or 0.0)
        props = {}
        for child in elem:
            if child.tag in ("failure", "error", "skipped"):
                outcome = child.tag
            elif child.tag == "properties":
                for prop in child:
                    props[prop.get("name")] = prop.get("value")
        elem.clear()
        if outcome == "skipped":
            continue
        ok = outcome == "passed"
        total += 1
        passed += ok
        category = props.get("category")
        if category is not None:
            tally = by_category.setdefault(category, [0, 0])
            tally[0] += 1
            tally[1] += ok
            duration.labels(category).observe(seconds)
        if props.get("steps") is not None:
            try:
                steps.observe(float(props["steps"]))
            except ValueError:
                pass
    if total == 0:
        return
    rate.labels("all").set(100.0 * passed / total)
    for category, (count, ok) in by_category.items():
        rate.labels(category).set(100.0 * ok / count)
    tasks.labels("passed").inc(passed)
    tasks.labels("failed").inc(total - passed)
    passed_gauge.set(passed)


def main() -> None:
    prometheus_client.disable_created_metrics()
    registry = CollectorRegistry()
    derive(sys.argv[1], registry)
    if len(sys.argv) > 3 and sys.argv[2] == "--serve":
        prometheus_client.start_http_server(int(sys.argv[3]), addr="127.0.0.1", registry=registry)
        while True:
            time.sleep(3600)
    sys.stdout.buffer.write(prometheus_client.generate_latest(registry))


if __name__ == "__main__":
    main()
