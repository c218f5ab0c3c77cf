"""A small LangMem-style memory store: namespaced entries with TTL expiry and cleanup, exact
deduplication by content hash and semantic deduplication by cosine similarity of word and
character-trigram vectors. It logs one line per operation, in the formats LangMem deployments
write and the testmeter langmem plugin reads.
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
import time
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from typing import Callable, Iterable

log = logging.getLogger("langmem")

_WORD = re.compile(r"[a-z0-9]+")


def vectorize(text: str) -> Counter:
    """Bag of lowercase words plus character trigrams of each word: robust to small edits."""
    words = _WORD.findall(text.lower())
    features: Counter = Counter(words)
    for word in words:
        padded = f"#{word}#"
        features.update(padded[i : i + 3] for i in range(len(padded) - 2))
    return features


def cosine(a: Counter, b: Counter) -> float:
    if not a or not b:
        return 0.0
    dot = sum(count * b[key] for key, count in a.items() if key in b)
    norm = math.sqrt(sum(c * c for c in a.values())) * math.sqrt(sum(c * c for c in b.values()))
    return dot / norm if norm else 0.0


@dataclass
class Entry:
    namespace: str
    content: str
    created: float
    ttl_seconds: float | None
    digest: str = field(init=False)

    def __post_init__(self) -> None:
        self.digest = hashlib.sha256(self.content.strip().lower().encode()).hexdigest()

    def expired(self, now: float) -> bool:
        return self.ttl_seconds is not None and now - self.created >= self.ttl_seconds


class LangMemDedup:
    """Removes exact duplicates (same normalised content hash) and semantic duplicates
    (cosine similarity at or above `threshold` to an entry already kept). Vectors of kept
    entries are cached, up to `cache_size` entries (least recently used evicted)."""

    def __init__(self, threshold: float = 0.85, cache_size: int = 1000) -> None:
        self.threshold = threshold
        self.cache_size = cache_size
        self._vectors: OrderedDict[str, Counter] = OrderedDict()
        log.info("LangMemDedup initialized with threshold=%s, cache_size=%d", threshold, cache_size)

    def _vector(self, entry: Entry) -> Counter:
        vector = self._vectors.pop(entry.digest, None)
        if vector is None:
            vector = vectorize(entry.content)
        self._vectors[entry.digest] = vector
        while len(self._vectors) > self.cache_size:
            self._vectors.popitem(last=False)
        return vector

    @property
    def cached(self) -> int:
        return len(self._vectors)

    def deduplicate(self, entries: list[Entry]) -> list[Entry]:
        started = time.perf_counter()
        kept: list[Entry] = []
        kept_vectors: list[Counter] = []
        seen: set[str] = set()
        exact = semantic = 0
        for entry in entries:
            if entry.digest in seen:
                exact += 1
                continue
            vector = self._vector(entry)
            if any(cosine(vector, other) >= self.threshold for other in kept_vectors):
                semantic += 1
                continue
            seen.add(entry.digest)
            kept.append(entry)
            kept_vectors.append(vector)
        elapsed = time.perf_counter() - started
        log.info(
            "Deduplication complete: %d \u2192 %d (exact=%d, semantic=%d) in %.3fs",
            len(entries), len(kept), exact, semantic, elapsed,
        )
        return kept


class MemoryStore:
    """Namespaced memories with optional TTL. `clock` is injectable so tests control time."""

    def __init__(self, dedup: LangMemDedup, clock: Callable[[], float] = time.monotonic) -> None:
        self.dedup = dedup
        self.clock = clock
        self._entries: dict[str, list[Entry]] = {}

    def put(self, namespace: str, content: str, ttl_seconds: float | None = None) -> None:
        self._entries.setdefault(namespace, []).append(
            Entry(namespace, content, self.clock(), ttl_seconds)
        )

    def put_many(self, namespace: str, contents: Iterable[str], ttl_seconds: float | None = None) -> None:
        for content in contents:
            self.put(namespace, content, ttl_seconds)

    def get(self, namespace: str) -> list[str]:
        now = self.clock()
        return [e.content for e in self._entries.get(namespace, []) if not e.expired(now)]

    def size(self) -> int:
        return sum(len(entries) for entries in self._entries.values())

    def cleanup_expired(self) -> int:
        started = time.perf_counter()
        now = self.clock()
        deleted = 0
        for namespace, entries in self._entries.items():
            alive = [e for e in entries if not e.expired(now)]
            deleted += len(entries) - len(alive)
            self._entries[namespace] = alive
        elapsed = time.perf_counter() - started
        log.info(
            "TTL cleanup complete: deleted %d entries from %d namespaces in %.2fs",
            deleted, len(self._entries), elapsed,
        )
        return deleted

    def consolidate(self, namespace: str) -> int:
        """Deduplicates one namespace in place; returns how many entries were removed."""
        entries = self._entries.get(namespace, [])
        kept = self.dedup.deduplicate(entries)
        self._entries[namespace] = kept
        return len(entries) - len(kept)
