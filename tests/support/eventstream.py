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


def split_frames(raw: bytes) -> list[bytes]:
    """A recorded transcript -> its messages, by their length prefixes."""
    frames = []
    while raw:
        (total,) = struct.unpack(">I", raw[:4])
        frames.append(raw[:total])
        raw = raw[total:]
    return frames
