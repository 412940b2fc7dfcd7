"""A summary of the messages trimming dropped, written through a configured (cheap) route and cached.

The summary call goes through the route part of the pipeline (routing, keys, provider), as the
same tenant and user, at temperature 0 and at most `max_tokens`. The dropped messages are sent as
one transcript (role: text per line), cut to the newest `max_input_chars`. Summaries are cached
per tenant and user by a hash of the route, the instructions and the dropped messages, so a
retried or repeated turn does not pay for the same summary twice. A summary that fails or takes
longer than `timeout_seconds` is skipped: the call goes on trimmed, without one.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence

from sidecar.cache.store import ByteStore
from sidecar.config.context import SummaryConfig
from sidecar.core.clock import Clock, Deadline
from sidecar.core.errors import SidecarError
from sidecar.core.layer import Handler, collect
from sidecar.core.outcome import Outcome
from sidecar.core.types import Call, GenerationParams, Message, Role

_log = logging.getLogger("sidecar.context")


def transcript(messages: Sequence[Message], max_chars: int) -> str:
    text = "\n".join(f"{m.role.value}{f' ({m.name})' if m.name else ''}: {m.text}" for m in messages)
    return text[-max_chars:]


def summary_message(text: str, dropped: int) -> Message:
    return Message(
        Role.SYSTEM, f"Summary of the {dropped} earlier messages of this conversation, left out here: {text}"
    )


class Summarizer:
    def __init__(self, handler: Handler, *, config: SummaryConfig, store: ByteStore | None, clock: Clock):
        self._handler, self._config, self._store, self._clock = handler, config, store, clock

    @property
    def max_tokens(self) -> int:
        """The longest summary asked for: the trim leaves this much room for it."""
        return self._config.max_tokens

    async def summarize(self, call: Call, dropped: Sequence[Message]) -> str | None:
        """The summary text, from the cache or the route; None when it could not be had."""
        key = self._key(call, dropped)
        cached = await self._cached(key, call)
        if cached is not None:
            return cached
        try:
            async with self._clock.timeout(self._config.timeout_seconds):
                text, _ = await collect(self._handler, self._call(call, dropped))
        except (SidecarError, TimeoutError) as exc:
            reason = exc.reason if isinstance(exc, SidecarError) else "TIMEOUT"
            _log.warning("summary skipped", extra={"request_id": call.request_id, "reason": reason})
            return None
        text = text.strip()
        if text and self._store is not None:
            try:
                await self._store.set(key, text.encode(), self._config.cache_ttl_seconds)
            except Exception as exc:
                _log.warning("summary cache store failed: %r", exc, extra={"request_id": call.request_id})
        return text or None

    def _call(self, call: Call, dropped: Sequence[Message]) -> Call:
        c = self._config
        remaining = call.deadline.remaining()
        seconds = c.timeout_seconds if remaining is None else min(remaining, c.timeout_seconds)
        return Call(
            request_id=f"{call.request_id}.summary",
            model=c.route,
            messages=(
                Message(Role.SYSTEM, c.prompt),
                Message(Role.USER, transcript(dropped, c.max_input_chars)),
            ),
            params=GenerationParams(max_tokens=c.max_tokens, temperature=0.0),
            tenant_id=call.tenant_id,
            user_id=call.user_id,
            conversation_id=call.conversation_id,
            metadata={},
            stream=False,
            deadline=Deadline.after(seconds, self._clock),
            credentials=call.credentials,
            record=Outcome(started_at=self._clock.monotonic()),
            key_source=call.key_source,
            tier=call.tier,
        )

    def _key(self, call: Call, dropped: Sequence[Message]) -> str:
        c = self._config
        material = [
            1,
            call.tenant_id,
            call.user_id,
            c.route,
            c.prompt,
            c.max_tokens,
            c.max_input_chars,
            [[m.role.value, m.name, m.text] for m in dropped],
        ]
        encoded = json.dumps(material, ensure_ascii=False, separators=(",", ":")).encode()
        return "summary:" + hashlib.blake2b(encoded, digest_size=20).hexdigest()

    async def _cached(self, key: str, call: Call) -> str | None:
        if self._store is None:
            return None
        try:
            data = await self._store.get(key)
        except Exception as exc:
            _log.warning("summary cache lookup failed: %r", exc, extra={"request_id": call.request_id})
            return None
        return data.decode() if data else None
