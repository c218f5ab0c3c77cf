#!/usr/bin/env python3
"""The performance report: testmeter against what a user would use instead, measured in one run
on one machine. Run through bench/run.sh, which builds what this needs first.

Figures (each a median with its spread over repeated runs, and a ratio against the baseline of
the same run):
  1. end-to-end ingest of synthetic JUnit (1k, 10k, 100k cases): `testmeter ingest --print`
     through the osworld plugin against bench/osworld_baseline.py (iterparse + prometheus_client);
     both expositions must agree series by series, or the bench stops
  2. `testmeter once` on the example suites against the same pytest commands run bare, in
     alternating rounds; the overhead is the median of each round's ratio, with a bootstrap
     95% interval. The agent's own share, which the suites' noise hides there, is measured
     twice more: its CPU time in those runs (its suites' excluded), and `once` over the same
     suites' reports replayed by `cp`, against the `cp`s bare
  2b. what the per-test history and the traces of a run add to a 100,000-case ingest
  3. RSS of the idle daemon with the 3 plugins, and after 1,000 runs (bench/soak.py), also
     with the per-test history off
  4. /metrics under wrk with 10k+ series, against prometheus_client's own HTTP server
  5. derive() per 10k cases for each plugin (agent/benches/derive.rs)
  6. start-up with a cold and a warm compiled-plugin cache (bench/startup.sh)

The ingest and `once` figures also note the CPU steal while they were measured: the machine
is shared, and a ratio measured under steal is noisier, not testmeter slower.

`--quick` (CI) runs the 10k case of figure 1 once and figure 4 for 5 s, checks that the two
sides agree, prints the table and writes nothing. It asserts no timing.

Usage: bench/report.py [--quick] [--out docs/performance.md]
"""

import argparse
import datetime
import json
import os
import pathlib
import platform
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import typing
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parent.parent
START, END = "<!-- bench/report.py: generated from here -->", "<!-- bench/report.py: generated up to here -->"
BIN = pathlib.Path(os.environ.get("TESTMETER_BIN", ROOT / "target" / "release" / "testmeter"))
PYTHON = ROOT / ".venv" / "bin" / "python"
# The Rust anchors (bench/anchors): built by `bench/run.sh` for the full run only.
ANCHORS = ROOT / "target" / "release" / "testmeter-bench-anchors"
# The example suites, each named after its system (examples/testmeter.toml).
EXAMPLE_SUITES = ("osworld", "langmem", "waltzrl")


class Measured(typing.NamedTuple):
    wall: float
    """Seconds from start to exit."""
    peak_rss: int
    """Bytes, of the largest process among it and its waited-for children (wait4's rusage)."""
    code: int
    own_cpu: float
    """CPU seconds of the process itself, all its threads."""
    children_cpu: float
    """CPU seconds of its children that it waited for (a suite, for the agent)."""


def run_measured(argv, stdout=subprocess.DEVNULL, env=None, cwd=None):
    """One process, run to its end and measured. The exited process is read from /proc before
    it is reaped (waitid with WNOWAIT): `utime + stime` there is its own CPU, `cutime + cstime`
    its waited-for children's. Both are in clock ticks, so one run's CPU figures are coarse and
    only a mean over many runs says much."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=stdout, stderr=subprocess.DEVNULL, env=env, cwd=cwd)
    os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)
    elapsed = time.perf_counter() - start
    # The fields after the parenthesised command name: utime is the 12th, stime, cutime and
    # cstime follow (proc(5) numbers them 14 to 17).
    fields = pathlib.Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return Measured(elapsed, usage.ru_maxrss * 1024, proc.returncode,
                    (int(fields[11]) + int(fields[12])) / tick, (int(fields[13]) + int(fields[14])) / tick)


class Steal:
    """The share of all CPU time the hypervisor gave to other guests (steal, from /proc/stat)
    while a figure was measured: on a shared machine it tells a noisy figure from a slow one."""

    def __init__(self):
        self.start = self.read()

    @staticmethod
    def read():
        with open("/proc/stat") as stat:
            fields = [int(v) for v in stat.readline().split()[1:]]
        # user nice system idle iowait irq softirq steal (guest time is already in user).
        return fields[7] if len(fields) > 7 else 0, sum(fields[:8])

    def share(self):
        (steal0, total0), (steal1, total1) = self.start, self.read()
        return (steal1 - steal0) / max(total1 - total0, 1)


def spread(values, unit=1.0, fmt="{:.1f}"):
    values = sorted(v / unit for v in values)
    med = statistics.median(values)
    return med, f"{fmt.format(med)} ({fmt.format(values[0])}–{fmt.format(values[-1])}, n={len(values)})"


LABEL = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"')


def series(exposition: str) -> dict:
    """`name{sorted labels}` → value of every sample line, in one canonical form for both
    exporters: label values are parsed (not split on commas), `le` bounds are numbers (`1.0`
    and `1` are one bucket), and the exporters' own additions are dropped: OpenTelemetry's
    `otel_scope_*` labels and prometheus_client's `_created` timestamps."""
    out = {}
    for line in exposition.splitlines():
        if not line or line.startswith("#"):
            continue
        head, value = line.rsplit(" ", 1)
        name, _, labels = head.partition("{")
        if name.endswith("_created"):
            continue
        pairs = []
        for key, raw in LABEL.findall(labels):
            if key.startswith("otel_scope_"):
                continue
            if key == "le":
                raw = repr(float(raw))
            pairs.append(f'{key}="{raw}"')
        key = f"{name}{{{','.join(sorted(pairs))}}}"
        if key in out:
            raise SystemExit(f"series {key} appears twice in one exposition")
        out[key] = float(value)
    return out


def compare_series(base: dict, ours: dict) -> list:
    """Every difference between two expositions: a series only one side has, or a value that
    differs (relative tolerance 1e-6). Empty when they agree."""
    problems = [f"only in the baseline: {k}" for k in sorted(set(base) - set(ours))]
    problems += [f"only in testmeter: {k}" for k in sorted(set(ours) - set(base))]
    for key in sorted(set(base) & set(ours)):
        b, o = base[key], ours[key]
        if not (abs(b - o) <= 1e-6 * max(1.0, abs(b))):
            problems.append(f"{key}: baseline {b}, testmeter {o}")
    return problems


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            return urllib.request.urlopen(url, timeout=5).read().decode()
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"nothing answered at {url}")


def ingest(work, cases_list, reps, rows, notes):
    config = work / "ingest.toml"
    # The defaults a user gets: no limit is raised. The osworld plugin counts its histograms
    # (WIT 0.4.0), so what it returns does not grow with the cases, and the default report cap
    # (1 GiB) takes the 1M-case file (about 450 MB).
    config.write_text(f'plugins_dir = "{ROOT / "plugins"}"\n[sandbox]\ncache_dir = "{work / "cache"}"\n'
                      f'[history]\npath = "{work / "history.db"}"\n')
    for cases in cases_list:
        report = work / f"junit-{cases}.xml"
        subprocess.run([sys.executable, ROOT / "bench" / "gen_junit.py", str(cases), report], check=True)
        base_out, tm_out = work / "baseline.prom", work / "testmeter.prom"
        b_times, b_rss, t_times, t_rss = [], [], [], []
        anchors = {name: ([], []) for name in ("quick-xml", "junit-parser")} if ANCHORS.exists() else {}
        # One untimed run of each first: the compiled-plugin cache and the page cache warm up,
        # as they are for every ingest after a machine's first.
        for rep in range(reps[cases] + 1):
            if rep == 0:
                subprocess.run([PYTHON, ROOT / "bench" / "osworld_baseline.py", report], stdout=subprocess.DEVNULL)
                subprocess.run([BIN, "ingest", report, "--system", "osworld", "--config", config, "--print"],
                               stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, env={**os.environ, "RUST_LOG": "off"})
                # Steal is counted over the measured runs only, not over the warm-up.
                steal = Steal()
                continue
            with open(base_out, "w") as out:
                run = run_measured([PYTHON, ROOT / "bench" / "osworld_baseline.py", report], stdout=out)
            assert run.code == 0, "the baseline failed"
            b_times.append(run.wall)
            b_rss.append(run.peak_rss)
            with open(tm_out, "w") as out:
                run = run_measured(
                    [BIN, "ingest", report, "--system", "osworld", "--config", config, "--print"],
                    stdout=out, env={**os.environ, "RUST_LOG": "off"},
                )
            assert run.code == 0, "testmeter ingest failed"
            t_times.append(run.wall)
            t_rss.append(run.peak_rss)
            for name, (times, rss) in anchors.items():
                out_path = work / f"anchor-{name}.json"
                with open(out_path, "w") as out:
                    run = run_measured([ANCHORS, name, report], stdout=out)
                assert run.code == 0, f"the {name} anchor failed"
                counted = json.loads(out_path.read_text())["cases"]
                assert counted == cases, f"the {name} anchor read {counted} cases of {cases}"
                times.append(run.wall)
                rss.append(run.peak_rss)
        stolen = steal.share()
        base = series(base_out.read_text())
        ours = {k: v for k, v in series(tm_out.read_text()).items() if k.startswith("genesis_osworld")}
        differ = compare_series(base, ours)
        if not base or differ:
            raise SystemExit(f"{cases} cases: the expositions differ in {len(differ)} place(s) "
                             f"({len(base)} baseline series): " + "; ".join(differ[:8]))
        size = report.stat().st_size / 1e6
        b_med, b_text = spread(b_times, 1e-3, "{:.0f}")
        t_med, t_text = spread(t_times, 1e-3, "{:.0f}")
        br_med, br_text = spread(b_rss, 2**20)
        tr_med, tr_text = spread(t_rss, 2**20)
        rows.append((f"ingest, {cases:,} cases ({size:.1f} MB), wall ms", b_text, t_text,
                     f"{b_med / t_med:.1f}× faster", "≥ 20× faster at 100k" if cases == 100_000 else ""))
        rows.append((f"ingest, {cases:,} cases, peak RSS MiB", br_text, tr_text,
                     f"{tr_med / br_med:.2f}× the baseline's", "less memory; flat from 100k to 1M"))
        for name, (times, rss) in anchors.items():
            a_med, a_text = spread(times, 1e-3, "{:.0f}")
            ar_med, ar_text = spread(rss, 2**20)
            goal = "≤ 1.2× at 100k" if name == "quick-xml" and cases == 100_000 else ""
            anchor = "a bare quick-xml loop" if name == "quick-xml" else "the junit-parser crate"
            rows.append((f"ingest, {cases:,} cases, wall ms: {anchor} (Rust)", a_text, t_text,
                         f"testmeter takes {t_med / a_med:.2f}× its time", goal))
            rows.append((f"ingest, {cases:,} cases, peak RSS MiB: {anchor} (Rust)", ar_text, tr_text,
                         f"testmeter {tr_med / ar_med:.2f}× its memory", ""))
        notes.append(f"{cases:,} cases: both sides export the same {len(base)} series with the same values; "
                     f"CPU steal while measuring: {stolen:.1%} of all CPU time.")


def history_cost(work, reps, rows):
    """What recording a run in the per-test history adds to an ingest of 100,000 cases (history
    on, as a user gets it, against [history] enabled = false, legs rotated in one run), and the
    store's size per million case results (one 1M-case run into a fresh store)."""
    report = work / "junit-100000.xml"
    if not report.exists():
        subprocess.run([sys.executable, ROOT / "bench" / "gen_junit.py", "100000", report], check=True)
    configs = {}
    for leg, history in (("on", f'path = "{work / "history-cost.db"}"'), ("off", "enabled = false")):
        configs[leg] = work / f"history-{leg}.toml"
        configs[leg].write_text(f'plugins_dir = "{ROOT / "plugins"}"\n[sandbox]\ncache_dir = "{work / "cache"}"\n'
                                f"[history]\n{history}\n")
    env = {**os.environ, "RUST_LOG": "off"}
    times = {"on": [], "off": []}
    first = {}
    for rep in range(reps + 1):
        for leg in (("on", "off") if rep % 2 else ("off", "on")):
            run = run_measured([BIN, "ingest", report, "--system", "osworld", "--config", configs[leg]], env=env)
            assert run.code == 0, f"ingest with history {leg} failed"
            if rep > 0:
                times[leg].append(run.wall)
            else:
                first[leg] = run.wall
    off_med, off_text = spread(times["off"], 1e-3, "{:.0f}")
    on_med, on_text = spread(times["on"], 1e-3, "{:.0f}")
    rows.append(("ingest, 100,000 cases, wall ms: history off → on (a store holding the earlier runs)",
                 off_text, on_text, f"+{on_med - off_med:.0f} ms", "≤ +150 ms"))
    # The unmeasured first rep: the suite's first run, which also names its 100,000 tests.
    rows.append(("ingest, 100,000 cases, wall ms: history off → on, a suite's first run into a fresh store (1 run)",
                 f"{first['off'] * 1e3:.0f}", f"{first['on'] * 1e3:.0f}",
                 f"+{(first['on'] - first['off']) * 1e3:.0f} ms", "measured"))
    million = work / "junit-1000000.xml"
    if million.exists():
        store = work / "history-size.db"
        sized = work / "history-size.toml"
        sized.write_text(f'plugins_dir = "{ROOT / "plugins"}"\n[sandbox]\ncache_dir = "{work / "cache"}"\n'
                         f'[history]\npath = "{store}"\n')
        sizes = []
        for _ in range(2):
            subprocess.run([BIN, "ingest", million, "--system", "osworld", "--config", sized],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, check=True)
            sizes.append(sum(p.stat().st_size for p in work.glob("history-size.db*")))
        rows.append(("history store size per 1,000,000 case results, MB: a suite's first run (its 1M tests named) → "
                     "each later run of the same tests", "", f"{sizes[0] / 1e6:.0f} → +{(sizes[1] - sizes[0]) / 1e6:.0f}",
                     "", "measured"))


def traces_cost(work, reps, rows):
    """What the traces of a run add to an ingest of 100,000 cases with 5% failures, sent with its
    metrics to a real OTLP collector (rotel, which discards what it receives): traces off
    ([traces] enabled = false) against `notable` (the default), `all` with the default cap of
    1,000 case spans, and `all` with the cap and the span queue raised to 100,000. Legs rotated
    in one run, the first round unmeasured; wall time and peak RSS of each."""
    report = work / "junit-100000-5pct.xml"
    subprocess.run([sys.executable, ROOT / "bench" / "gen_junit.py", "100000", report, "--failures=0.05"],
                   check=True)
    rotel = next((ROOT / ".venv" / "lib").glob("python3.*/site-packages/rotel/rotel-agent"))
    grpc, http = free_port(), free_port()
    collector = subprocess.Popen(
        [rotel, "start", "--otlp-grpc-endpoint", f"127.0.0.1:{grpc}", "--otlp-http-endpoint", f"127.0.0.1:{http}",
         "--exporter", "blackhole", "--pid-file", work / "rotel.pid"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", http), timeout=1).close()
                break
            except OSError:
                if time.time() > deadline:
                    raise SystemExit("rotel did not listen")
                time.sleep(0.1)
        legs = {
            "off": "[traces]\nenabled = false\n",
            "notable": "",
            "all": '[traces]\ncases = "all"\n',
            "all, uncapped": '[traces]\ncases = "all"\nmax_case_spans = 100000\nqueue = 100000\n',
        }
        configs = {}
        for leg, traces in legs.items():
            configs[leg] = work / f"traces-{leg.replace(', ', '-')}.toml"
            configs[leg].write_text(
                f'plugins_dir = "{ROOT / "plugins"}"\n[sandbox]\ncache_dir = "{work / "cache"}"\n'
                f'[history]\npath = "{work / "traces-history.db"}"\n'
                f'[otlp]\nendpoint = "http://127.0.0.1:{http}"\nprotocol = "http/protobuf"\n{traces}')
        env = {**os.environ, "RUST_LOG": "off"}
        times = {leg: [] for leg in legs}
        rss = {leg: [] for leg in legs}
        order = list(legs)
        for rep in range(reps + 1):
            for leg in order[rep % len(order):] + order[:rep % len(order)]:
                run = run_measured([BIN, "ingest", report, "--system", "osworld", "--config", configs[leg]], env=env)
                assert run.code == 0, f"ingest with traces {leg} failed"
                if rep > 0:
                    times[leg].append(run.wall)
                    rss[leg].append(run.peak_rss)
    finally:
        collector.terminate()
        collector.wait(timeout=30)
    off_med, off_text = spread(times["off"], 1e-3, "{:.0f}")
    for leg, goal in (("notable", "≤ +10%"), ("all", "≤ 2×"), ("all, uncapped", "≤ 2×")):
        med, text = spread(times[leg], 1e-3, "{:.0f}")
        what = {"notable": "notable (the default)", "all": "all (the default cap: 1,000 case spans)",
                "all, uncapped": "all, cap and queue raised to 100,000"}[leg]
        rows.append((f"ingest, 100,000 cases (5% failed) with OTLP, wall ms: traces off → {what}",
                     off_text, text, f"{(med / off_med - 1) * 100:+.1f}% ({med / off_med:.2f}×)", goal))
    peaks = " / ".join(f"{statistics.median(rss[leg]) / 2**20:.1f}" for leg in legs)
    rows.append(("ingest, 100,000 cases (5% failed) with OTLP, peak RSS MiB: traces off / notable / all / all uncapped",
                 "", peaks, "", "bounded by the span queue"))


def flat_memory(work, rows):
    """Peak RSS of `ingest` (the default config, the osworld plugin) of a report in every format
    at 100k and 1M cases, plain and with its first test repeated after all the others (a late
    rerun, which used to make a JUnit report be read whole). JUnit comes from gen_junit.py, the
    text formats from gen_text.py."""
    config = work / "flat.toml"
    config.write_text(f'plugins_dir = "{ROOT / "plugins"}"\n[sandbox]\ncache_dir = "{work / "cache"}"\n')
    # One ingest first, unmeasured: it compiles the plugin into the cache, which the first
    # measured row would otherwise pay for in memory.
    warm = work / "warm.xml"
    subprocess.run([sys.executable, ROOT / "bench" / "gen_junit.py", "10", warm], check=True)
    subprocess.run([BIN, "ingest", warm, "--system", "osworld", "--config", config], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, "RUST_LOG": "off"})
    formats = [("JUnit", None), ("TAP", "tap"), ("go test -json", "go-test-json"),
               ("libtest JSON", "libtest-json"), ("libtest text", "libtest"), ("pytest text", "pytest-text")]
    for label, fmt in formats:
        for cases in (100_000, 1_000_000):
            peaks = []
            for repeated in (False, True):
                report = work / f"flat-{cases}-{repeated}.{'xml' if fmt is None else 'txt'}"
                generate = ([ROOT / "bench" / "gen_junit.py", str(cases), report] if fmt is None
                            else [ROOT / "bench" / "gen_text.py", fmt, str(cases), report])
                subprocess.run([sys.executable, *generate] + (["--repeat-late"] if repeated else []), check=True)
                # Each report its own suite in the history, as different projects' reports are: a
                # suite's first run, which also names its tests.
                suite = f"flat-{fmt or 'junit'}-{cases}-{'repeated' if repeated else 'plain'}"
                run = run_measured([BIN, "ingest", report, "--system", "osworld", "--suite", suite,
                                    "--config", config, "--print"], env={**os.environ, "RUST_LOG": "off"})
                assert run.code == 0, f"testmeter ingest of {label} failed"
                peaks.append(run.peak_rss / 2**20)
                size = report.stat().st_size / 1e6
                report.unlink()
            rows.append((f"ingest peak RSS MiB, {label}, {cases:,} cases ({size:.0f} MB): plain / first test "
                         "repeated at the end", "", f"{peaks[0]:.1f} / {peaks[1]:.1f}",
                         f"{peaks[1] - peaks[0]:+.1f} MiB for the repeat", "flat from 100k to 1M"))
    # Suites are handed on as they end: a report of one suite per case holds none of them.
    peaks = []
    for cases in (100_000, 1_000_000):
        report = work / f"suites-{cases}.xml"
        subprocess.run([sys.executable, ROOT / "bench" / "gen_junit.py", str(cases), report, "--suite-per-case"],
                       check=True)
        run = run_measured([BIN, "ingest", report, "--system", "osworld", "--suite", f"suites-{cases}",
                            "--config", config, "--print"], env={**os.environ, "RUST_LOG": "off"})
        assert run.code == 0, "testmeter ingest of a suite per case failed"
        peaks.append(run.peak_rss / 2**20)
        report.unlink()
    rows.append(("ingest peak RSS MiB, JUnit, one `<testsuite>` per case: 100,000 / 1,000,000 cases", "",
                 f"{peaks[0]:.1f} / {peaks[1]:.1f}", f"{peaks[1] - peaks[0]:+.1f} MiB from 100k to 1M",
                 "flat from 100k to 1M"))


def systems_reading_output(config):
    """The systems with a plugin that declares it reads captured output, from `testmeter
    plugins`: for their pytest suites the agent adds `-o junit_logging=all`."""
    listing = subprocess.run([BIN, "plugins", "--config", config], capture_output=True, text=True,
                             check=True, env={**os.environ, "RUST_LOG": "off"}).stdout
    systems = set()
    for match in re.finditer(r"^\S+ \S+ \(.*\) systems: (.*); reads: (.*)$", listing, re.MULTILINE):
        if "system-out" in match.group(2) or "system-err" in match.group(2):
            systems.update(s.strip() for s in match.group(1).split(","))
    return systems


def run_agent(argv, env):
    """`testmeter once`, measured; its exit code is 1 when a suite failed, as osworld's does."""
    run = run_measured(argv, env=env)
    assert run.code in (0, 1), f"{argv} failed"
    return run


def rotated(legs, reps):
    """Runs `reps` rounds of every `(times, leg)` pair, appending each leg's time to its list.
    The legs' order rotates from round to round, so none is always the first (or the last) of
    a round, after the same neighbour."""
    for round_ in range(reps):
        shift = round_ % len(legs)
        for times, leg in legs[shift:] + legs[:shift]:
            times.append(leg())


def median_ci(values, level=0.95, draws=4000):
    """A bootstrap confidence interval of the median: the rounds resampled with replacement
    (seeded, so a report is reproducible from its figures)."""
    rng = random.Random(8)
    medians = sorted(statistics.median(rng.choices(values, k=len(values))) for _ in range(draws))
    return medians[int(draws * (1 - level) / 2)], medians[int(draws * (1 + level) / 2) - 1]


def once_overhead(work, reps, rows, notes):
    """`testmeter once` on the example config against its three pytest commands run bare, one
    after another, two ways: exactly as configured, and as the agent runs them (plus the
    `-o junit_logging=all` it adds for the suites whose plugins read captured output). Then
    the agent's own share, measured two ways that the suites' noise does not reach: its CPU
    time in those runs, and `once` over the same suites' reports replayed by `cp`."""
    examples = ROOT / "examples"
    env = {**os.environ, "PATH": f"{ROOT / '.venv' / 'bin'}:{os.environ['PATH']}", "RUST_LOG": "off",
           "PYTHONDONTWRITEBYTECODE": "1", "XDG_CACHE_HOME": str(work / "cache")}
    # In the example config each suite's name is its system's.
    logged = systems_reading_output(examples / "testmeter.toml")

    def bare(as_run):
        start = time.perf_counter()
        for name in EXAMPLE_SUITES:
            extra = {"OSWORLD_RESULTS": str(work / "results.json")} if name == "osworld" else {}
            extra_args = ["-o", "junit_logging=all"] if as_run and name in logged else []
            subprocess.run(
                ["python3", "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "junit_family=xunit1",
                 f"--junitxml={work / 'bare.xml'}", *extra_args],
                cwd=examples / name, env={**env, **extra}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
        return time.perf_counter() - start

    configured, as_run, once, own, suites = [], [], [], [], []
    agent_argv = [BIN, "once", "--config", examples / "testmeter.toml"]
    # One untimed `once` first: it fills the compiled-plugin cache and warms the page cache.
    run_agent(agent_argv, env)

    def agent():
        run = run_agent(agent_argv, env)
        own.append(run.own_cpu)
        suites.append(run.children_cpu)
        return run.wall

    steal = Steal()
    rotated([(configured, lambda: bare(False)), (as_run, lambda: bare(True)), (once, agent)], reps)
    stolen = steal.share()
    _, o_text = spread(once, 1e-3, "{:.0f}")
    for label, times in (("as the agent runs them", as_run), ("as configured", configured)):
        _, b_text = spread(times, 1e-3, "{:.0f}")
        # Each `once` against the bare commands of the same round: the machine's load drifts
        # over the minutes this takes, and a paired ratio cancels the drift medians keep.
        ratios = [o / b for o, b in zip(once, times)]
        low, high = median_ci(ratios)
        rows.append((f"`once` on the 3 example suites vs their pytest commands {label}, wall ms", b_text, o_text,
                     f"{(statistics.median(ratios) - 1) * 100:+.1f}% wall time (median of {reps} paired rounds; "
                     f"95% CI {(low - 1) * 100:+.1f} to {(high - 1) * 100:+.1f}%)", "≤ +3%"))
    mean_own, mean_suites = statistics.fmean(own), statistics.fmean(suites)
    rows.append(("`once`: the agent's own CPU time in those runs, its suites' excluded, ms (mean; 10 ms ticks)",
                 f"suites {mean_suites * 1e3:.0f}", f"{mean_own * 1e3:.1f} (range {min(own) * 1e3:.0f}–"
                 f"{max(own) * 1e3:.0f}, n={reps})", f"{mean_own / mean_suites:.1%} of the suites' CPU", ""))
    notes.append(f"`once`: CPU steal while measuring: {stolen:.1%} of all CPU time.")
    replayed(work, env, reps, statistics.median(as_run), rows)


def replayed(work, env, reps, pytest_wall, rows):
    """The agent's own wall time in `once`: the example suites' reports (and osworld's results
    artifact), as the last `once` left them, replayed by suites whose command is a `cp` of
    the report, against the same `cp` commands run bare. Everything the agent does around its
    suites is in it: start-up, plugins, reading, deriving, exporting, printing, exit."""
    examples = ROOT / "examples"
    lines = [f'plugins_dir = "{ROOT / "plugins"}"', "[prometheus]", f'listen = "127.0.0.1:{free_port()}"']
    commands = []
    for name in EXAMPLE_SUITES:
        suite = work / "replay" / name
        shutil.rmtree(suite, ignore_errors=True)
        (suite / "reports").mkdir(parents=True)
        shutil.copy(examples / name / "reports" / "junit.xml", suite / "saved.xml")
        artifacts = ""
        if (examples / name / "results").is_dir():
            shutil.copytree(examples / name / "results", suite / "results")
            artifacts = 'artifacts = ["results/*.json"]\n'
        command = ["cp", "saved.xml", "reports/junit.xml"]
        commands.append((command, suite))
        lines.append(f'[[suite]]\nname = "{name}"\nsystem = "{name}"\ncommand = {json.dumps(command)}\n'
                     f'working_dir = "{suite}"\nreport = "reports/junit.xml"\n{artifacts}')
    config = work / "replay.toml"
    config.write_text("\n".join(lines) + "\n")
    argv = [BIN, "once", "--config", config]
    run_agent(argv, env)
    agent, bare = [], []

    def bare_leg():
        start = time.perf_counter()
        for command, cwd in commands:
            subprocess.run(command, cwd=cwd, check=True)
        return time.perf_counter() - start

    rotated([(agent, lambda: run_agent(argv, env).wall), (bare, bare_leg)], reps)
    _, b_text = spread(bare, 1e-3)
    _, a_text = spread(agent, 1e-3)
    diffs = [a - b for a, b in zip(agent, bare)]
    added = statistics.median(diffs)
    low, high = median_ci(diffs)
    rows.append(("`once` on the same suites' reports replayed (each command a `cp` of its report) vs the `cp`s "
                 "bare, wall ms", b_text, a_text,
                 f"{added * 1e3:+.1f} ms (95% CI {low * 1e3:+.1f} to {high * 1e3:+.1f}), {added / pytest_wall:.1%} "
                 "of the pytest commands' median wall time", ""))


def idle_rss(work, cache):
    """RSS (MiB) of `testmeter run` with the 3 plugins and no suites, 4 s after start, with the
    compiled-plugin cache `cold` (compiles at start) or `warm` (loads from it)."""
    port = free_port()
    config = work / "idle.toml"
    config.write_text(f'plugins_dir = "{ROOT / "plugins"}"\n[prometheus]\nlisten = "127.0.0.1:{port}"\n'
                      f'[sandbox]\ncache_dir = "{work / "idle-cache"}"\n')
    shutil.rmtree(work / "idle-cache", ignore_errors=True)
    env = {**os.environ, "RUST_LOG": "warn"}
    if cache == "warm":
        subprocess.run([BIN, "plugins", "--config", config], env=env, stdout=subprocess.DEVNULL, check=True)
    agent = subprocess.Popen([BIN, "run", "--config", config], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, env=env)
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz")
        time.sleep(4)
        status = pathlib.Path(f"/proc/{agent.pid}/status").read_text()
        return int(re.search(r"VmRSS:\s+(\d+)", status).group(1)) / 1024
    finally:
        agent.terminate()
        agent.wait(timeout=30)


def wrk(url, seconds):
    out = subprocess.run(["wrk", "-t2", "-c8", f"-d{seconds}s", "--latency", url],
                         capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    if rps == 0 or p99 is None:
        # No response within the run (prometheus_client can take seconds per scrape of 10k
        # series on a busy machine): no latency to report.
        return 0.0, float("nan")
    scale = {"us": 1e-3, "ms": 1.0, "s": 1e3}[p99.group(2)]
    return rps, float(p99.group(1)) * scale


def metrics_load(work, seconds, rows, notes):
    # 600 categories × (1 success rate + 16 duration histogram series) ≈ 10,200 osworld series.
    report = work / "wide.xml"
    subprocess.run([sys.executable, ROOT / "bench" / "gen_junit.py", "6000", report, "600"], check=True)
    port, base_port = free_port(), free_port()
    config = work / "wide.toml"
    config.write_text(
        f'plugins_dir = "{ROOT / "plugins"}"\n[[suite]]\nname = "wide"\nsystem = "osworld"\n'
        f'command = ["cp", "{report}", "wide-report.xml"]\nworking_dir = "{work}"\nreport = "wide-report.xml"\n'
        f'interval = "1h"\n[prometheus]\nlisten = "127.0.0.1:{port}"\n[sandbox]\ncache_dir = "{work / "cache"}"\n'
        'timeout = "10s"\n'
    )
    agent = subprocess.Popen([BIN, "run", "--config", config], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, env={**os.environ, "RUST_LOG": "warn"})
    baseline = subprocess.Popen([PYTHON, ROOT / "bench" / "osworld_baseline.py", report, "--serve", str(base_port)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        body = ""
        while time.time() < deadline and "genesis_osworld_tasks_total" not in body:
            body = wait_http(f"http://127.0.0.1:{port}/metrics")
            time.sleep(0.2)
        ours = sum(1 for l in body.splitlines() if l and not l.startswith("#"))
        theirs = sum(1 for l in wait_http(f"http://127.0.0.1:{base_port}/metrics").splitlines()
                     if l and not l.startswith("#"))
        b_rps, b_p99 = wrk(f"http://127.0.0.1:{base_port}/metrics", seconds)
        t_rps, t_p99 = wrk(f"http://127.0.0.1:{port}/metrics", seconds)
    finally:
        agent.terminate()
        baseline.terminate()
        agent.wait(timeout=30)
        baseline.wait(timeout=30)
    ratio = f"{t_rps / b_rps:.1f}× the baseline's" if b_rps else f"the baseline answered nothing in {seconds} s"
    rows.append((f"/metrics under wrk (2 threads, 8 connections, {seconds} s), requests/s",
                 f"{b_rps:.0f}", f"{t_rps:.0f}", ratio, ""))
    latency = f"{t_p99 / b_p99:.2f}× the baseline's" if b_rps and t_rps else "n/a"
    rows.append(("/metrics under wrk, p99 latency ms", f"{b_p99:.1f}", f"{t_p99:.1f}", latency, ""))
    notes.append(f"/metrics: testmeter serves {ours:,} sample lines (its own metrics included), "
                 f"prometheus_client {theirs:,}; one wrk run each.")


def derive_bench(rows, baseline_10k_ms):
    out = subprocess.run(["cargo", "bench", "-q", "-p", "testmeter", "--bench", "derive"], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        m = re.match(r"(\S+) derive, (\d+) samples per call\s+median\s+([\d.]+) ms\s+p10\s+([\d.]+)\s+p90\s+([\d.]+)", line)
        if m:
            name, samples, med, p10, p90 = m.group(1), m.group(2), *map(float, m.groups()[2:])
            ratio = f"{med / baseline_10k_ms * 100:.1f}% of the baseline's whole 10k ingest" if baseline_10k_ms else ""
            rows.append((f"derive(), {name} plugin, 10k cases, ms", "", f"{med:.1f} (p10 {p10:.1f}, p90 {p90:.1f}, n=50)",
                         ratio, ""))


def startup(rows):
    out = subprocess.run(["bench/startup.sh", "release", "7"], cwd=ROOT, capture_output=True, text=True,
                         check=True).stdout
    cold = re.search(r"cold cache: median (\d+) ms \(min (\d+), max (\d+)", out)
    warm = re.search(r"warm cache: median (\d+) ms \(min (\d+), max (\d+)", out)
    c, w = (int(cold.group(1)), cold.group(2), cold.group(3)), (int(warm.group(1)), warm.group(2), warm.group(3))
    rows.append(("start-up with 3 plugins, cold cache → warm cache, ms", f"{c[0]} ({c[1]}–{c[2]}, n=7)",
                 f"{w[0]} ({w[1]}–{w[2]}, n=7)", f"warm is {c[0] / max(w[0], 1):.1f}× faster", ""))


def machine():
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    mem = int(re.search(r"MemTotal:\s+(\d+)", open("/proc/meminfo").read()).group(1)) / 2**20
    version = lambda argv: subprocess.run(argv, capture_output=True, text=True).stdout.strip().splitlines()[0]
    client = version([PYTHON, "-c", "import importlib.metadata as m; print(m.version('prometheus_client'))"])
    return [
        f"- Machine: {os.cpu_count()} × {cpu}, {mem:.0f} GiB, {platform.system()} {platform.release()}",
        f"- {version([BIN, '--version'])} (release build); {version(['rustc', '--version'])}",
        f"- Baseline: {version([PYTHON, '--version'])}, prometheus_client {client}",
        f"- {version(['wrk', '--version']) if shutil.which('wrk') else 'wrk missing'}",
        f"- Measured {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC",
    ]


def table(rows):
    head = ("figure", "baseline", "testmeter", "ratio", "goal")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def soak_rss(warm, *flags):
    """RSS in MiB at run 100 and at run 1,000 of bench/soak.py."""
    soak = subprocess.run([sys.executable, ROOT / "bench" / "soak.py", "1000"]
                          + (["--warm"] if warm else []) + list(flags),
                          capture_output=True, text=True, check=True).stdout
    at100 = float(re.search(r"RSS at run 100:\s+([\d.]+)", soak).group(1))
    at1000 = float(re.search(r"RSS at run 1000:\s+([\d.]+)", soak).group(1))
    return at100, at1000


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--flat", action="store_true",
                        help="only the peak-RSS rows of every format, printed and not written")
    parser.add_argument("--traces", action="store_true",
                        help="only the rows of what traces add to an ingest, printed and not written")
    parser.add_argument("--out", default=str(ROOT / "docs" / "performance.md"))
    args = parser.parse_args()
    work = pathlib.Path(tempfile.mkdtemp(prefix="testmeter-bench-"))
    # Every agent started here keeps its per-test history under the work dir, not the user's.
    os.environ["XDG_STATE_HOME"] = str(work / "state")
    rows, notes = [], []
    try:
        if args.flat:
            flat_memory(work, rows)
            print(table(rows))
            return
        if args.traces:
            traces_cost(work, 5, rows)
            print(table(rows))
            return
        if args.quick:
            ingest(work, [10_000], {10_000: 1}, rows, notes)
            metrics_load(work, 5, rows, notes)
            print(table(rows))
            print("\n".join(notes))
            return
        ingest(work, [1_000, 10_000, 100_000, 1_000_000], {1_000: 11, 10_000: 9, 100_000: 9, 1_000_000: 3},
               rows, notes)
        base_10k = next(float(r[1].split()[0]) for r in rows if r[0].startswith("ingest, 10,000") and "wall" in r[0])
        history_cost(work, 9, rows)
        traces_cost(work, 5, rows)
        flat_memory(work, rows)
        once_overhead(work, 41, rows, notes)
        for cache in ("warm", "cold"):
            idle = [idle_rss(work, cache) for _ in range(3)]
            _, idle_text = spread(idle, 1, "{:.1f}")
            at100, at1000 = soak_rss(cache == "warm")
            rows.append((f"daemon RSS MiB, {cache} plugin cache: idle with 3 plugins; at run 100 → 1,000", "",
                         f"idle {idle_text}; {at100:.1f} → {at1000:.1f}",
                         f"{at1000 - at100:+.2f} MiB from run 100 to 1,000", "≤ 20 MiB, flat"))
        # What the per-test history (on by default, so in the rows above) costs the daemon.
        at100, at1000 = soak_rss(True, "--no-history")
        rows.append(("daemon RSS MiB, warm plugin cache, history off: at run 100 → 1,000", "",
                     f"{at100:.1f} → {at1000:.1f}", f"{at1000 - at100:+.2f} MiB from run 100 to 1,000", "—"))
        metrics_load(work, 10, rows, notes)
        derive_bench(rows, base_10k)
        startup(rows)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    generated = "\n".join([
        START,
        "Generated by `bench/run.sh` (which runs `bench/report.py`); every figure in this section",
        "comes from one run on the machine named here. Times are medians with their range and the",
        "number of runs; the ratio compares testmeter with the baseline measured in the same run.",
        "",
        *machine(),
        "",
        table(rows),
        "",
        *[f"- {n}" for n in notes],
        END,
    ])
    out = pathlib.Path(args.out)
    # The hand-written analysis around the generated section is kept.
    old = out.read_text() if out.exists() else f"# Performance\n\n{START}\n{END}\n"
    if START in old and END in old:
        text = old[: old.index(START)] + generated + old[old.index(END) + len(END):]
    else:
        text = old.rstrip("\n") + "\n\n" + generated + "\n"
    out.write_text(text)
    print(generated)


if __name__ == "__main__":
    main()
