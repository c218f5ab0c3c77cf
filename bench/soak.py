#!/usr/bin/env python3
"""Soak: 1,000 consecutive runs of each of three small suites (the real osworld, langmem and
waltzrl fixture reports, copied into place by `cp`, with the osworld results JSON as an
artifact) through all three bundled plugins under `testmeter run`, with /metrics scraped every
200 ms throughout. Prints the agent's RSS and open file descriptors at run 100 and at run 1,000,
the failed scrapes, and the agent's child processes (fds and children are the fewest over ten
samples, since suites keep running). Figures only; nothing is asserted.

With `--warm`, the compiled-plugin cache is filled first (a `testmeter plugins` run), so the
agent starts the way it restarts in production: from the cache, without compiling. The per-test
history is on, as it is by default, in a fresh store of the soak's own; `--no-history` turns it
off to measure what it costs.

Usage: bench/soak.py [runs] [--warm] [--no-history]
(after `cargo build --release -p testmeter && cargo plugins`)
"""

import os
import pathlib
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def status(pid, key):
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


def fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def children(pid):
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def quiet(pid, samples=10):
    """Fewest open fds and child processes over a few samples 30 ms apart: suites keep running,
    so one sample may catch a run's pipes and processes in flight; a leak shows in every one."""
    fd_counts, child_counts = [], []
    for _ in range(samples):
        fd_counts.append(fds(pid))
        child_counts.append(len(children(pid)))
        time.sleep(0.03)
    return min(fd_counts), min(child_counts)


def runs(body, suite):
    pattern = re.compile(r'^testmeter_suite_runs_total\{[^}]*suite="%s"[^}]*\} (\S+)$' % suite, re.M)
    return sum(float(v) for v in pattern.findall(body))


def suite_tables(work, interval):
    """Three `[[suite]]` tables, one per bundled plugin, each copying the real fixture report of
    its system (and the osworld results JSON, as an artifact) into its own dir under `work`."""
    suites = []
    for name, files in {
        "osworld": ["junit.xml", "osworld_results.json"],
        "langmem": ["junit.xml"],
        "waltzrl": ["junit.xml"],
    }.items():
        d = work / name
        d.mkdir()
        copies = "; ".join(f"cp {FIXTURES / name / f} {f}" for f in files)
        artifacts = '["osworld_results.json"]' if name == "osworld" else "[]"
        suites.append(
            f'[[suite]]\nname = "{name}"\nsystem = "{name}"\ncommand = ["sh", "-c", "{copies}"]\n'
            f'working_dir = "{d}"\nreport = "junit.xml"\nartifacts = {artifacts}\n'
            f'interval = "{interval}"\njitter = "0s"\ntimeout = "30s"\n'
        )
    return "\n".join(suites)


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    runs_wanted = int(args[0]) if args else 1000
    warm = "--warm" in sys.argv
    history = "false" if "--no-history" in sys.argv else "true"
    work = pathlib.Path(tempfile.mkdtemp(prefix="testmeter-soak-"))
    port = free_port()
    (work / "testmeter.toml").write_text(
        f'plugins_dir = "{ROOT / "plugins"}"\nwatch_plugins = false\nmax_concurrent_suites = 3\n'
        + suite_tables(work, "20ms")
        + f'\n[prometheus]\nlisten = "127.0.0.1:{port}"\n'
        + f'\n[history]\nenabled = {history}\n'
    )
    log = open(work / "testmeter.log", "w")
    binary = os.environ.get("TESTMETER_BIN", str(ROOT / "target" / "release" / "testmeter"))
    env = {**os.environ, "RUST_LOG": "warn", "XDG_CACHE_HOME": str(work / "cache"),
           "XDG_STATE_HOME": str(work / "state")}
    if warm:
        subprocess.run([binary, "plugins", "--config", str(work / "testmeter.toml")], env=env,
                       stdout=subprocess.DEVNULL, check=True)
    agent = subprocess.Popen(
        [binary, "run", "--config", str(work / "testmeter.toml")], stdout=log, stderr=log, env=env,
    )
    url = f"http://127.0.0.1:{port}/metrics"
    scrapes = failed = 0
    at = {}
    started = time.time()
    try:
        while True:
            time.sleep(0.2)
            scrapes += 1
            try:
                body = urllib.request.urlopen(url, timeout=5).read().decode()
            except OSError:
                failed += 1
                if agent.poll() is not None:
                    raise SystemExit("the agent exited; see " + str(work / "testmeter.log"))
                continue
            done = min(runs(body, s) for s in ("osworld", "langmem", "waltzrl"))
            for mark in (100, runs_wanted):
                if done >= mark and mark not in at:
                    at[mark] = (status(agent.pid, "VmRSS"),) + quiet(agent.pid)
            if done >= runs_wanted:
                break
            if time.time() - started > 3600:
                raise SystemExit("did not reach %d runs in an hour" % runs_wanted)
    finally:
        agent.terminate()
        agent.wait(timeout=60)
    elapsed = time.time() - started
    (rss100, fd100, kids100), (rss_end, fd_end, kids_end) = at[100], at[runs_wanted]
    cache = "a warm" if warm else "an empty"
    kept = "on" if history == "true" else "off"
    print(f"soak: {runs_wanted} runs of each of 3 suites through 3 plugins in {elapsed:.0f} s, from {cache} plugin cache, history {kept}; {scrapes} scrapes")
    print(f"  RSS at run 100:   {rss100 / 1024:7.2f} MiB    open fds {fd100}    child processes {kids100}")
    print(f"  RSS at run {runs_wanted}: {rss_end / 1024:7.2f} MiB    open fds {fd_end}    child processes {kids_end}")
    print(f"  RSS change:       {(rss_end - rss100) / 1024:+7.2f} MiB   (goal: within 1 MiB)")
    print(f"  failed scrapes:   {failed}")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
