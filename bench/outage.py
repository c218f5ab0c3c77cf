#!/usr/bin/env python3
"""Collector outage: `testmeter run` pushes OTLP/gRPC every second (2 s timeout) to a collector that
black-holes (accepts TCP connections, reads what arrives and never answers) for N minutes, while
three small suites run every second through the three bundled plugins and /metrics is scraped
every second. Then a real rotel collector takes over the same port.

Prints, once a minute, the agent's RSS, open fds, suite runs, export errors and failed scrapes;
then how long export took to resume once rotel listened, and the agent's log lines about export
state. Figures only; nothing is asserted.

Usage: bench/outage.py [minutes, default 10] (after `cargo build --release -p testmeter &&
cargo plugins`; rotel comes from .venv)
"""

import os
import pathlib
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

from soak import free_port, suite_tables

ROOT = pathlib.Path(__file__).resolve().parent.parent
MINUTES = float(sys.argv[1]) if len(sys.argv) > 1 else 10.0
# OUTAGE_PUSH=100ms,100ms pushes (and fails) ten times as often, to see whether memory grows
# with the number of failed pushes or with time.
PUSH_INTERVAL, PUSH_TIMEOUT = os.environ.get("OUTAGE_PUSH", "1s,2s").split(",")


def rss_kib(pid):
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise KeyError("VmRSS")


def value(body, pattern):
    return sum(float(v) for v in re.findall(pattern, body, re.M))


class BlackHole:
    """Accepts connections and reads them forever; never writes a byte."""

    def __init__(self, port):
        self.server = socket.socket()
        self.server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.server.bind(("127.0.0.1", port))
        self.server.listen(64)
        self.connections = []
        self.received = 0
        self.stopped = False
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while not self.stopped:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            self.connections.append(conn)
            threading.Thread(target=self.drain, args=(conn,), daemon=True).start()

    def drain(self, conn):
        while True:
            try:
                data = conn.recv(65536)
            except OSError:
                return
            if not data:
                return
            self.received += len(data)

    def close(self):
        self.stopped = True
        # shutdown() wakes the thread blocked in accept(); close() alone would leave the
        # listener alive in the kernel, still taking connections meant for the next collector.
        try:
            self.server.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.server.close()
        for conn in self.connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            conn.close()


def main():
    work = pathlib.Path(tempfile.mkdtemp(prefix="testmeter-outage-"))
    port, grpc = free_port(), free_port()
    (work / "testmeter.toml").write_text(
        f'plugins_dir = "{ROOT / "plugins"}"\nwatch_plugins = false\n'
        + suite_tables(work, "1s")
        + f'\n[prometheus]\nlisten = "127.0.0.1:{port}"\n'
        + f'\n[otlp]\nendpoint = "http://127.0.0.1:{grpc}"\nprotocol = "grpc"\n'
        + f'interval = "{PUSH_INTERVAL}"\ntimeout = "{PUSH_TIMEOUT}"\n'
    )
    hole = BlackHole(grpc)
    log_path = work / "testmeter.log"
    log = open(log_path, "w")
    agent = subprocess.Popen(
        [str(ROOT / "target" / "release" / "testmeter"), "run", "--config", str(work / "testmeter.toml")],
        stdout=log, stderr=log,
        env={**os.environ, "RUST_LOG": "info", "XDG_CACHE_HOME": str(work / "cache")},
    )
    url = f"http://127.0.0.1:{port}/metrics"
    rotel = None
    failed = 0
    try:
        def scrape():
            nonlocal failed
            try:
                return urllib.request.urlopen(url, timeout=5).read().decode()
            except OSError:
                failed += 1
                if agent.poll() is not None:
                    raise SystemExit(f"the agent exited; see {log_path}")
                return None

        started = time.time()
        print(f"outage: OTLP/gRPC to a black hole for {MINUTES:g} min; 3 suites every 1 s; "
              f"pushes every {PUSH_INTERVAL}, timeout {PUSH_TIMEOUT}")
        print("  min   RSS MiB   fds   suite runs   export errors   failed scrapes")
        samples = []
        next_report = 0.0
        body = ""
        while time.time() - started < MINUTES * 60:
            time.sleep(1)
            body = scrape() or body
            elapsed = time.time() - started
            if elapsed >= next_report:
                rss = rss_kib(agent.pid) / 1024
                fds = len(os.listdir(f"/proc/{agent.pid}/fd"))
                runs = value(body, r"^testmeter_suite_runs_total\{[^}]*\} (\S+)$")
                errors = value(body, r"^testmeter_export_errors_total\{[^}]*\} (\S+)$")
                samples.append(rss)
                print(f"  {elapsed / 60:4.1f}  {rss:8.2f}  {fds:4d}  {runs:11.0f}  {errors:14.0f}  {failed:15d}")
                next_report += 60
        errors_before = value(body, r"^testmeter_export_errors_total\{[^}]*\} (\S+)$")
        print(f"  RSS: first minute {samples[1] if len(samples) > 1 else samples[0]:.2f} MiB, "
              f"max {max(samples):.2f} MiB, last {samples[-1]:.2f} MiB; "
              f"the black hole received {hole.received / 1024:.0f} KiB")

        hole.close()
        rotel_log = open(work / "rotel.log", "w")
        rotel = subprocess.Popen(
            [str(next((ROOT / ".venv" / "lib").glob("*/site-packages/rotel/rotel-agent"))), "start",
             "--otlp-grpc-endpoint", f"127.0.0.1:{grpc}",
             "--otlp-http-endpoint", f"127.0.0.1:{free_port()}",
             "--exporter", "blackhole", "--debug-log", "metrics", "--debug-log-verbosity", "detailed",
             "--pid-file", str(work / "rotel.pid")],
            stdout=rotel_log, stderr=rotel_log,
        )
        listening = time.time()
        resumed = None
        while time.time() - listening < 120:
            time.sleep(0.5)
            if "testmeter_suite" in (work / "rotel.log").read_text(errors="replace") and resumed is None:
                resumed = time.time() - listening
            if resumed is not None:
                break
        time.sleep(5)
        body = scrape() or body
        errors_after = value(body, r"^testmeter_export_errors_total\{[^}]*\} (\S+)$")
        print(f"  rotel on the same port: metrics arrived after {resumed if resumed is None else round(resumed, 1)} s; "
              f"export errors {errors_before:.0f} before, {errors_after:.0f} five seconds after")
        lines = log_path.read_text(errors="replace").splitlines()
        state = [l for l in lines if "metric export failing" in l or "metric export resumed" in l]
        print(f"  agent log lines about export state: {len(state)} of {len(lines)}")
        for line in state:
            print("    " + re.sub(r"\x1b\[[0-9;]*m", "", line)[:160])
        print(f"  failed scrapes over the whole run: {failed}")
        if resumed is None:
            tail = (work / "rotel.log").read_text(errors="replace").splitlines()[-5:]
            print("  export did not resume; rotel's log ends with:")
            for line in tail:
                print("    " + re.sub(r"\x1b\[[0-9;]*m", "", line)[:160])
    finally:
        agent.terminate()
        agent.wait(timeout=60)
        if rotel is not None:
            rotel.terminate()
            rotel.wait(timeout=30)
        hole.close()
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
