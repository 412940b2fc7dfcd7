"""Images: each provider's token rule, and both wire formats for URL and inline images."""

from __future__ import annotations

import base64

from sidecar.config.schema import DeploymentConfig
from sidecar.context.tokenizer import Tokenizers
from sidecar.core.types import GenerationParams, Image, Message, Role
from sidecar.providers import anthropic, openai
from sidecar.providers.base import ProviderRequest
from sidecar.providers.images import (
    ANTHROPIC_MAX,
    GEMINI_3_IMAGE,
    GEMINI_MAX,
    GEMINI_TILE,
    OPENAI_MAX,
    anthropic_tokens,
    gemini_tokens,
    most_image_tokens,
    openai_tokens,
)

PNG = b"\x89PNG\r\n\x1a\n0000"


def test_openai_rule_tiles_after_scaling() -> None:
    assert openai_tokens(Image(url="https://x/a.png", width=1024, height=1024)) == 85 + 170 * 4  # 768 x 768
    assert openai_tokens(Image(url="https://x/a.png", width=4096, height=2048)) == 85 + 170 * 6  # 1536 x 768
    assert openai_tokens(Image(url="https://x/a.png", width=100, height=100)) == 85 + 170
    assert openai_tokens(Image(url="https://x/a.png")) == OPENAI_MAX  # unknown size: the maximum


def test_anthropic_rule_is_area_over_750_capped() -> None:
    assert anthropic_tokens(Image(data=PNG, mime_type="image/png", width=200, height=200)) == 54
    assert anthropic_tokens(Image(data=PNG, mime_type="image/png", width=5000, height=5000)) == ANTHROPIC_MAX
    assert anthropic_tokens(Image(data=PNG, mime_type="image/png")) == ANTHROPIC_MAX


def request(*images: Image) -> ProviderRequest:
    return ProviderRequest((Message(Role.USER, "What is this?", images=images),), GenerationParams(), False)


def deployment(provider: str) -> DeploymentConfig:
    return DeploymentConfig(provider=provider, model="m")  # type: ignore[arg-type]


def test_openai_wire_sends_image_parts() -> None:
    body = openai.to_wire(
        request(Image(url="https://example.com/a.png"), Image(data=PNG, mime_type="image/png")),
        deployment("openai"),
    )
    data_url = "data:image/png;base64," + base64.b64encode(PNG).decode()
    assert body["messages"][0]["content"] == [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
        {"type": "image_url", "image_url": {"url": data_url}},
    ]


def test_anthropic_wire_sends_image_blocks_before_the_text() -> None:
    images = (Image(url="https://example.com/a.png"), Image(data=PNG, mime_type="image/png"))
    body = anthropic.to_wire(request(*images), deployment("anthropic"))
    assert body["messages"][0]["content"] == [
        {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}},
        {
            "type": "image",
            "source": {"type": "base64", "media_type": "image/png", "data": base64.b64encode(PNG).decode()},
        },
        {"type": "text", "text": "What is this?"},
    ]


def test_gemini_counts_images_by_its_own_rule() -> None:
    """Gemini 2: 258 an image of at most 384 px a side, 258 a 768 px tile above (scaled to fit
    3072 px); Gemini 3: 1120 an image (media_resolution high, its default). OpenAI's and Anthropic's
    rules, the estimate's, undercount a small image on either: 255 and 14 for 100 x 100."""
    small = Image(data=PNG, mime_type="image/png", width=100, height=100)
    assert gemini_tokens(small, "gemini-2.5-flash") == GEMINI_TILE == 258
    assert gemini_tokens(small, "gemini-3-flash-preview") == GEMINI_3_IMAGE == 1120
    assert max(openai_tokens(small), anthropic_tokens(small)) == 255
    assert gemini_tokens(Image(url="https://x/a.png", width=1000, height=400), "gemini-2.0-flash") == 258 * 2
    assert gemini_tokens(Image(url="https://x/a.png", width=384, height=385), "gemini-2.5-pro") == 258
    assert (
        gemini_tokens(Image(url="https://x/a.png", width=6144, height=3072), "gemini-2.5-pro") == 258 * 4 * 2
    )
    assert gemini_tokens(Image(url="https://x/a.png"), "gemini-2.5-pro") == GEMINI_MAX == 258 * 16
    assert gemini_tokens(Image(url="https://x/a.png"), "gemini-3-pro-preview") == GEMINI_3_IMAGE
    assert most_image_tokens((Message(Role.USER, "?", images=(small,)),)) == GEMINI_3_IMAGE


def test_a_gemini_deployment_counts_its_images_by_gemini_for_the_fit_and_the_quota() -> None:
    """Trimming, the context fit and the quota estimate count with the deployment's counter: a
    Gemini deployment's counts Gemini's image rule (it had the estimate's: 255 for 100 x 100)."""
    small = Image(data=PNG, mime_type="image/png", width=100, height=100)
    tokens = Tokenizers.build(
        {
            "g3": DeploymentConfig(provider="gemini", model="gemini-3-flash-preview"),
            "g2": DeploymentConfig(provider="gemini", model="gemini-2.5-flash"),
            "e": DeploymentConfig(provider="echo", model="echo"),
        },
        None,
    )
    text, pictured = (Message(Role.USER, "?"),), (Message(Role.USER, "?", images=(small,)),)
    assert {d: tokens.prompt(d, pictured) - tokens.prompt(d, text) for d in ("g3", "g2", "e")} == {
        "g3": 1120,
        "g2": 258,
        "e": 255,
    }
    assert tokens.prompt_max(pictured) == tokens.prompt("g3", pictured)  # the quota's estimate
    assert tokens.prompt_max(pictured, deployments=["g2", "e"]) == tokens.prompt("g2", pictured)
