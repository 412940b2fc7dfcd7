from __future__ import annotations

import json

from sidecar.config.schema import DeploymentConfig
from sidecar.core.types import FinishReason, GenerationParams, Message, Role, Usage
from sidecar.providers import azure, openai
from sidecar.providers.base import ProviderRequest
from sidecar.providers.sse import SseDecoder
from sidecar.providers.stream import StreamAssembler
from tests.support.upstream import fixture

DEPLOYMENT = DeploymentConfig(
    provider="azure", model="gpt-4o-mini", base_url="https://contoso.openai.azure.com/",
    azure={"deployment": "chat-prod", "api_version": "2025-01-01-preview"},
)  # fmt: skip
REQ = ProviderRequest((Message(Role.USER, "Hi"),), GenerationParams(max_tokens=5, seed=3), stream=True)


def test_urls_are_deployment_based_with_the_api_version() -> None:
    assert azure.urls(DEPLOYMENT) == (
        "https://contoso.openai.azure.com/openai/deployments/chat-prod/chat/completions"
        "?api-version=2025-01-01-preview",
        "https://contoso.openai.azure.com/openai/models?api-version=2025-01-01-preview",
    )


def test_deployment_name_defaults_to_the_model() -> None:
    plain = DEPLOYMENT.model_copy(update={"azure": None})
    assert "/deployments/gpt-4o-mini/" in azure.urls(plain)[0]


def test_body_is_openais_without_the_model() -> None:
    expected = openai.to_wire(REQ, DEPLOYMENT)
    del expected["model"]
    assert azure.to_wire(REQ, DEPLOYMENT) == expected
    assert azure.to_wire(REQ, DEPLOYMENT)["stream_options"] == {"include_usage": True}


def test_recorded_answer_with_content_filter_results() -> None:
    chunk = azure.WIRE.parse_response(json.loads(fixture("azure/chat_completion.json")))
    assert chunk.text == "Hello! How can I help you today?"
    assert chunk.usage == Usage(prompt_tokens=19, completion_tokens=9)


def test_recorded_stream_with_prompt_filter_results_first() -> None:
    assembler, text = StreamAssembler(), []
    for event in SseDecoder().feed(fixture("azure/stream.sse")):
        chunk = assembler.feed(azure.WIRE.parse_event(event))
        if chunk:
            text.append(chunk.text)
        if assembler.done:
            break
    assert "".join(text) == "Hello! How can I help you today?"
    final = assembler.final()
    assert final.finish_reason is FinishReason.STOP and final.usage == Usage(19, 9)


def test_key_goes_in_the_api_key_header() -> None:
    assert azure.auth_headers("k") == {"api-key": "k"}
