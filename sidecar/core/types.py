"""The domain types every layer speaks: Call in, Chunk out (what a call did: sidecar/core/outcome.py)."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from sidecar.core.clock import Deadline
from sidecar.core.priority import Priority

if TYPE_CHECKING:
    from sidecar.core.outcome import Outcome
    from sidecar.core.plan import CallPlan


class Role(enum.Enum):
    SYSTEM = "system"
    USER = "user"
    ASSISTANT = "assistant"
    TOOL = "tool"


class FinishReason(enum.Enum):
    STOP = "stop"
    LENGTH = "length"
    CONTENT_FILTER = "content_filter"
    TOOL_CALLS = "tool_calls"


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A tool call the model asked for: its id, the tool's name and the JSON arguments as text."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True, slots=True)
class ThinkingBlock:
    """A block of the model's thinking as the provider signed it: its text and signature, or a
    redacted block's opaque data. An assistant message that called tools goes back to the provider
    with these first and unchanged (Anthropic refuses the tool results otherwise)."""

    text: str = ""
    signature: str = ""
    redacted: str = ""

    def __repr__(self) -> str:
        return f"ThinkingBlock(<{len(self.text)} chars>, redacted={bool(self.redacted)})"


@dataclass(frozen=True, slots=True)
class Image:
    """An image in a user message: a URL, or bytes with their MIME type; size when known."""

    url: str = ""
    data: bytes = b""
    mime_type: str = ""
    width: int = 0
    height: int = 0

    def __repr__(self) -> str:
        return f"Image(url={self.url[:40]!r}, data=<{len(self.data)} bytes>, mime_type={self.mime_type!r})"


@dataclass(frozen=True, slots=True)
class Message:
    """One message. `text` is all its text parts joined, so text-only code keeps working."""

    role: Role
    text: str
    name: str = ""
    tool_calls: tuple[ToolCall, ...] = ()  # assistant messages: the calls the model asked for
    tool_call_id: str = ""  # tool messages: the call this result answers
    images: tuple[Image, ...] = ()  # user messages
    thinking: tuple[ThinkingBlock, ...] = ()  # assistant messages: signed thinking, sent back as it came


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """A tool the model may call; parameters as canonical JSON text (a JSON Schema object)."""

    name: str
    description: str = ""
    parameters_json: str = ""


@dataclass(frozen=True, slots=True)
class ToolChoice:
    """`mode` auto / none / required, or `name`: the one tool the model must call."""

    mode: str = "auto"
    name: str = ""


@dataclass(frozen=True, slots=True)
class ResponseFormat:
    """`kind` text / json_object / json_schema; a json_schema carries its name and canonical JSON."""

    kind: str = "text"
    name: str = ""
    schema_json: str = ""
    strict: bool = False


@dataclass(frozen=True, slots=True)
class Reasoning:
    """An effort level (low / medium / high, "" = default) or a thinking budget in tokens."""

    effort: str = ""
    budget_tokens: int = 0
    include_thinking: bool = False


@dataclass(frozen=True, slots=True)
class GenerationParams:
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    stop: tuple[str, ...] = ()
    seed: int | None = None
    tools: tuple[ToolSpec, ...] = ()
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    response_format: ResponseFormat | None = None
    reasoning: Reasoning | None = None


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts. Counts reported during a stream are cumulative, so merging takes the maximum."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0  # part of completion_tokens
    cache_write_tokens: int = 0  # prompt tokens written to the provider's prompt cache

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def merge(self, other: Usage) -> Usage:
        return Usage(
            prompt_tokens=max(self.prompt_tokens, other.prompt_tokens),
            completion_tokens=max(self.completion_tokens, other.completion_tokens),
            cached_tokens=max(self.cached_tokens, other.cached_tokens),
            reasoning_tokens=max(self.reasoning_tokens, other.reasoning_tokens),
            cache_write_tokens=max(self.cache_write_tokens, other.cache_write_tokens),
        )


@dataclass(frozen=True, slots=True)
class Price:
    """US dollars per million tokens. Reasoning tokens are output tokens; prompt tokens written to
    the provider's cache cost `cache_write_per_million` when set (Anthropic: 1.25 x input)."""

    input_per_million: float = 0.0
    output_per_million: float = 0.0
    cache_write_per_million: float | None = None

    def cost(self, usage: Usage) -> float:
        write = (
            self.input_per_million if self.cache_write_per_million is None else self.cache_write_per_million
        )
        return (
            usage.prompt_tokens * self.input_per_million
            + usage.cache_write_tokens * (write - self.input_per_million)
            + usage.completion_tokens * self.output_per_million
        ) / 1_000_000


@dataclass(frozen=True, slots=True)
class Target:
    """The deployment a route layer picked for one attempt."""

    route: str
    deployment: str
    provider: str
    model: str
    price: Price


@dataclass(frozen=True, slots=True)
class ToolCallDelta:
    """A piece of a streamed tool call: id and name on its first piece, argument text after."""

    index: int
    id: str = ""
    name: str = ""
    arguments: str = ""


@dataclass(frozen=True, slots=True)
class Chunk:
    """A piece of a generation. The last chunk of a successful stream carries finish and usage."""

    text: str = ""
    finish_reason: FinishReason | None = None
    usage: Usage | None = None
    tool_calls: tuple[ToolCallDelta, ...] = ()
    thinking: str = ""  # a piece of thinking text (streamed to a caller that asked for it)
    thinking_blocks: tuple[ThinkingBlock, ...] = ()  # signed blocks completed by this chunk

    @property
    def is_final(self) -> bool:
        return self.finish_reason is not None

    @property
    def output(self) -> str:
        """What the model generated here and the upstream bills as output: thinking, text and tool
        calls' names and arguments (the route's count of a stream cut short and the quota meter both
        count this; text alone counted a tool call or a thought as nothing)."""
        if not self.thinking and not self.tool_calls:
            return self.text
        calls = "".join(d.name + d.arguments for d in self.tool_calls)
        return self.thinking + self.text + calls


@dataclass(frozen=True, slots=True)
class Attempt:
    deployment: str
    provider: str
    outcome: str
    seconds: float
    hedge: bool = False  # started as a hedge, racing the attempt before it (not a retry or fallback)


@dataclass(frozen=True, slots=True)
class KeyRef:
    """A user key reference from RegisterKey."""

    ref: str


@dataclass(frozen=True, slots=True)
class InlineEnvelope:
    """A user key envelope the application keeps itself (`sidecar keys encrypt`)."""

    text: str

    def __repr__(self) -> str:
        return f"InlineEnvelope(<{len(self.text)} chars>)"


KeySource = KeyRef | InlineEnvelope


class Secret(Protocol):
    """A plaintext secret that shows itself only when asked; its repr never does."""

    def reveal(self) -> str: ...


@dataclass(frozen=True, slots=True)
class Credentials:
    """What the transport carried to identify the caller; verified by the authn layer."""

    bearer_token: str | None = None

    def __repr__(self) -> str:
        return f"Credentials(bearer_token={'<set>' if self.bearer_token else None})"


@dataclass(frozen=True, slots=True)
class Call:
    """One generation request as it flows through the pipeline."""

    request_id: str
    model: str
    messages: tuple[Message, ...]
    params: GenerationParams
    tenant_id: str
    user_id: str
    conversation_id: str
    metadata: Mapping[str, str]
    stream: bool
    deadline: Deadline
    credentials: Credentials
    record: Outcome  # what the call did: reported by the layers, sealed by the observe layer
    target: Target | None = None
    key_source: KeySource | None = None  # the caller's own provider key, if it brought one
    api_key: Secret | None = None  # resolved per attempt by the key layer; None = platform key
    tier: str = ""  # the caller's tier, resolved at the edge (sidecar/config/tiers.py)
    persona_id: str = ""  # the persona the request names for this call only ("" = the conversation's)
    memory: bool | None = None  # keep/use the conversation's history; None = the configured default
    cache_bypass: bool = False  # the caller asked the response cache to stay out of this call
    budget_deployment: str = ""  # set by the quota layer: only this (cheaper) deployment fits the budget
    cache_only: bool = False  # set by the quota layer: its estimate did not fit, only a cache hit may answer
    plan: CallPlan | None = None  # set once by the resolve step (sidecar/pipeline/resolve.py)
    priority: Priority = Priority.NORMAL  # the caller's (input.priority or metadata), capped by its tier
    experiment_variant: str = ""  # the variant the request asks for (testing); "" = the sticky one
    audience_layer: str = "public"  # the caller's layer with an agent: public, friends or intimate
    caller: str = ""  # the name of the credential that authenticated the call ("anonymous" with none)
