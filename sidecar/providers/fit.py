"""The capability fit: what a call needs of a deployment, and what one deployment cannot give it.

Routing (sidecar/routing/plan.py) sends a call only to deployments it fits, and when none fits names
what each one lacks, so an operator can see which deployment to change. Besides the features
(tools, json_schema, images, image_urls, reasoning, json_with_tools: a JSON answer beside tools,
which Gemini 2.5 refuses), a deployment's limits on inline images are part of the fit: the formats
it reads (Gemini reads no GIF) and the size of one image (Converse takes at most 3.75 MB). An image
the first deployment cannot take goes to a later one that can, instead of ending the route there.
"""

from __future__ import annotations

import binascii
from base64 import b64decode
from dataclasses import dataclass

from sidecar.core.types import GenerationParams, Image, Message
from sidecar.providers.base import Capabilities

# The images a deployment cannot take that its reasons list one by one; the rest are counted.
MAX_LISTED_IMAGES = 2


@dataclass(frozen=True, slots=True)
class Misfit:
    """What one deployment lacks for a call: features by name, and the images it cannot take
    (their place in the prompt, from 1, and why)."""

    features: tuple[str, ...] = ()
    images: tuple[tuple[int, str], ...] = ()

    def __bool__(self) -> bool:
        return bool(self.features or self.images)

    def __str__(self) -> str:
        """`lacks tools, images` and / or `cannot take image 1 of the prompt (its reason), ...`."""
        listed = [f"image {n} of the prompt ({why})" for n, why in self.images[:MAX_LISTED_IMAGES]]
        if len(self.images) > MAX_LISTED_IMAGES:
            more = len(self.images) - MAX_LISTED_IMAGES
            listed.append(f"{more} more image{'s' * (more > 1)}")
        clauses = [f"lacks {', '.join(self.features)}"] * bool(self.features)
        return " and ".join(clauses + [f"cannot take {', '.join(listed)}"] * bool(listed))


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
    """What a deployment lacks for a call: the features of `need`, then the images it cannot take."""
    features = tuple(caps.lacks(need))
    if "images" in features or "images" not in need:
        return Misfit(features)
    images = (i for m in messages for i in m.images)
    refused = tuple((n, why) for n, i in enumerate(images, 1) if (why := refusal(caps, i)))
    return Misfit(features, refused)


def refusal(caps: Capabilities, image: Image) -> str:
    """Why a deployment cannot take an inline image ("" when it can). An https:// image's format and
    size are not known before it is fetched: only whether it may be fetched counts (image_urls)."""
    mime, size = _format_and_size(image)
    if mime and mime not in caps.image_formats:
        return f"{mime[:40]}; it reads {', '.join(sorted(caps.image_formats))}"
    if caps.max_image_bytes and size > caps.max_image_bytes:
        return f"{size} bytes; it takes at most {caps.max_image_bytes}"
    return ""


def _format_and_size(image: Image) -> tuple[str, int]:
    """An image's MIME type and size in bytes, where they are known (bytes, a data: URL)."""
    if image.data:
        return image.mime_type, len(image.data)
    if not image.url.startswith("data:"):
        return "", 0
    head, _, payload = image.url.partition(",")
    try:
        size = len(b64decode(payload, validate=True)) if head.endswith(";base64") else len(payload)
    except binascii.Error:  # the edge admits base64 only; a provider refuses anything else itself
        size = len(payload)
    return head[5:].partition(";")[0], size
