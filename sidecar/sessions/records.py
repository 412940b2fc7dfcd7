"""What conversation memory keeps of a message, and the versioned record a shared store writes.

Memory keeps the whole exchange: text, name, an assistant message's tool calls (id, name,
arguments) and signed thinking blocks (text and signature, or redacted data: the provider wants
them back unchanged), the id of the call a tool result answers, and images by reference (URL, MIME
type, size). Inline image bytes (and data: URLs) are never stored: `storable` replaces each inline
image with a line of text in its message,
`[image/png image of 12,345 bytes, not kept in conversation memory]`, so a replayed history says
an image was there without carrying (or re-billing) its bytes, and the history of a conversation
stays small. Both stores (memory and Redis) are given what `storable`
returns, so they replay the same messages.

Record format (JSON, one per message; keys left out when empty):
- version 1 (before tool calls were stored): `{"r": role, "t": text, "n": name}`;
- version 2: `{"v": 2, "r", "t", "n", "tc": [{"i": id, "n": name, "a": arguments}], "ti": tool
  call id, "im": [{"u": url, "m": mime type, "w": width, "h": height}], "th": [{"t": thinking
  text, "s": signature} or {"rd": redacted data}]}` ("th" added without a version change: an older
  sidecar replays such a message without its thinking, as it did before).
A record without "v" is version 1. A record of a later version is read for the keys this version
knows (a newer sidecar's record during a rolling upgrade is replayed as well as this one can).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from typing import Any

from sidecar.core.types import Image, Message, Role, ThinkingBlock, ToolCall

VERSION = 2


def storable(message: Message) -> Message:
    """The message as memory keeps it: inline image bytes (`data`, or a data: URL) become a line of
    text."""
    inline = [i for i in message.images if _inline(i)]
    if not inline:
        return message
    notes = [f"[{_describe(i)}, not kept in conversation memory]" for i in inline]
    text = "\n".join(filter(None, (message.text, *notes)))
    return dataclasses.replace(message, text=text, images=tuple(i for i in message.images if not _inline(i)))


def _inline(image: Image) -> bool:
    return bool(image.data) or image.url.startswith("data:")


def _describe(image: Image) -> str:
    if image.data:
        return f"{image.mime_type or 'an'} image of {len(image.data):,} bytes"
    mime = image.url[5:].split(";", 1)[0].split(",", 1)[0]
    return f"{mime or 'an'} image of {len(image.url):,} characters"


def replayable(history: Sequence[Message], after: Sequence[Message]) -> tuple[Message, ...]:
    """The history as it is put before a call's messages (`after`): each assistant message keeps only
    the tool calls answered by the tool results right after it (for the history's newest, the results
    `after` starts with). A call the application never answered (it moved on with a new question,
    or sent one result of two parallel calls) would otherwise be replayed on every later turn, a
    prompt OpenAI and Anthropic refuse; a message left with no text and no call is not replayed."""
    out: list[Message] = []
    for i, m in enumerate(history):
        if not m.tool_calls:
            out.append(m)
            continue
        answered = {r.tool_call_id for r in _results_after([*history[i + 1 :], *after])}
        calls = tuple(c for c in m.tool_calls if c.id in answered)
        if calls != m.tool_calls:
            m = dataclasses.replace(m, tool_calls=calls)
        if m.text or m.tool_calls or m.images:
            out.append(m)
    return tuple(out)


def _results_after(messages: Sequence[Message]) -> list[Message]:
    """The run of tool results a sequence starts with."""
    run: list[Message] = []
    for m in messages:
        if m.role is not Role.TOOL:
            break
        run.append(m)
    return run


def encode(message: Message) -> str:
    """The record of a `storable` message (its inline images are refused, not silently dropped)."""
    if any(i.data for i in message.images):
        raise ValueError("inline image bytes are not stored: pass the message through storable() first")
    record: dict[str, Any] = {"v": VERSION, "r": message.role.value, "t": message.text}
    if message.name:
        record["n"] = message.name
    if message.tool_calls:
        record["tc"] = [{"i": c.id, "n": c.name, "a": c.arguments} for c in message.tool_calls]
    if message.tool_call_id:
        record["ti"] = message.tool_call_id
    if message.images:
        record["im"] = [_image(i) for i in message.images]
    if message.thinking:
        record["th"] = [
            {"rd": b.redacted} if b.redacted else {"t": b.text, "s": b.signature} for b in message.thinking
        ]
    return json.dumps(record, ensure_ascii=False)


def decode(raw: bytes | str) -> Message:
    """A message from a record of any version."""
    d = json.loads(raw)
    return Message(
        Role(d["r"]),
        str(d.get("t", "")),
        str(d.get("n", "")),
        tool_calls=tuple(ToolCall(str(c["i"]), str(c["n"]), str(c["a"])) for c in d.get("tc", ())),
        tool_call_id=str(d.get("ti", "")),
        images=tuple(
            Image(
                url=str(i.get("u", "")),
                mime_type=str(i.get("m", "")),
                width=int(i.get("w", 0)),
                height=int(i.get("h", 0)),
            )
            for i in d.get("im", ())
        ),
        thinking=tuple(
            ThinkingBlock(
                text=str(b.get("t", "")), signature=str(b.get("s", "")), redacted=str(b.get("rd", ""))
            )
            for b in d.get("th", ())
        ),
    )


def decode_history(raw: Sequence[bytes | str]) -> tuple[list[Message], int]:
    """The messages of a stored history, oldest first, and how many records were left out. A record
    this version cannot read (a role a newer sidecar wrote, a damaged one) is not replayed, nor is
    anything before it: the history then starts after it, so no tool result is kept whose call was
    in the record left out."""
    messages: list[Message] = []
    skipped = 0
    for i, record in enumerate(raw):
        try:
            messages.append(decode(record))
        except (ValueError, KeyError, TypeError, AttributeError):  # JSON, a role, a field's shape
            skipped, messages = i + 1, []
    return messages, skipped


def _image(image: Image) -> dict[str, Any]:
    out: dict[str, Any] = {"u": image.url}
    if image.mime_type:
        out["m"] = image.mime_type
    if image.width and image.height:
        out["w"], out["h"] = image.width, image.height
    return out
