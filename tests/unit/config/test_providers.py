"""Deployment options of the Bedrock, Gemini and Azure providers: endpoints, and where users' keys may go."""

from __future__ import annotations

from typing import Any

import pytest

from sidecar.config.schema import DeploymentConfig


def deployment(**raw: Any) -> DeploymentConfig:
    return DeploymentConfig.model_validate({"model": "m", **raw})


@pytest.mark.parametrize(
    ("raw", "url", "user_keys"),
    [
        ({"provider": "bedrock"}, "https://bedrock-runtime.us-east-1.amazonaws.com", True),
        ({"provider": "bedrock", "bedrock": {"region": "ap-southeast-2"}},
         "https://bedrock-runtime.ap-southeast-2.amazonaws.com", True),
        ({"provider": "bedrock", "base_url": "https://vpce-1.bedrock-runtime.eu-west-1.vpce.amazonaws.com"},
         "https://vpce-1.bedrock-runtime.eu-west-1.vpce.amazonaws.com", False),
        ({"provider": "gemini"}, "https://generativelanguage.googleapis.com/v1beta", True),
        ({"provider": "gemini", "base_url": "http://127.0.0.1:8080/v1beta"},
         "http://127.0.0.1:8080/v1beta", False),
        ({"provider": "azure", "base_url": "https://contoso.openai.azure.com/"}, "https://contoso.openai.azure.com",
         False),
        ({"provider": "azure", "base_url": "https://contoso.openai.azure.com", "allow_user_keys": True},
         "https://contoso.openai.azure.com", True),
    ],
)  # fmt: skip
def test_endpoint_and_user_keys(raw: dict[str, Any], url: str, user_keys: bool) -> None:
    d = deployment(**raw)
    assert (d.url(), d.takes_user_keys()) == (url, user_keys)


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ({"provider": "azure"}, "needs base_url"),
        ({"provider": "openai", "gemini": {}}, "`gemini` options apply only to provider: gemini"),
        ({"provider": "gemini", "api_key": {"env": "K"}, "gemini": {"service_account_file": "/sa.json"}},
         "not both"),
        ({"provider": "azure", "base_url": "https://x.openai.azure.com", "api_key": {"env": "K"},
          "azure": {"auth": "entra_id"}}, "entra_id takes no api_key"),
        ({"provider": "bedrock", "bedrock": {"region": "Europe"}}, "region"),
        ({"provider": "azure", "base_url": "https://x", "azure": {"deployment": "a/b"}}, "deployment"),
    ],
)  # fmt: skip
def test_invalid_options(raw: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        deployment(**raw)
