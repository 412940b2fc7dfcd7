"""What an image's bytes say they are: the type by its signature, and its size in pixels from its
header (PNG IHDR, GIF logical screen, WebP VP8/VP8L/VP8X, JPEG start-of-frame), read within the
bytes given, never decoding the picture. The edge checks a caller's `mime_type`, `width` and
`height` against them: each provider refuses an image whose type is not the declared one, and the
size is what the image's tokens are counted by; the capability fit checks it against each
deployment's limit on an image's side. Bounded: at most HEAD_BYTES are worth giving it, and a JPEG's
markers are walked at most MAX_MARKERS at a time (a hostile file of 2-byte markers costs a step each)."""

from __future__ import annotations

from dataclasses import dataclass

_JPEG_FRAMES = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}  # SOFn; not DHT, JPG, DAC
HEAD_BYTES = 256 * 1024  # a JPEG's frame header may follow EXIF and ICC segments (64 KiB each)
MAX_MARKERS = 256  # fill bytes counted: a real file's frame header comes after a few dozen at most


@dataclass(frozen=True, slots=True)
class Header:
    mime_type: str
    width: int = 0  # 0: not read (a header cut short, an unusual layout)
    height: int = 0


def read_header(data: bytes) -> Header | None:
    """The type and (when its header holds it) size of an image; None for bytes that are none of
    PNG, JPEG, GIF or WebP."""
    if data.startswith(b"\x89PNG"):
        if len(data) >= 24 and data[12:16] == b"IHDR":
            return Header("image/png", _be(data[16:20]), _be(data[20:24]))
        return Header("image/png")
    if data.startswith(b"\xff\xd8\xff"):
        return _jpeg(data)
    if data.startswith((b"GIF87a", b"GIF89a")):
        if len(data) >= 10:
            return Header("image/gif", _le(data[6:8]), _le(data[8:10]))
        return Header("image/gif")
    if data.startswith(b"RIFF") and data[8:12] == b"WEBP":
        return _webp(data)
    return None


def _be(raw: bytes) -> int:
    return int.from_bytes(raw, "big")


def _le(raw: bytes) -> int:
    return int.from_bytes(raw, "little")


def _webp(data: bytes) -> Header:
    chunk = data[12:16]
    if chunk == b"VP8X" and len(data) >= 30:
        return Header("image/webp", _le(data[24:27]) + 1, _le(data[27:30]) + 1)
    if chunk == b"VP8L" and len(data) >= 25 and data[20] == 0x2F:
        bits = _le(data[21:25])
        return Header("image/webp", (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1)
    if chunk == b"VP8 " and len(data) >= 30 and data[23:26] == b"\x9d\x01\x2a":
        return Header("image/webp", _le(data[26:28]) & 0x3FFF, _le(data[28:30]) & 0x3FFF)
    return Header("image/webp")


def _jpeg(data: bytes) -> Header:
    """The size in the first start-of-frame segment, walking the markers before it."""
    at, end = 2, min(len(data), HEAD_BYTES)
    for _ in range(MAX_MARKERS):
        if at + 4 > end:
            break
        if data[at] != 0xFF:
            break
        marker = data[at + 1]
        if marker == 0xFF:  # fill byte
            at += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD8)):  # markers without a length
            at += 2
            continue
        length = _be(data[at + 2 : at + 4])
        if marker in _JPEG_FRAMES and at + 9 <= len(data):
            return Header("image/jpeg", _be(data[at + 7 : at + 9]), _be(data[at + 5 : at + 7]))
        if length < 2 or marker == 0xDA:  # start of scan before any frame: not a layout we read
            break
        at += 2 + length
    return Header("image/jpeg")
