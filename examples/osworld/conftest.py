"""Collects every task result of the session and writes the OSWorld results JSON at the end.

The path comes from $OSWORLD_RESULTS (default: results/osworld_results.json in the working dir).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from osworld_harness import TaskResult, write_results


@pytest.fixture(scope="session")
def task_results():
    results: list[TaskResult] = []
    yield results
    write_results(results, Path(os.environ.get("OSWORLD_RESULTS", "results/osworld_results.json")))
