#!/usr/bin/env python3
"""Writes a pytest-style JUnit XML report with N test cases for the benchmarks.

The shape follows tests/fixtures/pytest/xunit1.xml (pytest's own writer): classname, name,
file, line and time on every case, ~12% failures with pytest's traceback text, ~4% skips, ~10%
with captured output, and a parametrised id on most names. Every case carries the properties an
OSWorld harness records with `record_property`: its task `category` and the `steps` it took.
About 420 bytes per case, so 100k cases are about 42 MB. Deterministic (seeded).

Usage: gen_junit.py CASES OUT [CATEGORIES] [--repeat-late] [--suite-per-case] [--failures=SHARE]
(default 4 categories, as OSWorld has; --failures=0.05 makes 5% of the cases fail instead of
~12%, the skips and output staying as they are). --repeat-late writes the first test once more after all the
others, as a rerun that passed (the way gotestsum appends its reruns), so its attempts are far
apart. --suite-per-case puts every case in a `<testsuite>` of its own (as Surefire writes one
suite per test class, here one per case): the most suites a report of that size can have.
"""

import random
import sys
from xml.sax.saxutils import escape, quoteattr


def main() -> None:
    flags = {a for a in sys.argv[1:] if a.startswith("--")}
    repeat_late = "--repeat-late" in flags
    suite_per_case = "--suite-per-case" in flags
    failure_share = next((float(f.split("=", 1)[1]) for f in flags if f.startswith("--failures=")), 0.12)
    sys.argv[1:] = [a for a in sys.argv[1:] if not a.startswith("--")]
    cases, path = int(sys.argv[1]), sys.argv[2]
    categories = (
        [f"category_{i:05d}" for i in range(int(sys.argv[3]))]
        if len(sys.argv) > 3
        else ["file_operations", "terminal", "web_browsing", "system_settings"]
    )
    rng = random.Random(42)
    modules = [f"tests/agents/test_module_{i:03d}" for i in range(max(1, cases // 200))]
    failures = skipped = 0
    parts = []
    for i in range(cases):
        module = rng.choice(modules)
        classname = module.replace("/", ".")
        name = f"test_case_{i:06d}[param-{rng.randrange(1000)}-{rng.choice(['chrome', 'vscode', 'shell', 'files'])}]"
        attrs = (
            f'classname={quoteattr(classname)} name={quoteattr(name)} '
            f'file="{module}.py" line="{rng.randrange(10, 900)}" time="{rng.random() * 2:.3f}"'
        )
        props = (
            f'<properties><property name="category" value="{categories[i % len(categories)]}" />'
            f'<property name="steps" value="{rng.randrange(1, 30)}" /></properties>'
        )
        roll = rng.random()
        if roll < failure_share:
            failures += 1
            message = f"AssertionError: expected {rng.randrange(100)} steps &lt;= budget, got {rng.randrange(100, 200)}"
            frames = "".join(
                f"\n{module}.py:{rng.randrange(900)}: in run_step\n    result = agent.act(observation, budget=budget)\n"
                for _ in range(rng.randrange(7, 15))
            )
            body = escape(
                f"def {name.split('[')[0]}():\n>       assert steps <= budget\nE       AssertionError: step budget exceeded{frames}\n{module}.py:{rng.randrange(900)}: AssertionError"
            )
            parts.append(f'<testcase {attrs}>{props}<failure message="{message}">{body}</failure></testcase>')
        elif roll < failure_share + 0.04:
            skipped += 1
            parts.append(
                f'<testcase {attrs}>{props}<skipped type="pytest.skip" message="needs a display">{module}.py:{rng.randrange(900)}: needs a display</skipped></testcase>'
            )
        elif roll < failure_share + 0.14:
            parts.append(
                f"<testcase {attrs}>{props}<system-out>step {rng.randrange(50)}: clicked {rng.choice(['OK', 'Save', 'Cancel'])} in {rng.random():.3f}s</system-out></testcase>"
            )
        else:
            parts.append(f"<testcase {attrs}>{props}</testcase>")
    with open(path, "w", encoding="utf-8") as out:
        out.write('<?xml version="1.0" encoding="utf-8"?><testsuites name="pytest tests">')
        out.write(
            f'<testsuite name="pytest" errors="0" failures="{failures}" skipped="{skipped}" tests="{cases}" '
            f'time="{cases * 0.9:.3f}" timestamp="2026-11-28T12:00:00.000000+00:00" hostname="bench">'
        )
        if suite_per_case:
            # The outer suite is closed before the first and opened again after the last.
            out.write("</testsuite>")
            for index, part in enumerate(parts):
                out.write(f'<testsuite name="tests.suite_{index:07d}" tests="1" time="0.900">{part}</testsuite>')
            out.write('<testsuite name="pytest">')
        else:
            out.write("".join(parts))
        if repeat_late and parts:
            first = parts[0]
            out.write(first[: first.index(">") + 1] + "</testcase>")
        out.write("</testsuite></testsuites>")


if __name__ == "__main__":
    main()
