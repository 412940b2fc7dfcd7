"""The semantic cache's partitions: which stored questions a prompt may be compared with.

A prompt is split in two: the last user message's text, which is embedded and compared by cosine
similarity, and everything else (tenant, scope, persona, route, the deployments the call is
narrowed to, normalized parameters, every earlier message whole, the system prompt, tool calls and
results and images included, and the last message's images), which is hashed into the partition.
Only entries of the same partition are ever compared, so a paraphrase is matched only under the
same instructions and history, and never across tenants: the tenant is part of the partition,
and the stored answer carries its scope, checked again on read.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, replace

from sidecar.cache.key import CacheScope, message_material, normalized_params
from sidecar.core.types import GenerationParams, Message, Role

PARTITION_VERSION = 3


@dataclass(frozen=True, slots=True)
class Partition:
    """Which entries a lookup may compare with: one tenant's, under one prompt context."""

    tenant: str
    key: str  # hex digest of the tenant, scope, persona, route, parameters and earlier messages

    def of_model(self, model: str) -> Partition:
        """This partition's entries embedded by one model: another model's vectors are not
        comparable (an embedding route may fall back to another model)."""
        digest = hashlib.blake2b(f"{self.key}\x00{model}".encode(), digest_size=20).hexdigest()
        return Partition(self.tenant, digest)


def split_prompt(
    scope: CacheScope,
    *,
    persona: str,
    route: str,
    params: GenerationParams,
    messages: Sequence[Message],
    deployments: Sequence[str] = (),
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
        list(deployments),  # narrowed_deployments: another model's answer is another answer
        normalized_params(params),
        [message_material(m) for m in messages[:-1]],
        message_material(replace(messages[-1], text="")),  # its images: only text is embedded
    ]
    encoded = json.dumps(material, ensure_ascii=False, separators=(",", ":")).encode()
    return messages[-1].text, Partition(scope.tenant, hashlib.blake2b(encoded, digest_size=20).hexdigest())
