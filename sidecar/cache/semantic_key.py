"""The semantic cache's partitions: which stored questions a prompt may be compared with.

A prompt is split in two: the last user message, which is embedded and compared by cosine
similarity, and everything else (tenant, scope, persona, route, normalized parameters and every
earlier message, the system prompt included), which is hashed into the partition. Only entries of
the same partition are ever compared, so a paraphrase is matched only under the same instructions
and history, and never across tenants: the tenant is part of the partition, and the stored answer
carries its scope, checked again on read.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass

from sidecar.cache.key import CacheScope, normalized_params
from sidecar.core.types import GenerationParams, Message, Role

PARTITION_VERSION = 1


@dataclass(frozen=True, slots=True)
class Partition:
    """Which entries a lookup may compare with: one tenant's, under one prompt context."""

    tenant: str
    key: str  # hex digest of the tenant, scope, persona, route, parameters and earlier messages


def split_prompt(
    scope: CacheScope, *, persona: str, route: str, params: GenerationParams, messages: Sequence[Message]
) -> tuple[str, Partition] | None:
    """The text to embed (the last user message) and the partition; None when there is no user
    message last (nothing to compare)."""
    if not messages or messages[-1].role is not Role.USER or not messages[-1].text.strip():
        return None
    material = [
        PARTITION_VERSION,
        scope.tenant,
        scope.user,
        persona,
        route,
        normalized_params(params),
        [[m.role.value, m.name, m.text] for m in messages[:-1]],
    ]
    encoded = json.dumps(material, ensure_ascii=False, separators=(",", ":")).encode()
    return messages[-1].text, Partition(scope.tenant, hashlib.blake2b(encoded, digest_size=20).hexdigest())
