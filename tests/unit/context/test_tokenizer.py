"""Which tokenizer a deployment counts with, chat framing, and the logged fallback to the estimate."""

from __future__ import annotations

import dataclasses
import json
import logging
import math
from pathlib import Path
from typing import Any

import pytest

from sidecar.config.schema import DeploymentConfig
from sidecar.context.tokenizer import (
    ANTHROPIC_COUNTER,
    ANTHROPIC_TOOLS_PROMPT,
    ESTIMATE_COUNTER,
    TOOL_CALL_FRAME,
    TOOL_FRAME,
    TOOLS_FRAME,
    MemoizedCount,
    Tokenizers,
    anthropic_bound,
    wanted_encoding,
)
from sidecar.core.tokens import count_prompt_tokens
from sidecar.core.types import (
    GenerationParams,
    Image,
    Message,
    ResponseFormat,
    Role,
    ThinkingBlock,
    ToolCall,
    ToolSpec,
)

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
        ("anthropic", "claude-haiku-4-5", {}, "anthropic-bound"),
        ("azure", "gpt-4o-mini", {"base_url": "https://x.openai.azure.com"}, "o200k_base"),
        ("bedrock", "anthropic.claude-3-5-haiku-20241022-v1:0", {}, "anthropic-bound"),
        ("bedrock", "amazon.nova-lite-v1:0", {}, "estimate"),
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
    counts = [both.for_deployment(d).count_text(text) for d in ("gpt", "claude")]
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
    assert counts[0] != counts[1]
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


def test_tool_calls_tool_results_and_images_are_counted_by_the_provider_rule(encodings_dir: Path) -> None:
    both = Tokenizers.build(
        {"gpt": deployment("openai", "gpt-4o"), "claude": deployment("anthropic", "claude-haiku-4-5")},
        encodings_dir,
    )
    gpt, claude = both.for_deployment("gpt"), both.for_deployment("claude")
    call = ToolCall("call_1", "get_weather", '{"city": "Paris"}')
    asking = Message(Role.ASSISTANT, "", tool_calls=(call,))
    answer = Message(Role.TOOL, "sunny, 21 C", tool_call_id="call_1")
    for c in (gpt, claude):
        parts = c.count_text("call_1") + c.count_text("get_weather") + c.count_text(call.arguments)
        assert (
            c.count_message(asking) == c.count_message(Message(Role.ASSISTANT, "")) + parts + TOOL_CALL_FRAME
        )
        plain = c.count_message(Message(Role.TOOL, "sunny, 21 C"))
        assert c.count_message(answer) == plain + c.count_text("call_1") + 1
    image = Image(url="https://example.com/a.png", width=1024, height=1024)
    looked = Message(Role.USER, "what is this?", images=(image,))
    plain_user = Message(Role.USER, "what is this?")
    assert gpt.count_message(looked) - gpt.count_message(plain_user) == 85 + 170 * 4  # 768 x 768: 2 x 2 tiles
    assert claude.count_message(looked) - claude.count_message(plain_user) == math.ceil(1024 * 1024 / 750)
    unknown = Message(Role.USER, "?", images=(Image(url="https://example.com/b.png"),))
    assert (
        ESTIMATE_COUNTER.count_message(unknown)
        >= ESTIMATE_COUNTER.count_message(Message(Role.USER, "?")) + 1600
    )
    # the same structure, counted everywhere: prompt_max (routing's fit, quota) takes the largest
    messages = [asking, answer, looked]
    assert both.prompt_max(messages) == max(c.count_prompt(messages) for c in (gpt, claude))


def test_tool_definitions_and_a_schema_count_once_per_prompt(encodings_dir: Path) -> None:
    gpt = Tokenizers.build({"gpt": deployment("openai", "gpt-4o")}, encodings_dir).for_deployment("gpt")
    tool = ToolSpec("get_weather", "Current weather in a city", '{"type": "object"}')
    params = GenerationParams(
        tools=(tool, tool), response_format=ResponseFormat("json_schema", "x", '{"a": 1}')
    )
    one = gpt.count_text(tool.name) + gpt.count_text(tool.description) + gpt.count_text(tool.parameters_json)
    assert (
        gpt.count_params(params)
        == TOOLS_FRAME + 2 * (one + TOOL_FRAME) + gpt.count_text('{"a": 1}') + TOOL_FRAME
    )
    messages = [Message(Role.USER, "weather?")]
    assert gpt.count_prompt(messages, params) == gpt.count_prompt(messages) + gpt.count_params(params)
    claude = ANTHROPIC_COUNTER
    assert claude.count_params(GenerationParams(tools=(tool,))) >= ANTHROPIC_TOOLS_PROMPT


BOUND_TEXTS = [
    "Hello, world! How are you today?",
    "def fit(messages: Sequence[Message], budgets) -> Fit:\n    return {k: v for k, v in x.items()}",
    "Übermäßig lange Wörter: Donaudampfschifffahrtsgesellschaftskapitän",
    "東京の天気は晴れです。明日は雨が降るでしょう。",
    "🚢🚢🚢 emoji 👩‍👩‍👧 and ZWJ sequences",
    "Привет, как дела? Это тест на кириллице.",
    "https://example.com/a/b?c=d&e=f#g 0x1F600 3.14159265358979 1,234,567",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa bbbbbbbbbbbbbbbbbbb",
]


@pytest.mark.parametrize("text", BOUND_TEXTS)
def test_the_anthropic_bound_is_above_every_bpe_count_available(text: str, encodings: dict[str, Any]) -> None:
    """No Anthropic usage for a known prompt is recorded in this repository (the fixtures under
    tests/fixtures/providers/anthropic are replies whose requests are not kept), so the bound is
    checked against the byte-level BPE tokenizers there are: it is above cl100k_base and o200k_base,
    whose vocabularies are as large as or larger than Claude's is reported to be."""
    bound = anthropic_bound(text)
    assert all(bound >= len(e.encode(text)) for e in encodings.values()), (bound, text)


SMOLLM2_TEMPLATE = {
    "per_message": 5,
    "priming": 4,
    "default_system_tokens": 21,
    "role_tokens": {"assistant": 1},
}


def test_the_smollm2_template_framing_equals_the_real_servers_count() -> None:
    """tests/fixtures/tokens/smollm2_llama_server.json: usage.prompt_tokens llama-server reported for
    each prompt, and each message's own tokens by the model's tokenizer (/tokenize). With the text
    counted as the model counts it, the template's framing makes the sidecar's count equal."""
    recorded = json.loads((FIXTURES / "smollm2_llama_server.json").read_text())
    config = deployment("openai", "smollm2-135m-instruct", chat_template=SMOLLM2_TEMPLATE)
    framing = Tokenizers.build({"local": config}, None).for_deployment("local")
    for case in recorded["cases"]:
        own = dict(zip((m["content"] for m in case["messages"]), case["content_tokens"], strict=True))
        counter = dataclasses.replace(framing, count_text=own.__getitem__)
        messages = [Message(Role(m["role"]), m["content"]) for m in case["messages"]]
        assert counter.count_prompt(messages) == case["prompt_tokens"], case["messages"]


def test_thinking_sent_back_is_counted() -> None:
    """An assistant message sent back with its signed thinking (Anthropic's tool loop): the thinking
    is part of the prompt, a redacted block by its data."""
    call = (ToolCall("call_1", "get_weather", "{}"),)
    thought = "The user wants Paris. I should call get_weather to find out."
    plain = Message(Role.ASSISTANT, "", tool_calls=call)
    signed = dataclasses.replace(
        plain, thinking=(ThinkingBlock(thought, "sig"), ThinkingBlock(redacted="EmwK"))
    )
    c = ESTIMATE_COUNTER
    assert c.count_message(signed) == c.count_message(plain) + c.count_text(thought) + c.count_text("EmwK")
