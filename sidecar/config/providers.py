"""Provider-specific deployment options: AWS Bedrock, Google Gemini, Azure OpenAI."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from sidecar.config.model import ConfigModel


class BedrockOptions(ConfigModel):
    """AWS Bedrock Converse: the region, and where credentials come from.

    Without `api_key` on the deployment, requests are SigV4-signed with the AWS credential chain
    (environment, shared config `profile`, web identity / IRSA, container and instance roles).
    With `api_key` (a Bedrock API key), that key goes as a bearer token instead.
    """

    region: str = Field(default="us-east-1", pattern=r"^[a-z]{2}(-[a-z]+)+-\d+$")
    profile: str | None = Field(default=None, min_length=1, description="shared config profile")

    def default_url(self) -> str:
        return f"https://bedrock-runtime.{self.region}.amazonaws.com"


class GeminiOptions(ConfigModel):
    """Google Gemini: an API key (the deployment's `api_key`) or a service account."""

    service_account_file: Path | None = Field(
        default=None, description="a service-account JSON key file; OAuth2 tokens are minted from it"
    )
    scopes: list[str] = Field(
        default_factory=lambda: ["https://www.googleapis.com/auth/generative-language"], min_length=1
    )


class AzureOptions(ConfigModel):
    """Azure OpenAI: the deployment name in the URL, the API version, and the credential kind."""

    deployment: str | None = Field(
        default=None, pattern=r"^[A-Za-z0-9._-]{1,64}$", description="Azure deployment name; default: model"
    )
    api_version: str = Field(default="2024-10-21", pattern=r"^\d{4}-\d{2}-\d{2}(-preview)?$")
    auth: Literal["api_key", "entra_id"] = Field(
        default="api_key", description="api_key: the `api-key` header; entra_id: a bearer token"
    )
    entra_scope: str = Field(default="https://cognitiveservices.azure.com/.default", min_length=1)
