"""Which tokenizer a deployment counts with, chat framing, and the logged fallback to the estimate."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from sidecar.config.schema import DeploymentConfig
from sidecar.context.tokenizer import ESTIMATE_COUNTER, MemoizedCount, Tokenizers, wanted_encoding
from sidecar.core.tokens import count_prompt_tokens
from sidecar.core.types import Message, Role

FIXTURES = Path(__file__).parents[2] / "fixtures" / "tokens"


def deployment(provider: str, model: str, **extra: object) -> DeploymentConfig:
    return DeploymentConfig.model_validate({"provider": provider, "model": model, **extra})


@pytest.mark.parametrize(
    ("provider", "model", "extra", "expected"),
    [
        ("openai", "gpt-4o-mini", {}, "o200k_base"),
        ("openai", "gpt-4.1", {}, "o200k_base"),
        ("openai", "o3-mini", {}, "o200k_base"),
        ("openai", "gpt-oss-20b", {}, "o200k_base"),  # o200k_harmony: the same ranks
        ("openai", "gpt-4", {}, "cl100k_base"),
        ("openai", "gpt-3.5-turbo", {}, "cl100k_base"),
        ("openai", "llama3.2", {}, "estimate"),  # an OpenAI-compatible server, another model
        ("anthropic", "claude-haiku-4-5", {}, "estimate"),
        ("azure", "gpt-4o-mini", {"base_url": "https://x.openai.azure.com"}, "o200k_base"),
        ("bedrock", "anthropic.claude-3-5-haiku-20241022-v1:0", {}, "estimate"),
        ("gemini", "gemini-2.5-flash", {}, "estimate"),
        ("echo", "gpt-4o", {}, "estimate"),
        ("openai", "llama3.2", {"tokenizer": "cl100k_base"}, "cl100k_base"),
        ("openai", "gpt-4o", {"tokenizer": "estimate"}, "estimate"),
    ],
)
def test_encoding_by_model_family(provider: str, model: str, extra: dict[str, object], expected: str) -> None:
    assert wanted_encoding(deployment(provider, model, **extra)) == expected


def test_tiktoken_counts_with_openais_chat_framing(encodings_dir: Path) -> None:
    tokenizers = Tokenizers.build({"gpt": deployment("openai", "gpt-4o")}, encodings_dir)
    counter = tokenizers.for_deployment("gpt")
    assert counter.name == "o200k_base"
    messages = [Message(Role.SYSTEM, "hello world"), Message(Role.USER, "tiktoken is great!", name="ann")]
    # 3 priming + (2 text + 3 framing + 1 "system") + (6 + 3 + 1 "user" + 1 "ann" + 1 for the name)
    assert counter.count_prompt(messages) == 21


COOKBOOK = json.loads((FIXTURES / "openai_cookbook.json").read_text())


@pytest.mark.parametrize(("model", "recorded"), sorted(COOKBOOK["usage_prompt_tokens"].items()))
def test_counts_equal_the_usage_openai_recorded_for_the_same_prompt(
    encodings_dir: Path, model: str, recorded: int
) -> None:
    messages = [Message(Role(m["role"]), m["content"], m.get("name", "")) for m in COOKBOOK["messages"]]
    tokenizers = Tokenizers.build({"d": deployment("openai", model)}, encodings_dir)
    assert tokenizers.prompt("d", messages) == recorded
    assert tokenizers.fits("d", messages, max_tokens=100, window=recorded + 100)
    assert not tokenizers.fits("d", messages, max_tokens=101, window=recorded + 100)  # never off by one


def test_the_estimate_matches_what_the_echo_provider_reports() -> None:
    texts = ["be brief", "Hello, sidecar!", "a much longer message, with punctuation; and words"]
    messages = [Message(Role.USER, t) for t in texts]
    assert ESTIMATE_COUNTER.count_prompt(messages) == count_prompt_tokens(texts)


def test_no_encodings_dir_falls_back_to_the_estimate_and_says_so(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="sidecar.context"):
        tokenizers = Tokenizers.build(
            {"gpt": deployment("openai", "gpt-4o"), "e": deployment("echo", "e")}, directory=None
        )
    assert tokenizers.for_deployment("gpt") is ESTIMATE_COUNTER
    [line] = [r for r in caplog.records if "fall back to the estimate" in r.getMessage()]
    assert "encodings_dir is not set" in line.getMessage()
    assert line.__dict__["deployments"] == "gpt"


def test_a_missing_file_falls_back_too(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="sidecar.context"):
        tokenizers = Tokenizers.build({"gpt": deployment("openai", "gpt-4")}, tmp_path)
    assert tokenizers.for_deployment("gpt") is ESTIMATE_COUNTER
    assert any("cl100k_base.tiktoken" in r.getMessage() for r in caplog.records)


def test_only_wanted_encodings_are_loaded(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="sidecar.context"):
        Tokenizers.build({"e": deployment("echo", "e")}, directory=None)
    assert not caplog.records


def test_long_texts_are_counted_once_and_the_memo_is_bounded() -> None:
    seen: list[str] = []

    def count(text: str) -> int:
        seen.append(text)
        return len(text)

    memo = MemoizedCount(count, max_entries=2)
    long = ["a" * 300, "b" * 300, "c" * 300]
    assert [memo(t) for t in (*long, long[2], "short", "short")] == [300, 300, 300, 300, 5, 5]
    assert seen == [*long, "short", "short"]  # the repeat of a long text was remembered; short ones never
    memo(long[0])
    assert seen[-1] == long[0]  # the oldest was forgotten: at most 2 remembered


def test_a_persona_prompt_is_counted_by_the_strictest_tokenizer_configured(encodings_dir: Path) -> None:
    text = "Übermäßig lange Wörter: Donaudampfschifffahrtsgesellschaftskapitän 🚢🚢🚢"
    both = Tokenizers.build(
        {"gpt": deployment("openai", "gpt-4o"), "claude": deployment("anthropic", "claude-haiku-4-5")},
        encodings_dir,
    )
    counts = [both.for_deployment("gpt").count_text(text), ESTIMATE_COUNTER.count_text(text)]
    assert counts[0] != counts[1] and both.count_text_max(text) == max(counts)
    assert Tokenizers({}).count_text_max(text) == ESTIMATE_COUNTER.count_text(text)


def test_a_quota_estimate_before_routing_takes_the_largest_prompt_count(encodings_dir: Path) -> None:
    both = Tokenizers.build(
        {"gpt": deployment("openai", "gpt-4o"), "claude": deployment("anthropic", "claude-haiku-4-5")},
        encodings_dir,
    )
    texts = ["You are terse.", "Donaudampfschifffahrtsgesellschaftskapitän 🚢🚢🚢"]
    messages = [Message(Role.SYSTEM, texts[0]), Message(Role.USER, texts[1])]
    counts = [both.for_deployment(d).count_prompt(messages) for d in ("gpt", "claude")]
    assert both.count_prompt_max(texts) == max(counts) and counts[0] != counts[1]
    assert both.prompt_max(messages) == max(counts)
    named = [Message(Role.USER, "hi", name="a_rather_long_participant_name")]
    assert both.prompt_max(named) == max(both.prompt(d, named) for d in ("gpt", "claude"))


def test_a_chat_template_frames_the_prompt_its_own_way() -> None:
    template = {"per_message": 5, "priming": 3, "default_system_tokens": 16}
    tokenizers = Tokenizers.build({"local": deployment("openai", "smollm2", chat_template=template)}, None)
    counter = tokenizers.for_deployment("local")
    assert counter.name == "estimate+template(5,3,16)"
    hi = [Message(Role.USER, "Hi")]
    assert tokenizers.prompt("local", hi) == 3 + 16 + (1 + 5)  # the template's own system message
    with_system = [Message(Role.SYSTEM, "Be brief."), *hi]
    assert tokenizers.prompt("local", with_system) == 3 + (3 + 5) + (1 + 5)  # "Be", "brief", "."
    assert tokenizers.prompt_max(hi) == tokenizers.prompt("local", hi)
