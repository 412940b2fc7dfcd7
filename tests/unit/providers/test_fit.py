"""The capability fit: what a deployment cannot take of a call's images."""

from __future__ import annotations

import base64
import dataclasses

from sidecar.core.types import GenerationParams, Image, Message, Role
from sidecar.providers.base import IMAGE_FORMATS, Capabilities
from sidecar.providers.fit import Misfit, missing, needs, refusal

CAPS = Capabilities(True, True, True, 1000, images=True)
SMALL = dataclasses.replace(CAPS, image_formats=frozenset({"image/png"}), max_image_bytes=10)


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
