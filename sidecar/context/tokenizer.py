"""Counting a chat prompt's tokens the way the chosen deployment will: the one counting service.

`Tokenizers` is the service that trimming (sidecar/pipeline/context.py), the route's context fit,
the quota estimate and the estimated usage of interrupted streams all call: `prompt(deployment,
messages)`, `text(deployment, text)`, `fits(deployment, messages, max_tokens, window)` and the
largest counts over every configured tokenizer (`prompt_max`, `count_text_max`) for what is
counted before a deployment is chosen.

OpenAI model families (by tiktoken's own model table: gpt-4o, gpt-4.1, gpt-5, o1/o3/o4 are
o200k_base; gpt-4, gpt-3.5-turbo are cl100k_base) count exactly as OpenAI bills them (the rules
of OpenAI's cookbook "How to count tokens with tiktoken", checked against the usage.prompt_tokens
it records in tests/fixtures/tokens/): every message costs 3 tokens of framing plus the encoded
text of each of its fields, the role's name included ("user" is 1 token), a `name` field costs
its encoded text plus 1, and 3 tokens prime the reply.

Anthropic counts with an upper bound (`anthropic_bound`; Anthropic publishes no tokenizer for its
current models): the estimate below plus 20 %, plus a token per UTF-8 byte beyond the first of
every non-ASCII character, 5 a message, the largest tool-use system prompt Anthropic publishes
(530) when tools are sent, and images by its (w x h) / 750 rule. Every other provider
(OpenAI-compatible servers running other models, echo) counts with the estimate of
sidecar/core/tokens.py: words of up to 8 characters and single punctuation marks are a token each,
plus 4 per message (role and separators), a name's words plus 1, and 3 to prime the reply. For
English prose it lands within about 15 % of BPE tokenizers, usually above them; for code and
non-Latin scripts it can be off by more. A local model served with a chat template (llama.cpp,
vLLM, Ollama) can be given its template's framing (`chat_template`) with a deployment `tokenizer`.

Besides text, role and name, a message counts its tool calls (id, name, arguments, 3 of framing
each), the id of the call a tool result answers (+1) and its images (OpenAI's tile rule at high
detail for OpenAI-family counters, Anthropic's rule for Anthropic, Gemini's for Gemini deployments
(sidecar/providers/images.py), the larger of OpenAI's and Anthropic's for the estimate); a
call's tool definitions (name, description, schema, 8 each, and the provider's tools preamble) and
response schema count once per prompt (`count_params`). OpenAI does not publish how
it renders tool definitions and calls into tokens: those parts are a documented estimate, the
message text and framing are exact. See docs/context.md.
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from sidecar.config.context import ChatTemplateConfig
from sidecar.config.schema import DeploymentConfig
from sidecar.context.encodings import SPECS, EncodingFileError, load_encoding
from sidecar.core import tokens as estimate
from sidecar.core.lru import Lru
from sidecar.core.types import GenerationParams, Image, Message, Role
from sidecar.providers.images import anthropic_tokens, openai_tokens, own_rule

if TYPE_CHECKING:
    import tiktoken

_log = logging.getLogger("sidecar.context")
ESTIMATE = "estimate"
ANTHROPIC = "anthropic-bound"
BY_MODEL = "the OpenAI model's encoding"  # not looked up: with no encodings_dir none could be loaded
TOOL_CALL_FRAME = 3  # a tool call's own framing (its type and separators), on top of id, name, arguments
TOOL_FRAME = 8  # a tool definition's framing in the prompt the provider builds from it
TOOLS_FRAME = 12  # the block that introduces the tool definitions
ANTHROPIC_TOOLS_PROMPT = 530  # the largest tool-use system prompt Anthropic publishes for a model
ANTHROPIC_MARGIN = 1.2  # the estimate's safety margin for Anthropic's unpublished tokenizer
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
    count_image: Callable[[Image], int] = lambda i: max(openai_tokens(i), anthropic_tokens(i))
    tools_prompt: int = TOOLS_FRAME  # what the provider adds to a prompt that has tool definitions
    per_role: tuple[tuple[Role, int], ...] = ()  # a chat template's extra framing for some roles

    def count_message(self, message: Message) -> int:
        """A message's tokens: text, role, name, the tool calls it makes or answers, its images, the
        thinking it sends back."""
        n = self.count_text(message.text) + self.per_message
        n += sum(self.count_text(b.text or b.redacted) for b in message.thinking)
        n += sum(extra for role, extra in self.per_role if role is message.role)
        if self.count_role:
            n += self.count_text(message.role.value)
        if message.name:
            n += self.count_text(message.name) + self.per_name
        for c in message.tool_calls:
            n += (
                self.count_text(c.id)
                + self.count_text(c.name)
                + self.count_text(c.arguments)
                + TOOL_CALL_FRAME
            )
        if message.tool_call_id:
            n += self.count_text(message.tool_call_id) + 1
        return n + sum(self.count_image(i) for i in message.images)

    def count_params(self, params: GenerationParams | None) -> int:
        """What a call's parameters add to its prompt: tool definitions and a response schema."""
        if params is None:
            return 0
        n = self.tools_prompt if params.tools else 0
        for t in params.tools:
            n += self.count_text(t.name) + self.count_text(t.description) + self.count_text(t.parameters_json)
            n += TOOL_FRAME
        if params.response_format is not None and params.response_format.schema_json:
            n += self.count_text(params.response_format.schema_json) + TOOL_FRAME
        return n

    def frame(self, messages: Sequence[Message]) -> int:
        """What the prompt costs besides its messages: the reply priming, and a template's default
        system message when the prompt does not start with a system message."""
        if self.default_system and (not messages or messages[0].role is not Role.SYSTEM):
            return self.priming + self.default_system
        return self.priming

    def count_prompt(self, messages: Iterable[Message], params: GenerationParams | None = None) -> int:
        messages = tuple(messages)
        return self.frame(messages) + sum(self.count_message(m) for m in messages) + self.count_params(params)


class MemoizedCount:
    """Remembers the counts of long texts by a digest of them (never the text itself): a long
    conversation resends the same messages every turn, and hashing is ~30x cheaper than encoding.
    Bounded: the least recently used counts go first."""

    MIN_CHARS = 256  # shorter texts are cheaper to count than to hash

    def __init__(self, count: Callable[[str], int], max_entries: int = 20_000) -> None:
        self._count = count
        self._known: Lru[bytes, int] = Lru(max_entries)

    def __call__(self, text: str) -> int:
        if len(text) < self.MIN_CHARS:
            return self._count(text)
        key = hashlib.blake2b(text.encode(), digest_size=16).digest()
        known = self._known.peek(key)
        if known is not None:
            self._known.refresh(key)  # a use (peek and refresh: the hot path, no Python call)
            return known
        n = self._count(text)
        self._known.put(key, n)
        return n


ESTIMATE_COUNTER = TokenCounter(
    ESTIMATE, MemoizedCount(estimate.count_tokens), estimate.MESSAGE_OVERHEAD, 1, estimate.REPLY_PRIMING
)


def anthropic_bound(text: str) -> int:
    """An upper bound of Claude's count of `text`: the larger of the estimate plus ANTHROPIC_MARGIN
    and a token per 3 characters (long words, code and digits split into more tokens than the
    estimate's 8-character words), plus, for each character outside ASCII, a token per UTF-8 byte
    beyond the first (a CJK character or an emoji can be a token or more of its own)."""
    extra = sum(len(c.encode()) - 1 for c in text if ord(c) > 127)
    words = math.ceil(estimate.count_tokens(text) * ANTHROPIC_MARGIN)
    return max(words, math.ceil(len(text) / 3)) + extra


ANTHROPIC_COUNTER = TokenCounter(
    ANTHROPIC,
    MemoizedCount(anthropic_bound),
    per_message=estimate.MESSAGE_OVERHEAD + 1,
    per_name=1,
    priming=estimate.REPLY_PRIMING,
    count_image=anthropic_tokens,
    tools_prompt=ANTHROPIC_TOOLS_PROMPT,
)


def tiktoken_counter(encoding: tiktoken.Encoding) -> TokenCounter:
    def count(text: str) -> int:
        return len(encoding.encode_ordinary(text))

    return TokenCounter(
        encoding.name,
        MemoizedCount(count),
        per_message=3,
        per_name=1,
        priming=3,
        count_role=True,
        count_image=openai_tokens,
    )


def templated(counter: TokenCounter, t: ChatTemplateConfig) -> TokenCounter:
    """The counter of a server-side chat template: its text counting, the template's framing."""
    roles = "".join(f",{role}+{extra}" for role, extra in sorted(t.role_tokens.items()))
    name = f"{counter.name}+template({t.per_message},{t.priming},{t.default_system_tokens}{roles})"
    return replace(
        counter,
        name=name,
        per_message=t.per_message,
        priming=t.priming,
        count_role=False,
        default_system=t.default_system_tokens,
        per_role=tuple((Role(role), extra) for role, extra in sorted(t.role_tokens.items())),
    )


def wanted_encoding(deployment: DeploymentConfig, *, look_up: bool = True) -> str:
    """The encoding a deployment counts with: its `tokenizer`, or by model family when auto. Without
    `look_up` an OpenAI model's is BY_MODEL: finding it loads tiktoken's native core (1.25 MB of
    RSS), which a sidecar with no encoding files to load it from does not need."""
    if deployment.tokenizer != "auto":
        return deployment.tokenizer
    if deployment.provider == "anthropic" or (
        deployment.provider == "bedrock" and "claude" in deployment.model  # Claude on Bedrock
    ):
        return ANTHROPIC
    if deployment.provider not in ("openai", "azure"):  # Azure OpenAI serves OpenAI's models
        return ESTIMATE
    if not look_up:
        return BY_MODEL
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

    def prompt(
        self, deployment: str, messages: Iterable[Message], params: GenerationParams | None = None
    ) -> int:
        """The prompt tokens `deployment` bills for these messages (and the call's tool definitions
        and response schema), chat framing included."""
        return self.for_deployment(deployment).count_prompt(messages, params)

    def text(self, deployment: str, text: str) -> int:
        """The tokens of a piece of text (output, a persona prompt) as `deployment` counts them."""
        return self.for_deployment(deployment).count_text(text)

    def fits(self, deployment: str, messages: Iterable[Message], max_tokens: int, window: int) -> bool:
        """The fit rule: the prompt plus the max_tokens it will be sent stays within the window."""
        return self.prompt(deployment, messages) + max_tokens <= window

    def prompt_max(
        self,
        messages: Iterable[Message],
        params: GenerationParams | None = None,
        *,
        deployments: Iterable[str] | None = None,
    ) -> int:
        """A chat prompt's largest count over the configured tokenizers, or over those of
        `deployments` (a route's, before one of them is chosen): names, tool calls and results,
        images, tool definitions and schema included."""
        messages = tuple(messages)
        counters = self._distinct
        if deployments is not None:
            counters = tuple({(c := self.for_deployment(d)).name: c for d in deployments}.values())
        return max(c.count_prompt(messages, params) for c in counters or self._distinct)

    def count_text_max(self, text: str) -> int:
        """The largest count any configured tokenizer gives: for a persona prompt, which must fit them
        all, and for quota estimates made before the route has picked a deployment."""
        return max(c.count_text(text) for c in self._distinct)

    @classmethod
    def build(cls, deployments: Mapping[str, DeploymentConfig], directory: Path | None) -> Tokenizers:
        """Load each wanted encoding once; a deployment whose encoding is unavailable gets the
        estimate, and a log line at startup says which and why."""
        wanted = {name: wanted_encoding(d, look_up=directory is not None) for name, d in deployments.items()}
        loaded: dict[str, TokenCounter] = {ANTHROPIC: ANTHROPIC_COUNTER}
        for encoding in sorted(set(wanted.values()) - {ESTIMATE, ANTHROPIC}):
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
                counters[name] = templated(_own(counters[name], d.chat_template, name), d.chat_template)
            if (rule := own_rule(d)) is not None:  # Gemini's images, whatever counts its text
                counters[name] = replace(
                    counters[name], name=f"{counters[name].name}+{d.model}", count_image=rule
                )
        return cls(counters)


def _own(counter: TokenCounter, template: ChatTemplateConfig, deployment: str) -> TokenCounter:
    """The counter of the model's own tokenizer when its GGUF file is given and readable."""
    if template.tokenizer_gguf is None:
        return counter
    from sidecar.context.gguf import gguf_encoding

    try:
        return replace(
            tiktoken_counter(gguf_encoding(template.tokenizer_gguf)), count_image=counter.count_image
        )
    except EncodingFileError as exc:
        _log.warning("token counts fall back to %s: %s", counter.name, exc, extra={"deployments": deployment})
        return counter
