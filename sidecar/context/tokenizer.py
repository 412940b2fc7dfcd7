"""Counting a chat prompt's tokens the way the chosen deployment will.

OpenAI model families (by tiktoken's own model table: gpt-4o, gpt-4.1, gpt-5, o1/o3/o4 are
o200k_base; gpt-4, gpt-3.5-turbo are cl100k_base) count with tiktoken, plus OpenAI's documented
chat framing: 3 tokens per message, 1 more when it has a name, 3 to prime the reply. Every other
provider (Anthropic, OpenAI-compatible servers running other models, echo) counts with the
estimate of sidecar/core/tokens.py: words of up to 8 characters and single punctuation marks are
a token each, plus 4 per message and 3 to prime the reply. For English prose it lands within
about 15 % of BPE tokenizers, usually above them; for code and non-Latin scripts it can be off by
more, which is why the trimmer keeps max_tokens of headroom and Anthropic's own count stays the
one that is billed.
"""

from __future__ import annotations

import hashlib
import logging
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sidecar.config.schema import DeploymentConfig
from sidecar.context.encodings import SPECS, EncodingFileError, load_encoding
from sidecar.core import tokens as estimate
from sidecar.core.types import Message

if TYPE_CHECKING:
    import tiktoken

_log = logging.getLogger("sidecar.context")
ESTIMATE = "estimate"
_ALIASES = {"o200k_harmony": "o200k_base"}  # the same ranks, with chat special tokens added


@dataclass(frozen=True, slots=True)
class TokenCounter:
    """Counts text and chat messages for one tokenizer."""

    name: str
    count_text: Callable[[str], int]
    per_message: int
    per_name: int
    priming: int

    def count_message(self, message: Message) -> int:
        return self.count_text(message.text) + self.per_message + (self.per_name if message.name else 0)

    def count_prompt(self, messages: Iterable[Message]) -> int:
        return self.priming + sum(self.count_message(m) for m in messages)


class MemoizedCount:
    """Remembers the counts of long texts by a digest of them (never the text itself): a long
    conversation resends the same messages every turn, and hashing is ~30x cheaper than encoding.
    Bounded: the least recently used counts go first."""

    MIN_CHARS = 256  # shorter texts are cheaper to count than to hash

    def __init__(self, count: Callable[[str], int], max_entries: int = 20_000) -> None:
        self._count, self._max = count, max_entries
        self._known: OrderedDict[bytes, int] = OrderedDict()

    def __call__(self, text: str) -> int:
        if len(text) < self.MIN_CHARS:
            return self._count(text)
        key = hashlib.blake2b(text.encode(), digest_size=16).digest()
        known = self._known.get(key)
        if known is not None:
            self._known.move_to_end(key)
            return known
        n = self._known[key] = self._count(text)
        if len(self._known) > self._max:
            self._known.popitem(last=False)
        return n


ESTIMATE_COUNTER = TokenCounter(
    ESTIMATE, MemoizedCount(estimate.count_tokens), estimate.MESSAGE_OVERHEAD, 0, estimate.REPLY_PRIMING
)


def tiktoken_counter(encoding: tiktoken.Encoding) -> TokenCounter:
    def count(text: str) -> int:
        return len(encoding.encode_ordinary(text))

    return TokenCounter(encoding.name, MemoizedCount(count), per_message=3, per_name=1, priming=3)


def wanted_encoding(deployment: DeploymentConfig) -> str:
    """The encoding a deployment counts with: its `tokenizer`, or by model family when auto."""
    if deployment.tokenizer != "auto":
        return deployment.tokenizer
    if deployment.provider not in ("openai", "azure"):  # Azure OpenAI serves OpenAI's models
        return ESTIMATE
    from tiktoken.model import encoding_name_for_model

    try:
        name = encoding_name_for_model(deployment.model)
    except KeyError:
        return ESTIMATE  # an OpenAI-compatible server running some other model
    name = _ALIASES.get(name, name)
    return name if name in SPECS else ESTIMATE


class Tokenizers:
    """One counter per deployment, built at startup from the encodings that could be loaded."""

    def __init__(self, counters: Mapping[str, TokenCounter]) -> None:
        self._counters = dict(counters)
        distinct = {c.name: c for c in self._counters.values()} or {ESTIMATE: ESTIMATE_COUNTER}
        self._distinct = tuple(distinct.values())

    def for_deployment(self, name: str) -> TokenCounter:
        return self._counters.get(name, ESTIMATE_COUNTER)

    def count_text_max(self, text: str) -> int:
        """The largest count any configured tokenizer gives: for a persona prompt, which must fit them
        all, and for quota estimates made before the route has picked a deployment."""
        return max(c.count_text(text) for c in self._distinct)

    def count_prompt_max(self, texts: Iterable[str]) -> int:
        """A chat prompt's largest count over the configured tokenizers, framing included."""
        texts = tuple(texts)
        return max(c.priming + sum(c.count_text(t) + c.per_message for t in texts) for c in self._distinct)

    @classmethod
    def build(cls, deployments: Mapping[str, DeploymentConfig], directory: Path | None) -> Tokenizers:
        """Load each wanted encoding once; a deployment whose encoding is unavailable gets the
        estimate, and a log line at startup says which and why."""
        wanted = {name: wanted_encoding(d) for name, d in deployments.items()}
        loaded: dict[str, TokenCounter] = {}
        for encoding in sorted(set(wanted.values()) - {ESTIMATE}):
            try:
                if directory is None:
                    raise EncodingFileError("policy.context.encodings_dir is not set")
                loaded[encoding] = tiktoken_counter(load_encoding(directory, encoding))
            except EncodingFileError as exc:
                users = sorted(d for d, e in wanted.items() if e == encoding)
                _log.warning(
                    "token counts fall back to the estimate: %s",
                    exc,
                    extra={"encoding": encoding, "deployments": ",".join(users)},
                )
        return cls({d: loaded.get(e, ESTIMATE_COUNTER) for d, e in wanted.items()})
