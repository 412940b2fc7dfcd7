"""Counting a chat prompt's tokens the way the chosen deployment will: the one counting service.

`Tokenizers` is the service that trimming (sidecar/pipeline/context.py), the route's context fit,
the quota estimate and the estimated usage of interrupted streams all call: `prompt(deployment,
messages)`, `text(deployment, text)`, `fits(deployment, messages, max_tokens, window)` and the
largest counts over every configured tokenizer (`count_prompt_max`, `count_text_max`) for what is
counted before a deployment is chosen.

OpenAI model families (by tiktoken's own model table: gpt-4o, gpt-4.1, gpt-5, o1/o3/o4 are
o200k_base; gpt-4, gpt-3.5-turbo are cl100k_base) count exactly as OpenAI bills them (the rules
of OpenAI's cookbook "How to count tokens with tiktoken", checked against the usage.prompt_tokens
it records in tests/fixtures/tokens/): every message costs 3 tokens of framing plus the encoded
text of each of its fields, the role's name included ("user" is 1 token), a `name` field costs
its encoded text plus 1, and 3 tokens prime the reply.

Every other provider (Anthropic, OpenAI-compatible servers running other models, echo) counts with
the estimate of sidecar/core/tokens.py: words of up to 8 characters and single punctuation marks
are a token each, plus 4 per message (role and separators), a name's words plus 1, and 3 to
prime the reply. For English prose it lands within about 15 % of BPE tokenizers, usually above
them; for code and non-Latin scripts it can be off by more, which is why the trimmer keeps
max_tokens of headroom and the provider's own count stays the one that is billed. A local model
served with a chat template (llama.cpp, vLLM, Ollama) can be given its template's framing with a
deployment `tokenizer` of cl100k_base/o200k_base, the closest exact count available offline.
"""

from __future__ import annotations

import hashlib
import logging
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from sidecar.config.context import ChatTemplateConfig
from sidecar.config.schema import DeploymentConfig
from sidecar.context.encodings import SPECS, EncodingFileError, load_encoding
from sidecar.core import tokens as estimate
from sidecar.core.types import Message, Role

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
    count_role: bool = False  # the role's name is encoded like any text (OpenAI's framing)
    default_system: int = 0  # a chat template's own system message, added when a prompt has none

    def count_message(self, message: Message) -> int:
        n = self.count_text(message.text) + self.per_message
        if self.count_role:
            n += self.count_text(message.role.value)
        if message.name:
            n += self.count_text(message.name) + self.per_name
        return n

    def frame(self, messages: Sequence[Message]) -> int:
        """What the prompt costs besides its messages: the reply priming, and a template's default
        system message when the prompt does not start with a system message."""
        if self.default_system and (not messages or messages[0].role is not Role.SYSTEM):
            return self.priming + self.default_system
        return self.priming

    def count_prompt(self, messages: Iterable[Message]) -> int:
        messages = tuple(messages)
        return self.frame(messages) + sum(self.count_message(m) for m in messages)


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
    ESTIMATE, MemoizedCount(estimate.count_tokens), estimate.MESSAGE_OVERHEAD, 1, estimate.REPLY_PRIMING
)


def tiktoken_counter(encoding: tiktoken.Encoding) -> TokenCounter:
    def count(text: str) -> int:
        return len(encoding.encode_ordinary(text))

    return TokenCounter(
        encoding.name, MemoizedCount(count), per_message=3, per_name=1, priming=3, count_role=True
    )


def templated(counter: TokenCounter, t: ChatTemplateConfig) -> TokenCounter:
    """The counter of a server-side chat template: its text counting, the template's framing."""
    name = f"{counter.name}+template({t.per_message},{t.priming},{t.default_system_tokens})"
    return replace(
        counter,
        name=name,
        per_message=t.per_message,
        priming=t.priming,
        count_role=False,
        default_system=t.default_system_tokens,
    )


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

    def prompt(self, deployment: str, messages: Iterable[Message]) -> int:
        """The prompt tokens `deployment` bills for these messages, chat framing included."""
        return self.for_deployment(deployment).count_prompt(messages)

    def text(self, deployment: str, text: str) -> int:
        """The tokens of a piece of text (output, a persona prompt) as `deployment` counts them."""
        return self.for_deployment(deployment).count_text(text)

    def fits(self, deployment: str, messages: Iterable[Message], max_tokens: int, window: int) -> bool:
        """The fit rule: the prompt plus the max_tokens it will be sent stays within the window."""
        return self.prompt(deployment, messages) + max_tokens <= window

    def prompt_max(self, messages: Iterable[Message]) -> int:
        """A chat prompt's largest count over the configured tokenizers (before a deployment is chosen)."""
        messages = tuple(messages)
        return max(c.count_prompt(messages) for c in self._distinct)

    def count_text_max(self, text: str) -> int:
        """The largest count any configured tokenizer gives: for a persona prompt, which must fit them
        all, and for quota estimates made before the route has picked a deployment."""
        return max(c.count_text(text) for c in self._distinct)

    def count_prompt_max(self, texts: Iterable[str]) -> int:
        """A chat prompt's largest count over the configured tokenizers, framing included, when only
        the texts are known: every role counts as 1 token (true of each role in cl100k_base and
        o200k_base); prefer `prompt_max`, which also counts names."""
        texts = tuple(texts)
        return max(
            c.priming
            + c.default_system
            + sum(c.count_text(t) + c.per_message + int(c.count_role) for t in texts)
            for c in self._distinct
        )

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
        counters = {d: loaded.get(e, ESTIMATE_COUNTER) for d, e in wanted.items()}
        for name, d in deployments.items():
            if d.chat_template is not None:
                counters[name] = templated(counters[name], d.chat_template)
        return cls(counters)
