"""The quota's prompt estimate counts the same structure trimming counts: names, tool definitions,
tool calls and results, images (through the counting service's `prompt_max`)."""

from __future__ import annotations

import dataclasses

from sidecar.config.schema import DeploymentConfig
from sidecar.context.tokenizer import Tokenizers
from sidecar.core.types import GenerationParams, Image, Message, Role, ToolCall, ToolSpec
from sidecar.pipeline.quota import TokenEstimator, _prompt_estimate
from tests.conftest import FakeClock
from tests.support.calls import make_call
from tests.support.context import ENCODINGS_DIR


def test_the_estimate_counts_names_tools_tool_calls_and_images(clock: FakeClock) -> None:
    deployments = {
        "gpt": DeploymentConfig.model_validate({"provider": "openai", "model": "gpt-4o"}),
        "claude": DeploymentConfig.model_validate({"provider": "anthropic", "model": "claude-haiku-4-5"}),
    }
    tokenizers = Tokenizers.build(deployments, ENCODINGS_DIR)
    estimator = TokenEstimator(prompt=tokenizers.prompt_max, text=tokenizers.count_text_max)
    plain = dataclasses.replace(make_call(clock), messages=(Message(Role.USER, "weather in Paris?"),))
    before = _prompt_estimate(estimator, plain)
    named = dataclasses.replace(plain, messages=(Message(Role.USER, "weather in Paris?", name="ann_smith"),))
    assert _prompt_estimate(estimator, named) > before
    rich = dataclasses.replace(
        plain,
        messages=(
            Message(
                Role.USER, "weather in Paris?", images=(Image(url="https://x/a.png", width=800, height=600),)
            ),
            Message(Role.ASSISTANT, "", tool_calls=(ToolCall("c1", "get_weather", '{"city": "Paris"}'),)),
            Message(Role.TOOL, "sunny", tool_call_id="c1"),
        ),
        params=GenerationParams(tools=(ToolSpec("get_weather", "Current weather", '{"type": "object"}'),)),
    )
    assert _prompt_estimate(estimator, rich) == tokenizers.prompt_max(rich.messages, rich.params)
    counts = [tokenizers.prompt(d, rich.messages, rich.params) for d in deployments]
    assert _prompt_estimate(estimator, rich) == max(counts) > before + 530  # Claude's tools preamble
