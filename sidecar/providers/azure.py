"""Azure OpenAI: the OpenAI Chat Completions wire format at deployment-based URLs.

The request body and the answer are OpenAI's (the OpenAI adapter's pure functions are reused);
what differs is the URL (`/openai/deployments/{deployment}/chat/completions?api-version=...`) and
the credential: the `api-key` header, or an Entra ID bearer token.
"""

from __future__ import annotations

from typing import Any, ClassVar
from urllib.parse import quote

from pydantic import SecretStr

from sidecar.config.providers import AzureOptions
from sidecar.config.schema import DeploymentConfig
from sidecar.providers import openai
from sidecar.providers._http import HttpClient, Timeouts
from sidecar.providers.base import HttpProvider, ProviderRequest, WireFormat
from sidecar.providers.tokens import TokenSource


def to_wire(req: ProviderRequest, deployment: DeploymentConfig) -> dict[str, Any]:
    """OpenAI's body without `model`: the deployment in the URL names the model."""
    body = openai.to_wire(req, deployment)
    del body["model"]
    return body


def auth_headers(key: str) -> dict[str, str]:
    return {"api-key": key}


WIRE = WireFormat(to_wire, openai.parse_response, openai.WIRE.parse_event, auth_headers)


def urls(deployment: DeploymentConfig) -> tuple[str, str]:
    """The chat completions URL of the deployment, and the model list (the zero-cost probe)."""
    options = deployment.azure or AzureOptions()
    name = quote(options.deployment or deployment.model, safe="")
    version = f"api-version={quote(options.api_version, safe='')}"
    base = f"{deployment.url()}/openai"
    return f"{base}/deployments/{name}/chat/completions?{version}", f"{base}/models?{version}"


class AzureOpenAIProvider(HttpProvider):
    """With `auth: entra_id`, `token_source` supplies Entra ID tokens and no API key is configured."""

    name: ClassVar[str] = "azure"
    supports: ClassVar[frozenset[str]] = openai.OpenAIProvider.supports  # the same wire format

    def __init__(
        self,
        deployment: DeploymentConfig,
        *,
        http: HttpClient,
        api_key: SecretStr | None,
        token_source: TokenSource | None = None,
    ) -> None:
        url, probe_url = urls(deployment)
        super().__init__(
            deployment, http=http, url=url, probe_url=probe_url, headers={}, wire=WIRE, api_key=api_key
        )
        self._tokens = token_source

    async def _request_headers(self, req: ProviderRequest | None, timeouts: Timeouts) -> dict[str, str]:
        if self._tokens is None or (req is not None and req.api_key is not None):
            return await super()._request_headers(req, timeouts)
        token = await self._tokens.token(timeouts.deadline)
        return {"authorization": f"Bearer {token}"}
