"""A deterministic approximate tokenizer: close to BPE counts for English, exact to reassemble.

Tokens are words of at most 8 characters, single punctuation marks and runs of whitespace, each
carrying the whitespace before it, so "".join(split_tokens(t)) == t. Used by the echo provider and
wherever the sidecar must estimate tokens before a provider has counted them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_TOKEN = re.compile(r"\s*\w{1,8}|\s*[^\w\s]|\s+")
MESSAGE_OVERHEAD = 4  # role and separators per message, as chat formats add
REPLY_PRIMING = 3


def split_tokens(text: str) -> list[str]:
    return _TOKEN.findall(text)


def count_tokens(text: str) -> int:
    return sum(1 for _ in _TOKEN.finditer(text))


def count_prompt_tokens(texts: Iterable[str]) -> int:
    """Tokens of a chat prompt: each message's text plus a fixed per-message overhead."""
    return REPLY_PRIMING + sum(count_tokens(t) + MESSAGE_OVERHEAD for t in texts)
