"""The capability fit: what a call needs of a deployment, and what one deployment cannot give it.

Routing (sidecar/routing/plan.py) sends a call only to deployments it fits, and when none fits names
what each one lacks, so an operator can see which deployment to change. Besides the features
(tools, json_schema, images, image_urls, reasoning, json_with_tools: a JSON answer beside tools,
which Gemini 2.5 refuses), a deployment's limits on inline images are part of the fit: the formats
it reads (Gemini reads no GIF), the size of one image (Converse takes at most 3.75 MB) and its
pixels (Anthropic and Converse: 8000 a side; Anthropic 2000 in a request of more than 20 images);
and so are its limits on a whole request: how many images (Converse 20, Anthropic 100) and how
many bytes (Anthropic 32 MB, Gemini 100 MB, inline data as base64 included). An image or a request
the first deployment cannot take goes to a later one that can, instead of ending the route there.
"""

from __future__ import annotations

import binascii
import dataclasses
from base64 import b64decode
from dataclasses import dataclass

from sidecar.core.image_header import HEAD_BYTES, read_header
from sidecar.core.types import GenerationParams, Image, Message
from sidecar.providers.base import Capabilities

# The images a deployment cannot take that its reasons list one by one; the rest are counted.
MAX_LISTED_IMAGES = 2


@dataclass(frozen=True, slots=True)
class Misfit:
    """What one deployment lacks for a call: features by name, the images it cannot take (their
    place in the prompt, from 1, and why), and the limits of a whole request the call is over
    (named as the deployment's `capabilities` sets them: max_request_bytes, max_images)."""

    features: tuple[str, ...] = ()
    images: tuple[tuple[int, str], ...] = ()
    limits: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.features or self.images or self.limits)

    def __str__(self) -> str:
        """`lacks tools, images` and / or `cannot take image 1 of the prompt (its reason), ...` and
        / or `is over max_images (21 images; it takes at most 20)`."""
        listed = [f"image {n} of the prompt ({why})" for n, why in self.images[:MAX_LISTED_IMAGES]]
        if len(self.images) > MAX_LISTED_IMAGES:
            more = len(self.images) - MAX_LISTED_IMAGES
            listed.append(f"{more} more image{'s' * (more > 1)}")
        clauses = [f"lacks {', '.join(self.features)}"] * bool(self.features)
        clauses += [f"cannot take {', '.join(listed)}"] * bool(listed)
        return " and ".join(clauses + [f"is over {', '.join(self.limits)}"] * bool(self.limits))


def needs(params: GenerationParams, messages: tuple[Message, ...]) -> frozenset[str]:
    """The features a call needs from a deployment: tools, json_schema, images (image_urls when one
    is an https:// URL), reasoning, and json_with_tools when it offers tools and asks for JSON."""
    need: set[str] = set()
    if params.tools or any(m.tool_calls or m.tool_call_id for m in messages):
        need.add("tools")
    # json_object too: a deployment without structured output would get no format at all, and its
    # prose answer would fail the check after the provider was paid
    if params.response_format is not None and params.response_format.kind in ("json_schema", "json_object"):
        need.add("json_schema")
        if params.tools:  # a JSON answer beside function declarations: Gemini 2.5 refuses both
            need.add("json_with_tools")
    if any(m.images for m in messages):
        need.add("images")
    if any(i.url.startswith("https://") for m in messages for i in m.images):
        need.add("image_urls")
    if params.reasoning is not None and (params.reasoning.effort or params.reasoning.budget_tokens):
        need.add("reasoning")
    return frozenset(need)


def missing(caps: Capabilities, need: frozenset[str], messages: tuple[Message, ...]) -> Misfit:
    """What a deployment lacks for a call: the features of `need`, the images it cannot take, and
    the limits of a request the call is over."""
    features = tuple(caps.lacks(need))
    limits = over_limits(caps, messages)
    if "images" in features or "images" not in need:
        return Misfit(features, limits=limits)
    images = [i for m in messages for i in m.images]
    crowd, crowded_side = caps.crowded_image_side
    if crowd and len(images) > crowd:  # Anthropic: more than 20 images, each at most 2000 px a side
        caps = dataclasses.replace(
            caps, max_image_side=min(caps.max_image_side or crowded_side, crowded_side)
        )
    refused = tuple((n, why) for n, i in enumerate(images, 1) if (why := refusal(caps, i)))
    return Misfit(features, refused, limits)


def over_limits(caps: Capabilities, messages: tuple[Message, ...]) -> tuple[str, ...]:
    """The deployment's limits on a whole request that the call is over: its images, its size."""
    out: list[str] = []
    count = sum(len(m.images) for m in messages)
    if caps.max_images and count > caps.max_images:
        out.append(f"max_images ({count} images; it takes at most {caps.max_images})")
    limit = caps.max_request_bytes
    if limit and (size := request_bytes(messages, limit)) > limit:
        out.append(f"max_request_bytes (about {size} bytes; it takes at most {limit})")
    return tuple(out)


# What a message adds to a request body besides its content (role, keys, punctuation), about.
MESSAGE_BYTES = 32


def request_bytes(messages: tuple[Message, ...], limit: int) -> int:
    """About how large the request body for `messages` is (inline images as base64, https:// ones
    as their URL), at least; the text's UTF-8 is measured only when up to 4 bytes a character
    could cross `limit`."""
    images = sum(_sent_bytes(i) for m in messages for i in m.images)
    chars = sum(len(t) for m in messages for t in _texts(m))
    size = images + chars + MESSAGE_BYTES * len(messages)
    if size + 3 * chars <= limit:  # within the limit even were every character 4 bytes
        return size
    utf8 = sum(len(t.encode("utf-8", "surrogatepass")) for m in messages for t in _texts(m))
    return size - chars + utf8


def _texts(m: Message) -> list[str]:
    calls = [f"{c.id}{c.name}{c.arguments}" for c in m.tool_calls]
    return [m.text, m.name, *calls, *(f"{b.text}{b.signature}{b.redacted}" for b in m.thinking)]


def _sent_bytes(image: Image) -> int:
    """An image's bytes in a request: base64 of its data (4 for each 3), a data: URL's payload as
    it is, an https:// URL's characters."""
    if image.data:
        return 4 * -(-len(image.data) // 3)
    return len(image.url.partition(",")[2]) if image.url.startswith("data:") else len(image.url)


def refusal(caps: Capabilities, image: Image) -> str:
    """Why a deployment cannot take an inline image ("" when it can). An https:// image's format and
    size are not known before it is fetched: only whether it may be fetched counts (image_urls)."""
    mime, size = _format_and_size(image)
    if mime and mime not in caps.image_formats:
        return f"{mime[:40]}; it reads {', '.join(sorted(caps.image_formats))}"
    if caps.max_image_bytes and size > caps.max_image_bytes:
        return f"{size} bytes; it takes at most {caps.max_image_bytes}"
    if caps.max_image_side:
        width, height = pixels(image)
        if max(width, height) > caps.max_image_side:
            return f"{width} x {height} px; it takes at most {caps.max_image_side} px a side"
    return ""


def pixels(image: Image) -> tuple[int, int]:
    """An image's width and height: as the caller gave them, else as its file's header says (an
    inline image); (0, 0) when neither does (an https:// image, a header not read)."""
    if image.width > 0 and image.height > 0:
        return image.width, image.height
    if image.data:
        return _dimensions(image.data)  # read_header reads no further than it needs (HEAD_BYTES at most)
    head, _, payload = image.url.partition(",")
    if not (image.url.startswith("data:") and head.endswith(";base64")):
        return 0, 0
    try:
        return _dimensions(b64decode(payload[: HEAD_BYTES // 3 * 4], validate=True))
    except binascii.Error:
        return 0, 0


def _dimensions(head: bytes) -> tuple[int, int]:
    header = read_header(head)
    return (header.width, header.height) if header is not None else (0, 0)


def _format_and_size(image: Image) -> tuple[str, int]:
    """An image's MIME type and size in bytes, where they are known (bytes, a data: URL). A data:
    URL's payload is counted from its length, not decoded: the fit asks for each image of each call
    on each deployment (decoding 20 images of 5 MiB took a second of CPU for each), and the edge
    admits valid base64 only (sidecar/api/content.py decodes it once). A length no base64 has is
    counted as its characters (a provider refuses it itself)."""
    if image.data:
        return image.mime_type, len(image.data)
    url = image.url
    if not url.startswith("data:"):
        return "", 0
    comma = url.find(",")
    head = url[:comma] if comma >= 0 else url
    chars = len(url) - comma - 1 if comma >= 0 else 0
    if not head.endswith(";base64") or chars % 4:
        return head[5:].partition(";")[0], chars
    return head[5:].partition(";")[0], chars // 4 * 3 - url.count("=", len(url) - 2, len(url))
