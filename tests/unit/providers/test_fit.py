"""The capability fit: what a deployment cannot take of a call's images, and of a whole request."""

from __future__ import annotations

import base64
import dataclasses
import struct

import pytest

from sidecar.config.schema import DeploymentConfig
from sidecar.core.image_header import MAX_MARKERS, read_header
from sidecar.core.types import GenerationParams, Image, Message, Role
from sidecar.providers import anthropic, bedrock_wire, gemini_wire
from sidecar.providers.base import IMAGE_FORMATS, Capabilities
from sidecar.providers.fit import MESSAGE_BYTES, Misfit, missing, needs, refusal, request_bytes

CAPS = Capabilities(True, True, True, 1000, images=True)
SMALL = dataclasses.replace(CAPS, image_formats=frozenset({"image/png"}), max_image_bytes=10)


def dimensions(head: bytes) -> tuple[int, int]:
    header = read_header(head)
    return (header.width, header.height) if header is not None else (0, 0)


def test_an_images_format_and_size_from_bytes_or_a_data_url() -> None:
    png = base64.b64encode(bytes(11)).decode()
    assert refusal(SMALL, Image(url=f"data:image/png;base64,{png}")) == "11 bytes; it takes at most 10"
    assert refusal(SMALL, Image(data=bytes(10), mime_type="image/png")) == ""
    assert refusal(SMALL, Image(data=bytes(1), mime_type="image/gif")) == "image/gif; it reads image/png"
    assert refusal(SMALL, Image(url="https://example.com/a.gif")) == ""  # not known before it is fetched
    assert refusal(CAPS, Image(data=bytes(5_000_000), mime_type="image/gif")) == ""
    assert CAPS.image_formats == IMAGE_FORMATS


def test_a_misfit_names_features_then_images_and_counts_the_rest() -> None:
    gif = Image(data=bytes(1), mime_type="image/gif")
    messages = (Message(Role.USER, "?", images=(gif, gif, Image(data=bytes(1), mime_type="image/png"), gif)),)
    misfit = missing(dataclasses.replace(SMALL, tools=False), needs_of(messages) | {"tools"}, messages)
    assert str(misfit) == (
        "lacks tools and cannot take image 1 of the prompt (image/gif; it reads image/png), "
        "image 2 of the prompt (image/gif; it reads image/png), 1 more image"
    )
    assert [n for n, _ in misfit.images] == [1, 2, 4]
    assert not missing(CAPS, needs_of(messages), messages) and not Misfit()


def needs_of(messages: tuple[Message, ...]) -> frozenset[str]:
    return needs(GenerationParams(), messages)


def png(width: int, height: int) -> bytes:
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I4sII", 13, b"IHDR", width, height) + bytes(5)


def jpeg(width: int, height: int) -> bytes:
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00" + bytes(9)
    sof0 = b"\xff\xc0" + struct.pack(">HBHH", 17, 8, height, width) + bytes(12)
    return b"\xff\xd8" + app0 + b"\xff\xff" + sof0 + b"\xff\xd9"


def webp(kind: bytes, body: bytes) -> bytes:
    return (
        b"RIFF" + struct.pack("<I", 4 + 8 + len(body)) + b"WEBP" + kind + struct.pack("<I", len(body)) + body
    )


def test_an_images_pixels_from_its_header() -> None:
    vp8 = b"\x00\x00\x00\x9d\x01\x2a" + struct.pack("<HH", 640, 480)
    vp8l = b"\x2f" + ((8999) | (99 << 14)).to_bytes(4, "little")
    vp8x = bytes(4) + (8999).to_bytes(3, "little") + (1).to_bytes(3, "little")
    assert dimensions(png(9000, 20)) == (9000, 20)
    assert dimensions(b"GIF89a" + struct.pack("<HH", 300, 8001)) == (300, 8001)
    assert dimensions(jpeg(8001, 6000)) == (8001, 6000)
    assert dimensions(webp(b"VP8 ", vp8)) == (640, 480)
    assert dimensions(webp(b"VP8L", vp8l)) == (9000, 100)
    assert dimensions(webp(b"VP8X", vp8x)) == (9000, 2)
    for unknown in (b"", b"\x89PNG", png(5, 5)[:20], jpeg(9, 9)[:30], b"\xff\xd8\x00", b"BM" + bytes(40)):
        assert dimensions(unknown) == (0, 0)


def test_a_jpeg_header_is_walked_a_bounded_number_of_markers() -> None:
    """A hostile JPEG of 2-byte markers before its frame header: each was a step of the walk, for
    each image and each deployment the fit asks about (256 KiB read: 131,072 steps)."""
    sof = jpeg(9000, 9000)[2:]
    assert dimensions(b"\xff\xd8" + b"\xff\x01" * (MAX_MARKERS - 4) + sof) == (9000, 9000)
    assert dimensions(b"\xff\xd8" + b"\xff\x01" * MAX_MARKERS + sof) == (0, 0)


ANTHROPIC = anthropic.capabilities(DeploymentConfig(provider="anthropic", model="claude"))
BEDROCK = bedrock_wire.capabilities(DeploymentConfig(provider="bedrock", model="amazon.nova-lite-v1:0"))
GEMINI = gemini_wire.capabilities(DeploymentConfig(provider="gemini", model="gemini-3-flash"))


def test_the_providers_documented_limits() -> None:
    """Anthropic: 32 MB a request, 100 images, 8000 px a side; Converse: 20 images, 8000 px, 3.75
    MB each; Gemini: 100 MB a request (inline data as base64 included). None was in the fit."""
    assert (ANTHROPIC.max_request_bytes, ANTHROPIC.max_images, ANTHROPIC.max_image_side) == (
        32_000_000,
        100,
        8000,
    )
    assert (BEDROCK.max_request_bytes, BEDROCK.max_images, BEDROCK.max_image_side) == (0, 20, 8000)
    assert (GEMINI.max_request_bytes, GEMINI.max_images, GEMINI.max_image_side) == (100_000_000, 0, 0)
    openai = Capabilities.of(DeploymentConfig(provider="openai", model="gpt"), frozenset({"images"}))
    assert (openai.max_request_bytes, openai.max_images, openai.max_image_side) == (0, 0, 0)


def test_an_image_over_a_side_is_refused_where_the_side_is_limited() -> None:
    big = Image(data=png(9000, 20), mime_type="image/png")
    declared = Image(url="https://example.com/a.png", width=100, height=8001)
    as_url = Image(url="data:image/png;base64," + base64.b64encode(jpeg(10, 8001)).decode())
    assert refusal(ANTHROPIC, big) == "9000 x 20 px; it takes at most 8000 px a side"
    assert refusal(BEDROCK, big) == refusal(ANTHROPIC, big)
    assert refusal(GEMINI, big) == ""
    assert refusal(ANTHROPIC, declared) == "100 x 8001 px; it takes at most 8000 px a side"
    assert refusal(ANTHROPIC, as_url) == "10 x 8001 px; it takes at most 8000 px a side"
    assert refusal(ANTHROPIC, Image(data=png(8000, 8000), mime_type="image/png")) == ""


def test_a_request_over_a_deployments_image_count_or_size() -> None:
    one = Image(data=png(10, 10), mime_type="image/png")
    many = (Message(Role.USER, "look", images=(one,) * 20), Message(Role.USER, "and", images=(one,)))
    misfit = missing(BEDROCK, needs_of(many), many)
    assert misfit.limits == ("max_images (21 images; it takes at most 20)",) and not misfit.images
    assert str(misfit) == "is over max_images (21 images; it takes at most 20)"
    assert not missing(BEDROCK, needs_of(many[:1]), many[:1])
    assert not missing(ANTHROPIC, needs_of(many), many)
    small = dataclasses.replace(GEMINI, max_request_bytes=1700)
    inline = (Message(Role.USER, "x" * 100, images=(Image(data=bytes(1200), mime_type="image/png"),)),)
    assert request_bytes(inline, 1700) == 1600 + 100 + MESSAGE_BYTES  # base64: 4 for each 3
    assert missing(small, needs_of(inline), inline).limits == (
        f"max_request_bytes (about {1600 + 100 + MESSAGE_BYTES} bytes; it takes at most 1700)",
    )
    wide = (Message(Role.USER, "\u00e9" * 150, images=(Image(data=bytes(1200), mime_type="image/png"),)),)
    assert request_bytes(wide, 1700) == 1600 + 300 + MESSAGE_BYTES  # UTF-8 measured near the limit
    assert not missing(dataclasses.replace(small, max_request_bytes=0), needs_of(inline), inline)


def test_a_deployment_sets_its_own_limits() -> None:
    own = {"max_request_bytes": 20_971_520, "max_images": 0}
    gemini = gemini_wire.capabilities(DeploymentConfig(provider="gemini", model="g", capabilities=own))
    assert (gemini.max_request_bytes, gemini.max_images) == (20_971_520, 0)
    bedrock = bedrock_wire.capabilities(
        DeploymentConfig(provider="bedrock", model="m", capabilities={"max_images": 0})
    )
    assert bedrock.max_images == 0 and bedrock.max_image_side == 8000


def test_anthropic_takes_2000_px_a_side_in_a_request_of_more_than_20_images() -> None:
    """Anthropic's documented rule (an image over it is refused, 400): reachable with memory, as the
    edge takes 20 images a request."""
    wide = Image(data=png(2400, 1000), mime_type="image/png")
    small = Image(data=png(100, 100), mime_type="image/png")
    twenty = (Message(Role.USER, "look", images=(wide,) + (small,) * 19),)
    assert not missing(ANTHROPIC, needs_of(twenty), twenty)
    more = (*twenty, Message(Role.USER, "and", images=(small,)))
    assert missing(ANTHROPIC, needs_of(more), more).images == (
        (1, "2400 x 1000 px; it takes at most 2000 px a side"),
    )
    assert not missing(BEDROCK, needs_of(twenty), twenty)  # Converse: 8000 px whatever the count


def test_a_data_urls_size_is_counted_not_decoded(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fit asks for every image of every call on every deployment of the route; it decoded each
    data: URL whole (20 images of 5 MiB: a second of CPU for each deployment, on the event loop).
    Only an image's header is decoded now (for its pixels)."""
    from sidecar.providers import fit

    decoded: list[int] = []

    def b64decode(data: str, validate: bool = False) -> bytes:
        decoded.append(len(data))
        return base64.b64decode(data, validate=validate)

    monkeypatch.setattr(fit, "b64decode", b64decode)
    payload = base64.b64encode(png(100, 100) + bytes(3_000_000)).decode()
    image = Image(url=f"data:image/png;base64,{payload}")
    assert refusal(ANTHROPIC, image) == ""
    assert refusal(dataclasses.replace(ANTHROPIC, max_image_bytes=10), image) == (
        f"{len(png(100, 100)) + 3_000_000} bytes; it takes at most 10"
    )
    assert max(decoded) <= 4 * 256 * 1024 // 3 + 4
