"""An image's type and size read from its first bytes (sidecar/api/image_header.py), and the edge's
check of a caller's mime_type, width and height against them: a provider refuses an image that is
not the type declared, after the call was reserved and sent; a size that lies miscounts its tokens."""

from __future__ import annotations

import base64
import struct
import zlib
from typing import Any

import pytest

from sidecar._gen.orchestrator.v1 import generate_pb2 as gen
from sidecar.api.convert import credentials_from, to_call
from sidecar.config.schema import RequestLimits
from sidecar.core.clock import Deadline, FakeClock
from sidecar.core.errors import InvalidRequestError
from sidecar.core.image_header import Header, read_header
from sidecar.core.outcome import Outcome
from tests.unit.api.test_convert import TIERS

PNG_1X1 = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)
GIF_3X2 = (
    b"GIF89a\x03\x00\x02\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff"
    b",\x00\x00\x00\x00\x03\x00\x02\x00\x00\x02\x02D\x01\x00;"
)
# A JPEG's markers: SOI, an APP0 (JFIF) segment, then SOF0 with height 480 and width 640.
JPEG_640X480 = (
    b"\xff\xd8"
    + b"\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    + b"\xff\xc0\x00\x11\x08\x01\xe0\x02\x80\x03\x01\x22\x00\x02\x11\x01\x03\x11\x01"
    + b"\xff\xd9"
)


def png(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    rows = b"".join(b"\0" + b"\x80" * width for _ in range(height))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def webp_vp8x(width: int, height: int) -> bytes:
    body = b"VP8X" + struct.pack("<I", 10) + b"\0\0\0\0" + (width - 1).to_bytes(3, "little")
    body += (height - 1).to_bytes(3, "little")
    return b"RIFF" + struct.pack("<I", len(body) + 4) + b"WEBP" + body


def webp_vp8l(width: int, height: int) -> bytes:
    bits = (width - 1) | ((height - 1) << 14)
    body = b"VP8L" + struct.pack("<I", 5) + b"\x2f" + struct.pack("<I", bits)
    return b"RIFF" + struct.pack("<I", len(body) + 4) + b"WEBP" + body


@pytest.mark.parametrize(
    ("data", "header"),
    [
        (PNG_1X1, Header("image/png", 1, 1)),
        (png(300, 17), Header("image/png", 300, 17)),
        (GIF_3X2, Header("image/gif", 3, 2)),
        (JPEG_640X480, Header("image/jpeg", 640, 480)),
        (webp_vp8x(1000, 20), Header("image/webp", 1000, 20)),
        (webp_vp8l(64, 48), Header("image/webp", 64, 48)),
        (b"\x89PNG\r\n\x1a\nfake", Header("image/png")),  # a header cut short: the size is unknown
        (b"\xff\xd8\xff", Header("image/jpeg")),
        (b"hello", None),
        (b"<svg xmlns='http://www.w3.org/2000/svg'/>", None),
        (bytes(100), None),
    ],
)
def test_the_type_and_size_are_read_from_the_header(data: bytes, header: Header | None) -> None:
    assert read_header(data) == header


def request(data: bytes, mime: str, width: int = 0, height: int = 0) -> gen.GenerationInput:
    image = gen.Image(data=data, mime_type=mime, width=width, height=height)
    parts = [gen.ContentPart(text="what is this?"), gen.ContentPart(image=image)]
    return gen.GenerationInput(messages=[gen.Message(role=gen.ROLE_USER, content=parts)])


AT = "input.messages[0].content[1].image"


def convert(req: gen.GenerationInput) -> Any:
    return to_call(
        req,
        stream=False,
        limits=RequestLimits(),
        deadline=Deadline(None, FakeClock()),
        credentials=credentials_from(None),
        record=Outcome(started_at=0.0),
        tiers=TIERS,
    )


@pytest.mark.parametrize(
    ("data", "mime", "size", "field", "says"),
    [
        (GIF_3X2, "image/png", (0, 0), "mime_type", "the data is image/gif"),
        (PNG_1X1, "image/jpeg", (0, 0), "mime_type", "the data is image/png"),
        (JPEG_640X480, "image/webp", (0, 0), "mime_type", "the data is image/jpeg"),
        (b"hello there", "image/png", (0, 0), "data", "not a PNG, JPEG, GIF or WebP image"),
        (bytes(100), "image/png", (0, 0), "data", "not a PNG, JPEG, GIF or WebP image"),
        (png(300, 17), "image/png", (1, 1), "width", "the image is 300 x 17"),
        (JPEG_640X480, "image/jpeg", (640, 48), "height", "the image is 640 x 480"),
    ],
    ids=["gif as png", "png as jpeg", "jpeg as webp", "text", "zeros", "width lies", "height lies"],
)
def test_an_image_that_is_not_what_the_caller_says_is_refused_naming_the_field(
    data: bytes, mime: str, size: tuple[int, int], field: str, says: str
) -> None:
    with pytest.raises(InvalidRequestError) as info:
        convert(request(data, mime, *size))
    violations = {v.field: v.description for v in info.value.violations}
    assert f"{AT}.{field}" in violations, violations
    assert says in violations[f"{AT}.{field}"]


@pytest.mark.parametrize(
    ("data", "mime", "size"),
    [
        (PNG_1X1, "image/png", (0, 0)),
        (PNG_1X1, "image/png", (1, 1)),
        (png(300, 17), "image/png", (300, 17)),
        (JPEG_640X480, "image/jpeg", (640, 480)),
        (b"\x89PNG\r\n\x1a\nfake", "image/png", (200, 200)),  # a size the header does not hold: taken
        (JPEG_640X480, "image/jpeg", (480, 640)),  # turned by its EXIF orientation, as a viewer shows it
    ],
    ids=["png", "png sized", "png 300x17", "jpeg sized", "png cut short", "jpeg turned"],
)
def test_an_image_that_is_what_the_caller_says_is_taken(
    data: bytes, mime: str, size: tuple[int, int]
) -> None:
    call = convert(request(data, mime, *size))
    (image,) = call.messages[-1].images
    assert (image.mime_type, image.width, image.height) == (mime, *size)


def url_request(url: str, width: int = 0, height: int = 0) -> gen.GenerationInput:
    image = gen.Image(url=url, width=width, height=height)
    parts = [gen.ContentPart(text="what is this?"), gen.ContentPart(image=image)]
    return gen.GenerationInput(messages=[gen.Message(role=gen.ROLE_USER, content=parts)])


def data_url(mime: str, data: bytes) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


@pytest.mark.parametrize(
    ("url", "size", "field", "says"),
    [
        (data_url("image/png", GIF_3X2), (0, 0), "url", "the data is image/gif, not image/png"),
        (data_url("image/png", bytes(30)), (0, 0), "url", "not a PNG, JPEG, GIF or WebP image"),
        (data_url("image/png", png(9000, 17)), (1, 1), "width", "the image is 9000 x 17"),
        (data_url("image/jpeg", JPEG_640X480), (640, 48), "height", "the image is 640 x 480"),
    ],
    ids=["gif as png", "zeros", "width lies", "height lies"],
)
def test_a_data_url_that_is_not_what_it_says_is_refused_naming_the_field(
    url: str, size: tuple[int, int], field: str, says: str
) -> None:
    """As inline bytes are: the fit counts a data: URL's pixels by the size given (a 9000 px side
    claimed 1 x 1 went to a deployment taking 8000 at most, which refused it after the reserve)."""
    with pytest.raises(InvalidRequestError) as info:
        convert(url_request(url, *size))
    violations = {v.field: v.description for v in info.value.violations}
    assert f"{AT}.{field}" in violations, violations
    assert says in violations[f"{AT}.{field}"]


@pytest.mark.parametrize(
    ("url", "size"),
    [
        (data_url("image/png", PNG_1X1), (0, 0)),
        (data_url("image/png", png(300, 17)), (300, 17)),
        (data_url("image/jpeg", JPEG_640X480), (480, 640)),
        (data_url("image/png", b"\x89PNG\r\n\x1a\nfake"), (200, 200)),
    ],
    ids=["png", "png sized", "jpeg turned", "png cut short"],
)
def test_a_data_url_that_is_what_it_says_is_taken(url: str, size: tuple[int, int]) -> None:
    call = convert(url_request(url, *size))
    (image,) = call.messages[-1].images
    assert (image.url, image.width, image.height) == (url, *size)


@pytest.mark.parametrize(("size", "field"), [((1, 200_000), "height"), ((-1, 1), "width")])
def test_a_size_out_of_range_names_its_own_field(size: tuple[int, int], field: str) -> None:
    with pytest.raises(InvalidRequestError) as info:
        convert(url_request("https://example.com/a.png", *size))
    assert {v.field for v in info.value.violations} == {f"{AT}.{field}"}
