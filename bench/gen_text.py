#!/usr/bin/env python3
"""Writes a large report in one of the text formats testmeter reads, for the memory bench.

Each format's lines have the exact shapes of the fixture its runner wrote here (see each
fixture's regenerate.sh): only names, counts and times change.

  tap           tests/fixtures/tap/basic.tap (Test::More under prove): plan, `ok N - name`,
                `not ok N - name` with its `#   Failed test` diagnostics, `ok N # skip`
  go-test-json  tests/fixtures/gotest/go-test.json: run / output / output / pass|fail events
                per test, the package's own output and result at the end of each package
  libtest-json  tests/fixtures/libtest/libtest.json: suite started, test started / ok|failed
                events, the suite's result
  libtest       tests/fixtures/libtest/cargo-test.txt: `running N tests`, `test x ... ok`, the
                failures' captured output, the `test result:` line
  pytest-text   tests/fixtures/pytest/verbose.txt (`pytest -v -rA`): progress lines, FAILURES
                sections, the short summary and the final line

About 12% of tests fail and 4% are skipped, deterministic (seeded). --repeat-late writes the
first test once more after all the others, as a rerun that passed (as gotestsum appends its
reruns), so its attempts are far apart.

Usage: gen_text.py FORMAT CASES OUT [--repeat-late]
"""

import json
import random
import sys


def outcomes(cases, rng):
    for i in range(cases):
        roll = rng.random()
        yield i, ("fail" if roll < 0.12 else "skip" if roll < 0.16 else "pass")


def tap(cases, repeat, rng, out):
    total = cases + (1 if repeat else 0)
    out.write(f"1..{total}\n")
    for i, outcome in outcomes(cases, rng):
        name = f"case {i:07d} handles input {rng.randrange(1000)}"
        if outcome == "fail":
            out.write(f"not ok {i + 1} - {name}\n#   Failed test '{name}'\n#   at t/bench.t line {rng.randrange(10, 900)}.\n")
        elif outcome == "skip":
            out.write(f"ok {i + 1} # skip no network here\n")
        else:
            out.write(f"ok {i + 1} - {name}\n")
        if i == 0:
            first = name
    if repeat:
        out.write(f"ok {total} - {first}\n")


def go_test_json(cases, repeat, rng, out):
    def event(action, package, test=None, output=None, elapsed=None):
        fields = {"Time": "2026-12-05T22:04:35.783128295Z", "Action": action, "Package": package}
        if test is not None:
            fields["Test"] = test
        if output is not None:
            fields["Output"] = output
        if elapsed is not None:
            fields["Elapsed"] = elapsed
        out.write(json.dumps(fields, separators=(",", ":")) + "\n")

    def one(package, test, outcome):
        event("run", package, test)
        event("output", package, test, f"=== RUN   {test}\n")
        elapsed = round(rng.random() * 0.05, 2)
        if outcome == "fail":
            event("output", package, test, f"    calc_test.go:{rng.randrange(10, 300)}: Add(2, 2) = 4, want 5\n")
            event("output", package, test, f"--- FAIL: {test} ({elapsed:.2f}s)\n")
        elif outcome == "skip":
            event("output", package, test, f"    calc_test.go:{rng.randrange(10, 300)}: needs a database\n")
            event("output", package, test, f"--- SKIP: {test} ({elapsed:.2f}s)\n")
        else:
            event("output", package, test, f"--- PASS: {test} ({elapsed:.2f}s)\n")
        event({"fail": "fail", "skip": "skip"}.get(outcome, "pass"), package, test, elapsed=elapsed)

    per_package = 200
    failed = False
    for i, outcome in outcomes(cases, rng):
        package = f"example.com/bench/pkg{i // per_package:05d}"
        one(package, f"TestCase{i:07d}", outcome)
        failed |= outcome == "fail"
        if (i + 1) % per_package == 0 or i + 1 == cases:
            word = "FAIL" if failed else "ok"
            event("output", package, output=f"{'FAIL' if failed else 'PASS'}\n")
            event("output", package, output=f"{word}  \t{package}\t0.{rng.randrange(100, 999)}s\n")
            event("fail" if failed else "pass", package, elapsed=0.5)
            failed = False
    if repeat:
        package = "example.com/bench/pkg00000"
        one(package, "TestCase0000000", "pass")
        event("pass", package, elapsed=0.1)


def libtest_json(cases, repeat, rng, out):
    out.write(f'{{ "type": "suite", "event": "started", "test_count": {cases + (1 if repeat else 0)} }}\n')
    counts = {"pass": 0, "fail": 0, "skip": 0}

    def one(name, outcome):
        counts[outcome] += 1
        out.write(f'{{ "type": "test", "event": "started", "name": "{name}" }}\n')
        time = rng.random() * 0.001
        if outcome == "fail":
            stdout = (f"thread '{name}' (14342) panicked at src/lib.rs:{rng.randrange(10, 900)}:9:\\n"
                      "assertion `left == right` failed: arithmetic is broken\\n  left: 4\\n right: 5\\n"
                      "note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace\\n")
            out.write(f'{{ "type": "test", "name": "{name}", "event": "failed", "exec_time": {time:.9f}, "stdout": "{stdout}" }}\n')
        elif outcome == "skip":
            out.write(f'{{ "type": "test", "name": "{name}", "event": "ignored", "message": "needs a database" }}\n')
        else:
            out.write(f'{{ "type": "test", "name": "{name}", "event": "ok", "exec_time": {time:.9f} }}\n')

    for i, outcome in outcomes(cases, rng):
        one(f"tests::module_{i // 200:05d}::case_{i:07d}", outcome)
    if repeat:
        one("tests::module_00000::case_0000000", "pass")
    event = "failed" if counts["fail"] else "ok"
    out.write(f'{{ "type": "suite", "event": "{event}", "passed": {counts["pass"]}, "failed": {counts["fail"]}, '
              f'"ignored": {counts["skip"]}, "measured": 0, "filtered_out": 0, "exec_time": 12.5 }}\n')


def libtest(cases, repeat, rng, out):
    out.write("    Finished `test` profile [unoptimized + debuginfo] target(s) in 0.02s\n")
    out.write("     Running unittests src/lib.rs (target/debug/deps/bench-426d6f12223f0a7f)\n\n")
    out.write(f"running {cases + (1 if repeat else 0)} tests\n")
    failed = []
    counts = {"pass": 0, "fail": 0, "skip": 0}
    for i, outcome in outcomes(cases, rng):
        name = f"tests::module_{i // 200:05d}::case_{i:07d}"
        counts[outcome] += 1
        word = {"fail": "FAILED", "skip": "ignored, needs a database"}.get(outcome, "ok")
        out.write(f"test {name} ... {word}\n")
        if outcome == "fail":
            failed.append(name)
    if repeat:
        counts["pass"] += 1
        out.write("test tests::module_00000::case_0000000 ... ok\n")
    if failed:
        out.write("\nfailures:\n\n")
        for name in failed:
            out.write(f"---- {name} stdout ----\n\nthread '{name}' (14314) panicked at src/lib.rs:32:9:\n"
                      "assertion `left == right` failed: arithmetic is broken\n  left: 4\n right: 5\n"
                      "note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace\n\n")
        out.write("\nfailures:\n")
        for name in failed:
            out.write(f"    {name}\n")
    result = "FAILED" if failed else "ok"
    out.write(f"\ntest result: {result}. {counts['pass']} passed; {counts['fail']} failed; {counts['skip']} ignored; "
              "0 measured; 0 filtered out; finished in 12.50s\n\n")


def pytest_text(cases, repeat, rng, out):
    total = cases + (1 if repeat else 0)
    out.write("============================= test session starts ==============================\n")
    out.write("platform linux -- Python 3.11.7, pytest-9.2.0, pluggy-1.7.0 -- /usr/bin/python\n")
    out.write(f"rootdir: /bench\ncollecting ... collected {total} items\n\n")
    failed, counts = [], {"pass": 0, "fail": 0, "skip": 0}

    def line(node, word, index):
        out.write(f"{node} {word:<8}{'':40} [{index * 100 // total:3d}%]\n")

    for i, outcome in outcomes(cases, rng):
        node = f"tests/test_module_{i // 200:05d}.py::test_case_{i:07d}[param-{rng.randrange(1000)}]"
        counts[outcome] += 1
        line(node, {"fail": "FAILED", "skip": "SKIPPED (not supported on this platform)"}.get(outcome, "PASSED"), i + 1)
        if outcome == "fail":
            failed.append(node)
        if i == 0:
            first = node
    if repeat:
        counts["pass"] += 1
        line(first, "PASSED", total)
    if failed:
        out.write("\n=================================== FAILURES ===================================\n")
        for node in failed:
            title = node.split("::", 1)[1]
            out.write(f"{'_' * 20} {title} {'_' * 20}\n\n    def test_case():\n>       assert steps <= budget\n"
                      f"E       AssertionError: step budget exceeded\n\n{node.split('::')[0]}:{rng.randrange(900)}: AssertionError\n")
    out.write("=========================== short test summary info ============================\n")
    for node in failed:
        out.write(f"FAILED {node} - AssertionError: step budget exceeded\n")
    out.write(f"================= {counts['fail']} failed, {counts['pass']} passed, {counts['skip']} skipped in 123.45s =================\n")


FORMATS = {"tap": tap, "go-test-json": go_test_json, "libtest-json": libtest_json, "libtest": libtest,
           "pytest-text": pytest_text}


def main() -> None:
    args = [a for a in sys.argv[1:] if a != "--repeat-late"]
    repeat = len(args) < len(sys.argv) - 1
    fmt, cases, path = args[0], int(args[1]), args[2]
    with open(path, "w", buffering=1 << 20) as out:
        FORMATS[fmt](cases, repeat, random.Random(42), out)


if __name__ == "__main__":
    main()
