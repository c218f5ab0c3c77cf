"""The flaky-demo plugin's derivation of one run (the `derive` interface of wit/plugin.wit):
counts kept while the run's cases are fed in batches, samples made when it finishes.

A batch is columnar: its cases' strings are spans of one `text` (see README.md for reading
one). This plugin only needs each case's outcome and attempts, so it reads no strings at all.
"""

from typing import List

from wit_world.exports import derive
from wit_world.imports import host
from wit_world.imports.types import (
    CaseBatch,
    Outcome,
    RunEnd,
    RunStart,
    Sample,
    SampleValues_Values,
)

from app import FIRST_ATTEMPT, FLAKY, RETRIES


class Derivation(derive.Derivation):
    def __init__(self, run: RunStart) -> None:
        self.ran = 0
        self.flaky = 0
        self.retries = 0
        self.first_try = 0

    def feed(self, batch: CaseBatch) -> None:
        for case in batch.cases:
            if case.outcome == Outcome.SKIPPED:
                continue
            self.ran += 1
            self.flaky += case.flaky
            self.retries += case.attempts - 1
            self.first_try += case.outcome == Outcome.PASSED and case.attempts == 1

    def finish(self, end: RunEnd) -> List[Sample]:
        host.log(host.LogLevel.DEBUG,
                 f"{self.ran} tests ran, {self.flaky} flaky, {self.retries} retries")
        def gauge(metric: str, value: float) -> Sample:
            return Sample(metric, [], SampleValues_Values([value]))

        samples = [gauge(FLAKY, float(self.flaky)), gauge(RETRIES, float(self.retries))]
        if self.ran:
            samples.append(gauge(FIRST_ATTEMPT, 100.0 * self.first_try / self.ran))
        return samples
