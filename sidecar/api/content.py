"""Messages at the edge: text, thinking, tool-call and image parts, tool results tied to their calls."""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from sidecar._gen.orchestrator.v1 import generate_pb2 as gen
from sidecar.api.tools import TOOL_NAME
from sidecar.config.schema import RequestLimits
from sidecar.core.image_header import Header, read_header
from sidecar.core.types import Image, Message, Role, ThinkingBlock, ToolCall

MAX_CONTENT_PARTS = 64
MAX_IMAGES = 20  # per request
MAX_IMAGE_BYTES = 5 * 1024 * 1024  # per inline image (Anthropic's own limit)
MAX_URL_CHARS = 8192
MAX_CALL_ID = 128
MAX_ARGUMENTS_CHARS = 256 * 1024
IMAGE_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp")
_DATA_URL_HEADS = frozenset(f"data:{t};base64" for t in IMAGE_TYPES)
_NAME = re.compile(r"[A-Za-z0-9_\-]{1,64}")
_LEADING_ROLES = (gen.ROLE_SYSTEM, gen.ROLE_TOOL)
_ROLES = {
    gen.ROLE_SYSTEM: Role.SYSTEM,
    gen.ROLE_USER: Role.USER,
    gen.ROLE_ASSISTANT: Role.ASSISTANT,
    gen.ROLE_TOOL: Role.TOOL,
}


class _Bad(Protocol):
    """What the Violations collector offers (sidecar.api.convert.Violations)."""

    def add(self, field: str, description: str) -> None: ...


def messages(
    wire: Sequence[gen.Message], limits: RequestLimits, bad: _Bad, *, remembered: bool = False
) -> tuple[Message, ...]:
    """The request's messages. With `remembered` (a conversation id: memory may hold the calls),
    tool results before the request's first user or assistant message may answer a call of the
    stored history; the resolve step checks them once the history is known."""
    if not wire:
        bad.add("messages", "at least one message is required")
    elif len(wire) > limits.max_messages:
        bad.add("messages", f"at most {limits.max_messages} messages")
        return ()
    out: list[Message] = []
    total = images = 0
    calls: set[str] = set()
    pending: dict[str, int] = {}  # the last assistant message's calls not answered yet: where it is
    leading = remembered  # every message so far is a system message or a tool result
    for i, m in enumerate(wire):
        message = _message(m, f"messages[{i}]", limits, calls, bad, leading=leading)
        leading = leading and m.role in _LEADING_ROLES
        if message is None:
            continue
        pending = _answered(pending, message, i, bad, earlier=calls, leading=leading)
        total += len(message.text)
        images += len(message.images)
        calls.update(c.id for c in message.tool_calls)
        out.append(message)
    if total > limits.max_total_chars:
        bad.add("messages", f"together longer than {limits.max_total_chars} characters")
    if images > MAX_IMAGES:
        bad.add("messages", f"at most {MAX_IMAGES} images in a request")
    if wire and all(m.role == gen.ROLE_SYSTEM for m in wire):
        bad.add("messages", "at least one message must be from the user or the assistant")
    return tuple(out)


def _answered(
    pending: dict[str, int], message: Message, i: int, bad: _Bad, *, earlier: set[str], leading: bool
) -> dict[str, int]:
    """The calls still waiting for their results after messages[i]. An assistant's tool calls are
    answered by tool results before the next user, assistant or system message: every provider
    refuses a history with a call left unanswered in between (a call of the last message may still
    wait: its results come in a later request), or a result that is not right after its call's
    message (a call of an earlier assistant message, one answered already). Results leading a
    conversation's request answer the stored history's calls: the resolve step checks them."""
    if message.role is Role.TOOL:
        call_id = message.tool_call_id
        if call_id not in pending and call_id in earlier and not leading:  # (unknown: _message says)
            bad.add(
                f"messages[{i}].tool_call_id",
                "answers a call already answered or of an earlier assistant message: each result "
                "comes once, after the assistant message that made the call, before any other",
            )
        return {k: v for k, v in pending.items() if k != call_id}
    for call_id, at in pending.items():
        bad.add(f"messages[{at}]", f"tool call {call_id!r} has no tool result before messages[{i}]")
    return {c.id: i for c in message.tool_calls} if message.role is Role.ASSISTANT else {}


def _message(
    m: gen.Message, where: str, limits: RequestLimits, calls: set[str], bad: _Bad, *, leading: bool
) -> Message | None:
    role = _ROLES.get(m.role)
    if role is None:
        bad.add(f"{where}.role", "must be ROLE_SYSTEM, ROLE_USER, ROLE_ASSISTANT or ROLE_TOOL")
    if m.name and not _NAME.fullmatch(m.name):
        bad.add(f"{where}.name", "at most 64 of letters, digits, _ and -")
    if role is Role.TOOL:
        if not m.tool_call_id:
            bad.add(f"{where}.tool_call_id", "a tool result needs the id of the call it answers")
        elif m.tool_call_id not in calls and not leading:
            bad.add(f"{where}.tool_call_id", "answers no tool call of an earlier assistant message")
    elif m.tool_call_id:
        bad.add(f"{where}.tool_call_id", "only ROLE_TOOL messages answer a tool call")
    parts = _parts(m.content, where, role, bad, limits.max_message_chars)
    text = "".join(parts.texts)
    if role is Role.USER and not parts.images and text and not text.strip():
        _blank(m.content, where, bad)
    if len(text) > limits.max_message_chars:
        bad.add(f"{where}.content", f"longer than {limits.max_message_chars} characters")
    if role is None:
        return None
    return Message(
        role, text, m.name, tuple(parts.calls), m.tool_call_id, tuple(parts.images), tuple(parts.thinking)
    )


def _blank(parts: Sequence[gen.ContentPart], where: str, bad: _Bad) -> None:
    """A user message of whitespace alone: nothing to ask, and Anthropic and Bedrock refuse it
    ("text content blocks must contain non-whitespace text"); refused here for every route, before
    anything is reserved or sent. (Whitespace beside an image, or in an assistant message or a tool
    result, is taken: the adapters leave out what their provider refuses.)"""
    for j, part in enumerate(parts):
        if part.WhichOneof("kind") == "text" and part.text:
            bad.add(f"{where}.content[{j}].text", "must contain non-whitespace text")


@dataclass
class _Parts:
    texts: list[str] = field(default_factory=list)
    calls: list[ToolCall] = field(default_factory=list)
    images: list[Image] = field(default_factory=list)
    thinking: list[ThinkingBlock] = field(default_factory=list)


def _parts(
    parts: Sequence[gen.ContentPart], where: str, role: Role | None, bad: _Bad, max_chars: int
) -> _Parts:
    out = _Parts()
    if not parts:
        bad.add(f"{where}.content", "at least one content part is required")
    if len(parts) > MAX_CONTENT_PARTS:
        bad.add(f"{where}.content", f"at most {MAX_CONTENT_PARTS} content parts")
        return out
    for j, part in enumerate(parts):
        at = f"{where}.content[{j}]"
        kind = part.WhichOneof("kind")
        if kind == "text":
            if not part.text:
                bad.add(f"{at}.text", "must not be empty")
            out.texts.append(part.text)
        elif kind == "tool_call":
            if role is not Role.ASSISTANT:
                bad.add(f"{at}.tool_call", "tool calls belong in assistant messages")
            out.calls.append(_tool_call(part.tool_call, f"{at}.tool_call", bad))
        elif kind == "image":
            if role is not Role.USER:
                bad.add(f"{at}.image", "images belong in user messages")
            out.images.append(_image(part.image, f"{at}.image", bad))
        elif kind == "thinking":
            if role is not Role.ASSISTANT:
                bad.add(f"{at}.thinking", "thinking belongs in assistant messages")
            out.thinking.append(_thinking(part.thinking, f"{at}.thinking", bad, max_chars))
        else:
            bad.add(at, "a content part must set text, tool_call, image or thinking")
    return out


def _thinking(block: gen.ThinkingBlock, at: str, bad: _Bad, max_chars: int) -> ThinkingBlock:
    """A thinking block as an answer returned it: signed text, or redacted data (never both)."""
    if block.redacted_data and (block.thinking or block.signature):
        bad.add(at, "a redacted block carries only redacted_data")
    elif not (block.redacted_data or block.signature):
        bad.add(f"{at}.signature", "required: send the block back as the answer returned it")
    if len(block.thinking) + len(block.signature) + len(block.redacted_data) > max_chars:
        bad.add(at, f"longer than {max_chars} characters")
    return ThinkingBlock(text=block.thinking, signature=block.signature, redacted=block.redacted_data)


def _tool_call(call: gen.ToolCall, at: str, bad: _Bad) -> ToolCall:
    if not 1 <= len(call.id) <= MAX_CALL_ID:
        bad.add(f"{at}.id", f"1 to {MAX_CALL_ID} characters")
    if not TOOL_NAME.fullmatch(call.name):
        bad.add(f"{at}.name", "1 to 64 of letters, digits, _ and - (^[a-zA-Z0-9_-]{1,64}$)")
    arguments = call.arguments or "{}"
    if len(arguments) > MAX_ARGUMENTS_CHARS or _too_deep(arguments):
        bad.add(
            f"{at}.arguments",
            f"at most {MAX_ARGUMENTS_CHARS} characters, nested within the JSON parser's depth",
        )
    return ToolCall(call.id, call.name, arguments)


def _too_deep(arguments: str) -> bool:
    """Nested deeper than the JSON parser's stack (no wire could read it back to send it).

    Anything else is taken as a model may have written it: a JSON object, or text that is not one
    (malformed, cut by max_tokens, an array), which conversation memory keeps too and the wires send
    back as an object holding the text (sidecar/providers/tool_arguments.py)."""
    try:
        json.loads(arguments)
    except RecursionError:
        return True
    except ValueError:
        return False
    return False


def _data_url(url: str) -> bytes | None:
    """The bytes of a data: URL every provider takes: one of IMAGE_TYPES, base64 (what OpenAI,
    Anthropic and Bedrock accept; Bedrock gets the bytes, which it needs as base64 anyway); None
    for any other."""
    head, _, payload = url.partition(",")
    if head not in _DATA_URL_HEADS:
        return None
    try:
        return base64.b64decode(payload, validate=True) or None
    except binascii.Error:
        return None


def _as_declared(
    data: bytes, mime_type: str, image: gen.Image, at: str, bad: _Bad, *, data_field: str, type_field: str
) -> None:
    """The bytes are the declared type (every provider refuses one that is not, after the call was
    reserved and sent), and of the declared size when the caller gave one and the header holds it
    (the image's tokens are counted by it, and the capability fit its pixels). For inline bytes and
    a data: URL's alike (`data_field`, `type_field`: what a refusal names)."""
    header = read_header(data)
    if header is None:
        bad.add(f"{at}.{data_field}", "not a PNG, JPEG, GIF or WebP image (by its first bytes)")
    elif header.mime_type != mime_type:
        bad.add(f"{at}.{type_field}", f"the data is {header.mime_type}, not {mime_type}")
    elif header.width and header.height and not _turned(image, header):
        size = f"the image is {header.width} x {header.height} pixels (or leave width and height 0)"
        if image.width not in (0, header.width):
            bad.add(f"{at}.width", size)
        if image.height not in (0, header.height):
            bad.add(f"{at}.height", size)


def _turned(image: gen.Image, header: Header) -> bool:
    """The size given is the header's turned a quarter, as a viewer shows a JPEG by its EXIF
    orientation (every provider's image-token rule counts both alike)."""
    return (image.width, image.height) == (header.height, header.width)


def _image(image: gen.Image, at: str, bad: _Bad) -> Image:
    kind = image.WhichOneof("source")
    for side in ("width", "height"):
        if not 0 <= getattr(image, side) <= 100_000:
            bad.add(f"{at}.{side}", "width and height between 0 (unknown) and 100000 pixels")
    if kind == "url":
        url = image.url
        if len(url) > MAX_URL_CHARS or not (url.startswith("https://") or url.startswith("data:image/")):
            bad.add(f"{at}.url", f"an https:// or data:image/ URL of at most {MAX_URL_CHARS} characters")
        elif url.startswith("data:"):
            if (data := _data_url(url)) is None:
                bad.add(
                    f"{at}.url",
                    f"a data: URL of base64 {', '.join(IMAGE_TYPES)} (data:image/png;base64,...)",
                )
            else:
                mime_type = url[5:].partition(";")[0]
                _as_declared(data, mime_type, image, at, bad, data_field="url", type_field="url")
        return Image(url=url, width=image.width, height=image.height)
    if kind == "data":
        if not 0 < len(image.data) <= MAX_IMAGE_BYTES:
            bad.add(f"{at}.data", f"1 to {MAX_IMAGE_BYTES} bytes")
        if image.mime_type not in IMAGE_TYPES:
            bad.add(f"{at}.mime_type", f"one of {', '.join(IMAGE_TYPES)}")
        elif image.data:
            _as_declared(
                image.data, image.mime_type, image, at, bad, data_field="data", type_field="mime_type"
            )
        return Image(data=image.data, mime_type=image.mime_type, width=image.width, height=image.height)
    bad.add(at, "set url or data")
    return Image()
