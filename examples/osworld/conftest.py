"""Collects every task result of the session and writes the OSWorld results JSON at the end,
with the harness's own peak memory (traced Python allocations over the session).

The path comes from $OSWORLD_RESULTS (default: results/osworld_results.json in the working dir).
"""

from __future__ import annotations

import os
import tracemalloc
from pathlib import Path

import pytest

from osworld_harness import TaskResult, write_results


@pytest.fixture(scope="session")
def task_results():
    results: list[TaskResult] = []
    tracemalloc.start()
    yield results
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    write_results(
        results,
        Path(os.environ.get("OSWORLD_RESULTS", "results/osworld_results.json")),
        memory_usage_bytes=peak,
    )
