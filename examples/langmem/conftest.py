"""Fixtures of the LangMem example suite: a store with a controllable clock, and the
properties testmeter's langmem plugin reads (cache size, peak memory)."""

import logging
import tracemalloc

import pytest

from langmem_store import LangMemDedup, MemoryStore


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture(autouse=True)
def langmem_logs(caplog):
    caplog.set_level(logging.INFO, logger="langmem")
    yield


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def store(clock, record_property):
    tracemalloc.start()
    dedup = LangMemDedup(threshold=0.8, cache_size=256)
    memory_store = MemoryStore(dedup, clock)
    yield memory_store
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    record_property("cache_size", dedup.cached)
    record_property("memory_bytes", peak)
