#!/usr/bin/env python3
"""The Python baseline of the parse benchmark: xml.etree.ElementTree.iterparse over a JUnit
file, building one record per test case (classname, name, time, outcome, message), clearing
elements as it goes. Prints the median wall time of RUNS parses and the peak RSS, as JSON.
"""

import json
import resource
import sys
import time
import xml.etree.ElementTree as ET


def parse(path: str) -> list:
    cases = []
    for _, elem in ET.iterparse(path, events=("end",)):
        if elem.tag != "testcase":
            continue
        outcome, message = "passed", None
        for child in elem:
            if child.tag in ("failure", "error", "skipped"):
                outcome, message = child.tag, child.get("message")
                break
        time_attr = elem.get("time")
        cases.append(
            (
                elem.get("classname"),
                elem.get("name"),
                float(time_attr) if time_attr else None,
                outcome,
                message,
            )
        )
        elem.clear()
    return cases


def main() -> None:
    path, runs = sys.argv[1], int(sys.argv[2])
    times = []
    count = 0
    for _ in range(runs):
        start = time.perf_counter()
        count = len(parse(path))
        times.append(time.perf_counter() - start)
    times.sort()
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"cases": count, "median_s": times[len(times) // 2], "peak_rss_bytes": peak_kib * 1024}))


if __name__ == "__main__":
    main()
