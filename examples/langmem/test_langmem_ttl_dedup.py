"""LangMem TTL and deduplication suite over the real store in langmem_store.py."""

import time

import pytest

from langmem_store import LangMemDedup, MemoryStore, cosine, vectorize

FACTS = [
    "The user prefers dark mode in every editor.",
    "The user's timezone is Europe/Berlin.",
    "Deploys happen on Tuesdays and Thursdays.",
    "The staging database is postgres 15.",
    "Alerts go to the #oncall channel.",
]


class TestTTL:
    def test_entries_expire_after_ttl(self, store, clock):
        store.put("session", "temporary note", ttl_seconds=60)
        clock.advance(59)
        assert store.get("session") == ["temporary note"]
        clock.advance(1)
        assert store.get("session") == []

    def test_entries_without_ttl_never_expire(self, store, clock):
        store.put("profile", FACTS[0])
        clock.advance(10 * 365 * 24 * 3600)
        assert store.get("profile") == [FACTS[0]]

    def test_cleanup_deletes_only_expired_entries(self, store, clock):
        store.put_many("session", ["a note", "another note"], ttl_seconds=30)
        store.put_many("profile", FACTS[:2])
        clock.advance(31)
        assert store.cleanup_expired() == 2
        assert store.size() == 2

    def test_cleanup_across_namespaces(self, store, clock):
        for index in range(6):
            store.put(f"ns{index % 3}", f"short lived {index}", ttl_seconds=5 + index)
        clock.advance(8)  # TTLs 5..8 have run out; 9 and 10 have not
        assert store.cleanup_expired() == 4
        clock.advance(100)
        assert store.cleanup_expired() == 2
        assert store.size() == 0


class TestExactDedup:
    def test_identical_content_is_removed(self, store):
        store.put_many("profile", [FACTS[0], FACTS[0], FACTS[1]])
        assert store.consolidate("profile") == 1
        assert store.get("profile") == [FACTS[0], FACTS[1]]

    def test_case_and_whitespace_do_not_hide_duplicates(self, store):
        store.put_many("profile", [FACTS[2], "  " + FACTS[2].upper() + "  "])
        assert store.consolidate("profile") == 1

    def test_distinct_facts_are_all_kept(self, store):
        store.put_many("profile", FACTS)
        assert store.consolidate("profile") == 0
        assert store.get("profile") == FACTS


class TestSemanticDedup:
    def test_paraphrase_is_removed(self, store):
        store.put_many("profile", ["The user prefers dark mode in every editor.",
                                   "User prefers dark mode in every editor"])
        assert store.consolidate("profile") == 1

    def test_related_but_different_facts_are_kept(self, store):
        store.put_many("ops", ["Deploys happen on Tuesdays.", "Rollbacks happen on Fridays."])
        assert store.consolidate("ops") == 0

    def test_similarity_is_symmetric_and_bounded(self):
        a, b = vectorize(FACTS[0]), vectorize(FACTS[1])
        assert cosine(a, b) == pytest.approx(cosine(b, a))
        assert 0.0 <= cosine(a, b) < 1.0
        assert cosine(a, a) == pytest.approx(1.0)

    @pytest.mark.parametrize("threshold,expected_removed", [(0.95, 1), (0.6, 2)])
    def test_threshold_controls_aggressiveness(self, clock, threshold, expected_removed):
        store = MemoryStore(LangMemDedup(threshold=threshold, cache_size=16), clock)
        store.put_many("notes", ["Alerts go to the oncall channel.",
                                 "Alerts go to the oncall channel!",
                                 "Alerts are sent to the oncall chat channel."])
        assert store.consolidate("notes") == expected_removed


class TestDedupAtScale:
    def test_mixed_batch(self, store):
        batch = []
        for round_ in range(20):
            for fact in FACTS:
                batch.append(fact if round_ % 2 == 0 else fact.rstrip(".") + " indeed.")
        store.put_many("bulk", batch)
        removed = store.consolidate("bulk")
        assert removed >= len(batch) - 2 * len(FACTS)

    def test_cache_is_bounded(self, clock):
        dedup = LangMemDedup(threshold=0.9, cache_size=8)
        store = MemoryStore(dedup, clock)
        store.put_many("bulk", [f"distinct fact number {i} about topic {i * 7}" for i in range(40)])
        store.consolidate("bulk")
        assert dedup.cached == 8

    def test_dedup_performance_target(self, store):
        """P95 of dedup passes over 200-entry batches must stay under the 50 ms target."""
        latencies = []
        for round_ in range(20):
            store.put_many(f"perf{round_}", [f"memory {i % 150} of batch {round_} with shared words" for i in range(200)])
            started = time.perf_counter()
            store.consolidate(f"perf{round_}")
            latencies.append(time.perf_counter() - started)
        latencies.sort()
        p95 = latencies[int(0.95 * (len(latencies) - 1))]
        assert p95 < 0.050, f"P95 dedup latency {p95 * 1000:.0f}ms vs 50ms target"
