"""An image's width and height from the first bytes of its file: PNG, GIF, WebP and JPEG (the
formats the edge admits), for the capability fit's limit on an image's side. Pure, bounded: only
the head given is read, and anything it cannot read is unknown (0, 0), never an error."""

from __future__ import annotations

import struct

HEAD_BYTES = 256 * 1024  # a JPEG's frame header may follow EXIF and ICC segments (64 KiB each)
_PNG = b"\x89PNG\r\n\x1a\n"
_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}  # start-of-frame markers (not DHT, JPG, DAC)
MAX_MARKERS = 256  # fill bytes counted: a real file's frame header comes after a few dozen at most
_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})  # TEM and RSTn carry no length


def dimensions(head: bytes) -> tuple[int, int]:
    """(width, height) in pixels from an image file's first bytes; (0, 0) when they do not say."""
    if head.startswith(_PNG) and head[12:16] == b"IHDR" and len(head) >= 24:
        width, height = struct.unpack(">II", head[16:24])
        return width, height
    if head[:6] in (b"GIF87a", b"GIF89a") and len(head) >= 10:
        width, height = struct.unpack("<HH", head[6:10])
        return width, height
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return _webp(head)
    if head[:2] == b"\xff\xd8":
        return _jpeg(head)
    return 0, 0


def _webp(head: bytes) -> tuple[int, int]:
    kind = head[12:16]
    if kind == b"VP8 " and len(head) >= 30 and head[23:26] == b"\x9d\x01\x2a":
        w, h = struct.unpack("<HH", head[26:30])
        return w & 0x3FFF, h & 0x3FFF
    if kind == b"VP8L" and len(head) >= 25 and head[20] == 0x2F:
        bits = int.from_bytes(head[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if kind == b"VP8X" and len(head) >= 30:
        return int.from_bytes(head[24:27], "little") + 1, int.from_bytes(head[27:30], "little") + 1
    return 0, 0


def _jpeg(head: bytes) -> tuple[int, int]:
    """The frame header's size, walking at most MAX_MARKERS markers: a real file's frame header
    follows a few segments; a hostile one of 2-byte markers would cost a step each, for every
    deployment the fit asks about."""
    i = 2
    for _ in range(MAX_MARKERS):
        if i + 4 > len(head):
            return 0, 0
        if head[i] != 0xFF:
            return 0, 0
        marker = head[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in _STANDALONE:
            i += 2
            continue
        if marker in _SOF:
            if i + 9 > len(head):
                return 0, 0
            h, w = struct.unpack(">HH", head[i + 5 : i + 9])
            return w, h
        i += 2 + int.from_bytes(head[i + 2 : i + 4], "big")
    return 0, 0
