"""What an image costs in prompt tokens, by each provider's published rule, and the prompt text a
call adds besides its messages (tool definitions, tool calls, a response schema).

OpenAI (high detail): the image is scaled to fit 2048 x 2048, then its shorter side to 768; each
512 px tile costs 170 tokens, plus 85. Anthropic: width x height / 750 after scaling the long side
to at most 1568 px (about 1600 tokens at most). An image of unknown size counts at the maximum.
"""

from __future__ import annotations

import math

from sidecar.core.types import GenerationParams, Image, Message

OPENAI_MAX = 85 + 170 * 8  # 2048 x 768 after scaling: 4 x 2 tiles
ANTHROPIC_MAX = 1600


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


def image_tokens(provider: str, image: Image) -> int:
    """One image's prompt tokens at a provider (OpenAI's rule for OpenAI-compatible and echo)."""
    return anthropic_tokens(image) if provider == "anthropic" else openai_tokens(image)


def most_image_tokens(messages: tuple[Message, ...]) -> int:
    """The images' prompt tokens at the dearest rule: what a quota reservation assumes."""
    return sum(max(openai_tokens(i), anthropic_tokens(i)) for m in messages for i in m.images)


def extra_prompt_texts(messages: tuple[Message, ...], params: GenerationParams) -> list[str]:
    """Prompt text besides the messages' own: tool definitions, tool calls, a response schema."""
    out = [f"{t.name} {t.description} {t.parameters_json}" for t in params.tools]
    out += [f"{c.name} {c.arguments}" for m in messages for c in m.tool_calls]
    if params.response_format is not None and params.response_format.schema_json:
        out.append(params.response_format.schema_json)
    return out
