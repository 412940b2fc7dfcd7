"""A finish value an adapter does not know (a provider's newer one): what it becomes, logged once."""

from __future__ import annotations

import functools
import logging

from sidecar.core.types import FinishReason

_log = logging.getLogger("sidecar.providers")
# Unknown finish values remembered (so each is logged once), per process; an upstream sending a new
# one with every answer only logs again after this many others.
_UNKNOWN_NOTED = 64
UNKNOWN_FINISH_SHOWN = 40  # characters of an unknown value in the log: it is the upstream's text


def unknown_finish(provider: str, value: str, default: FinishReason) -> FinishReason:
    """The finish reason of a value the adapter does not know (a provider's newer one): `default`,
    which is CONTENT_FILTER for the providers whose documented lists are closed and grow with
    abnormal ends (Gemini, Bedrock, Anthropic: an answer the sidecar cannot vouch for is neither
    cached nor reported complete), logged once at DEBUG."""
    _note_unknown(provider, value[:UNKNOWN_FINISH_SHOWN])
    return default


@functools.lru_cache(maxsize=_UNKNOWN_NOTED)
def _note_unknown(provider: str, value: str) -> None:
    _log.debug("unknown finish reason from %s: %r", provider, value, extra={"provider": provider})
