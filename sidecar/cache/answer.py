"""A stored answer: the chunks' text exactly as the original call produced them, and its outcome."""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass, field

from sidecar.cache.key import CacheScope
from sidecar.core.types import Chunk, FinishReason, Price, Target, Usage

ANSWER_VERSION = 1
STORABLE = (FinishReason.STOP, FinishReason.LENGTH)  # a complete answer (not filtered, not cut)


def replayable(chunk: Chunk) -> bool:
    """Whether a stored answer can give this chunk back: it keeps text only, so an answer with tool
    calls (whatever its finish reason: OpenAI says "stop" for a call forced by tool_choice) or
    thinking is not stored."""
    return not chunk.tool_calls and not chunk.thinking


@dataclass(slots=True)
class Passing:
    """What a caching layer sees of the answer it passes on: the chunks' text, the final chunk (held
    back from `pass_on`: the layer passes it on itself, and stores the answer once the layers outside
    took it, so a stored answer is a complete one they accepted), and whether every chunk is one a
    stored answer can give back."""

    texts: list[str] = field(default_factory=list)
    final: Chunk | None = None
    whole: bool = True

    async def pass_on(self, stream: AsyncIterator[Chunk]) -> AsyncGenerator[Chunk, None]:
        """Every chunk of `stream` but the final one, noting what a stored answer needs."""
        async for chunk in stream:
            if chunk.text:
                self.texts.append(chunk.text)
            self.whole = self.whole and replayable(chunk)
            if chunk.is_final:
                self.final = chunk
                continue
            yield chunk

    @property
    def storable(self) -> Chunk | None:
        """The final chunk when the answer may be stored: complete, text only, and not blank (an
        empty STOP, a degenerate sample or a provider's silent filter, is passed on, never kept for
        everyone asking the same for the entry's TTL)."""
        final = self.final
        if final is None or not self.whole or final.finish_reason not in STORABLE:
            return None
        return final if any(not text.isspace() for text in self.texts) else None


@dataclass(frozen=True, slots=True)
class CachedAnswer:
    scope: CacheScope
    texts: tuple[str, ...]  # one per chunk that carried text, in order
    finish_reason: FinishReason
    usage: Usage
    target: Target | None
    expires_at: float  # wall clock; checked on read as well as by the backend's own TTL
    created_at: float | None = None  # wall clock; None in entries written before it was kept

    def encode(self) -> bytes:
        t = self.target
        return json.dumps(
            {
                "v": ANSWER_VERSION,
                "tenant": self.scope.tenant,
                "user": self.scope.user,
                "texts": list(self.texts),
                "finish": self.finish_reason.value,
                "usage": [self.usage.prompt_tokens, self.usage.completion_tokens],
                "target": None if t is None else [t.route, t.deployment, t.provider, t.model],
                "expires_at": self.expires_at,
                "created_at": self.created_at,
            },
            ensure_ascii=False,
            separators=(",", ":"),
        ).encode()

    @classmethod
    def decode(cls, data: bytes) -> CachedAnswer:
        """Raises ValueError (or KeyError/TypeError) on anything that is not a stored answer."""
        d = json.loads(data)
        if d["v"] != ANSWER_VERSION:
            raise ValueError(f"unknown cached answer version {d['v']!r}")
        texts = d["texts"]
        if not all(isinstance(t, str) for t in texts):
            raise ValueError("texts must be strings")
        target = d["target"]
        return cls(
            scope=CacheScope(str(d["tenant"]), str(d["user"])),
            texts=tuple(texts),
            finish_reason=FinishReason(d["finish"]),
            usage=Usage(prompt_tokens=int(d["usage"][0]), completion_tokens=int(d["usage"][1])),
            target=None if target is None else _target(target),
            expires_at=float(d["expires_at"]),
            created_at=None if d.get("created_at") is None else float(d["created_at"]),
        )


def _target(fields: list[object]) -> Target:
    route, deployment, provider, model = (str(f) for f in fields)
    return Target(route, deployment, provider, model, Price())  # price unused: a hit costs nothing
