"""The test side of AWS's `application/vnd.amazon.eventstream`: frames encoded as a Bedrock server does.

A message is: total length (4 bytes), headers length (4), CRC32 of those 8 bytes, the headers
(name length, name, value type 7 = string, value length, value), the payload, and a CRC32 of
everything before it; all integers big-endian. The sidecar decodes these with botocore's parser.
"""

from __future__ import annotations

import json
import struct
import zlib
from typing import Any

STRING = 7


def header(name: str, value: str) -> bytes:
    raw_name, raw_value = name.encode(), value.encode()
    return (
        struct.pack(">B", len(raw_name)) + raw_name + struct.pack(">BH", STRING, len(raw_value)) + raw_value
    )


def frame(headers: dict[str, str], payload: bytes) -> bytes:
    encoded = b"".join(header(k, v) for k, v in headers.items())
    total = 12 + len(encoded) + len(payload) + 4
    prelude = struct.pack(">II", total, len(encoded))
    prelude += struct.pack(">I", zlib.crc32(prelude))
    message = prelude + encoded + payload
    return message + struct.pack(">I", zlib.crc32(message))


def event(kind: str, body: dict[str, Any]) -> bytes:
    """A ConverseStream event; Bedrock puts a `p` padding field in each payload."""
    headers = {":event-type": kind, ":content-type": "application/json", ":message-type": "event"}
    return frame(headers, json.dumps({**body, "p": "abcdefgh"}, separators=(",", ":")).encode())


def exception(kind: str, message: str) -> bytes:
    return exception_frame(kind, json.dumps({"message": message}).encode())


def exception_frame(kind: str, payload: bytes) -> bytes:
    """An exception frame with any payload, JSON or not."""
    headers = {":exception-type": kind, ":content-type": "application/json", ":message-type": "exception"}
    return frame(headers, payload)


def converse_stream(
    texts: list[str], *, stop: str = "end_turn", usage: dict[str, int] | None = None
) -> list[bytes]:
    """The frames of one ConverseStream answer, one text delta per frame."""
    frames = [event("messageStart", {"role": "assistant"})]
    frames += [event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": t}}) for t in texts]
    frames += [
        event("contentBlockStop", {"contentBlockIndex": 0}),
        event("messageStop", {"stopReason": stop}),
    ]
    counts = usage or {"inputTokens": 12, "outputTokens": 12, "totalTokens": 32, "cacheReadInputTokens": 8}
    frames.append(event("metadata", {"usage": counts, "metrics": {"latencyMs": 388}}))
    return frames


def tool_use_stream(
    text: str,
    calls: list[tuple[str, str, list[str]]],
    *,
    stop: str = "tool_use",
    usage: dict[str, int] | None = None,
) -> list[bytes]:
    """The frames of a ConverseStream answer that calls tools, as Bedrock sends one: a text block
    (index 0), then per call (toolUseId, name, input pieces) a contentBlockStart with `start.toolUse`,
    one contentBlockDelta per piece of its input (partial JSON text), a contentBlockStop; then
    messageStop and, unless `usage` is empty, the metadata event."""
    frames = [event("messageStart", {"role": "assistant"})]
    if text:
        frames += [
            event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": text}}),
            event("contentBlockStop", {"contentBlockIndex": 0}),
        ]
    for n, (call_id, name, pieces) in enumerate(calls, start=1):
        start = {"toolUse": {"toolUseId": call_id, "name": name}}
        frames.append(event("contentBlockStart", {"contentBlockIndex": n, "start": start}))
        frames += [
            event("contentBlockDelta", {"contentBlockIndex": n, "delta": {"toolUse": {"input": piece}}})
            for piece in pieces
        ]
        frames.append(event("contentBlockStop", {"contentBlockIndex": n}))
    frames.append(event("messageStop", {"stopReason": stop}))
    counts = {"inputTokens": 410, "outputTokens": 58, "totalTokens": 468} if usage is None else usage
    if counts:
        frames.append(event("metadata", {"usage": counts, "metrics": {"latencyMs": 912}}))
    return frames


def split_frames(raw: bytes) -> list[bytes]:
    """A recorded transcript -> its messages, by their length prefixes."""
    frames = []
    while raw:
        (total,) = struct.unpack(">I", raw[:4])
        frames.append(raw[:total])
        raw = raw[total:]
    return frames
