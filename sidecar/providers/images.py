"""What an image costs in prompt tokens, by each provider's published rule, and the prompt text a
call adds besides its messages (tool definitions, tool calls, a response schema).

OpenAI (high detail): the image is scaled to fit 2048 x 2048, then its shorter side to 768; each
512 px tile costs 170 tokens, plus 85. Anthropic: width x height / 750 after scaling the long side
to at most 1568 px (about 1600 tokens at most). Gemini before 3: 258 tokens for an image of at most
384 px a side, else 258 per 768 x 768 tile after scaling to fit 3072 x 3072; Gemini 3: up to 1120
an image whatever its size (media_resolution high, its default for images: the adapter sets none).
An image of unknown size counts at the maximum.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial

from sidecar.config.schema import DeploymentConfig
from sidecar.core.types import GenerationParams, Image, Message
from sidecar.providers import gemini_wire

OPENAI_MAX = 85 + 170 * 8  # 2048 x 768 after scaling: 4 x 2 tiles
ANTHROPIC_MAX = 1600
GEMINI_TILE = 258  # one image of at most 384 px a side, or one 768 px tile of a larger one
GEMINI_SCALED_TO = 3072  # Gemini scales a larger image to fit this square
GEMINI_MAX = GEMINI_TILE * (GEMINI_SCALED_TO // 768) ** 2  # 4 x 4 tiles
GEMINI_3_IMAGE = 1120  # Gemini 3's media_resolution high, its default for images


def openai_tokens(image: Image) -> int:
    if image.width <= 0 or image.height <= 0:
        return OPENAI_MAX
    w, h = float(image.width), float(image.height)
    scale = min(1.0, 2048 / max(w, h))
    w, h = w * scale, h * scale
    scale = min(1.0, 768 / min(w, h))
    w, h = w * scale, h * scale
    return 85 + 170 * math.ceil(w / 512) * math.ceil(h / 512)


def anthropic_tokens(image: Image) -> int:
    w, h = image.width, image.height
    if w <= 0 or h <= 0:
        return ANTHROPIC_MAX
    scale = min(1.0, 1568 / max(w, h))
    return min(ANTHROPIC_MAX, math.ceil(w * scale * h * scale / 750))


def gemini_tokens(image: Image, model: str) -> int:
    """One image's prompt tokens on a Gemini model: Gemini 3's fixed allowance, else the tile rule."""
    return gemini_tiles(image) if gemini_wire.before_gemini_3(model) else GEMINI_3_IMAGE


def gemini_tiles(image: Image) -> int:
    """Gemini 2's rule: 258 a small image, else 258 a 768 px tile after scaling to 3072 px at most."""
    w, h = image.width, image.height
    if w <= 0 or h <= 0:
        return GEMINI_MAX
    if w <= 384 and h <= 384:
        return GEMINI_TILE
    scale = min(1.0, GEMINI_SCALED_TO / max(w, h))
    return GEMINI_TILE * math.ceil(w * scale / 768) * math.ceil(h * scale / 768)


def own_rule(deployment: DeploymentConfig) -> Callable[[Image], int] | None:
    """The image count of a provider whose rule the model's tokenizer does not give (Gemini's);
    None: the counter's own (OpenAI's tiles, Anthropic's area, the larger of both for the estimate)."""
    if deployment.provider == "gemini":
        return partial(gemini_tokens, model=deployment.model)
    return None


def image_tokens(provider: str, image: Image) -> int:
    """One image's prompt tokens at a provider (OpenAI's rule for OpenAI-compatible and echo)."""
    return anthropic_tokens(image) if provider == "anthropic" else openai_tokens(image)


def most_image_tokens(messages: tuple[Message, ...]) -> int:
    """The images' prompt tokens at the dearest rule (Gemini 3's included)."""
    return sum(
        max(openai_tokens(i), anthropic_tokens(i), gemini_tiles(i), GEMINI_3_IMAGE)
        for m in messages
        for i in m.images
    )


def extra_prompt_texts(messages: tuple[Message, ...], params: GenerationParams) -> list[str]:
    """Prompt text besides the messages' own: tool definitions, tool calls, a response schema."""
    out = [f"{t.name} {t.description} {t.parameters_json}" for t in params.tools]
    out += [f"{c.name} {c.arguments}" for m in messages for c in m.tool_calls]
    if params.response_format is not None and params.response_format.schema_json:
        out.append(params.response_format.schema_json)
    return out
