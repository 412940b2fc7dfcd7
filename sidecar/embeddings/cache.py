"""The exact cache of embeddings: one vector per (tenant, model, text), in memory, least recently
used first out. A tenant's texts are never looked up under another tenant's key."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass

from sidecar.core.lru import Lru


@dataclass(frozen=True, slots=True)
class CachedVector:
    vector: tuple[float, ...]
    normalized: bool
    tokens: int  # what embedding the text took, reported as cached tokens on a hit


def vector_key(tenant: str, model: str, text: str) -> str:
    material = json.dumps([1, tenant, model, text], ensure_ascii=False, separators=(",", ":")).encode()
    return hashlib.blake2b(material, digest_size=20).hexdigest()


class VectorCache:
    """Bounded by `max_entries` (0 turns it off)."""

    def __init__(self, max_entries: int) -> None:
        self._max = max_entries
        self._entries: Lru[str, CachedVector] = Lru(max_entries)

    def __len__(self) -> int:
        return len(self._entries)

    def get_many(self, tenant: str, model: str, texts: Sequence[str]) -> list[CachedVector | None]:
        found: list[CachedVector | None] = []
        for text in texts:
            key = vector_key(tenant, model, text)
            found.append(self._entries.get(key))
        return found

    def put(self, tenant: str, model: str, text: str, entry: CachedVector) -> None:
        if self._max == 0:
            return
        key = vector_key(tenant, model, text)
        self._entries.put(key, entry)
