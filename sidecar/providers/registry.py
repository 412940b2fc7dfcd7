"""Builds one Provider per configured deployment, all sharing one HTTP client."""

from __future__ import annotations

from collections.abc import Mapping

from sidecar.config.schema import Config, DeploymentConfig
from sidecar.providers._http import HttpClient
from sidecar.providers.anthropic import AnthropicProvider
from sidecar.providers.anthropic import capabilities as anthropic_capabilities
from sidecar.providers.azure import AzureOpenAIProvider
from sidecar.providers.base import Capabilities, Provider
from sidecar.providers.bedrock_wire import SUPPORTS as BEDROCK_SUPPORTS
from sidecar.providers.bedrock_wire import capabilities as bedrock_capabilities
from sidecar.providers.echo import DESCRIPTION as ECHO_DESCRIPTION
from sidecar.providers.echo import SUPPORTS as ECHO_SUPPORTS
from sidecar.providers.echo import EchoProvider
from sidecar.providers.gemini import GeminiProvider
from sidecar.providers.gemini_wire import capabilities as gemini_capabilities
from sidecar.providers.openai import OpenAIProvider
from sidecar.providers.tokens import AzureEntraTokens, GoogleServiceAccountTokens, TokenSource


def build_provider(config: Config, deployment: DeploymentConfig, http: HttpClient) -> Provider:
    api_key = config.secret(deployment.api_key)
    match deployment.provider:
        case "openai":
            return OpenAIProvider(deployment, http=http, api_key=api_key)
        case "anthropic":
            return AnthropicProvider(deployment, http=http, api_key=api_key)
        case "bedrock":
            from sidecar.providers.bedrock import BedrockProvider  # botocore only when configured

            return BedrockProvider(deployment, http=http, api_key=api_key)
        case "gemini":
            return GeminiProvider(
                deployment, http=http, api_key=api_key, token_source=_google_tokens(deployment)
            )
        case "azure":
            return AzureOpenAIProvider(
                deployment, http=http, api_key=api_key, token_source=_entra(deployment)
            )
        case "echo":
            return EchoProvider(deployment, clock=http.clock)


def _google_tokens(deployment: DeploymentConfig) -> TokenSource | None:
    options = deployment.gemini
    if options is None or options.service_account_file is None:
        return None
    return GoogleServiceAccountTokens(options.service_account_file, options.scopes)


def _entra(deployment: DeploymentConfig) -> TokenSource | None:
    options = deployment.azure
    if options is None or options.auth != "entra_id":
        return None
    return AzureEntraTokens(options.entra_scope)


def supports(kind: str) -> frozenset[str]:
    """The features a provider kind has by default (a deployment's `capabilities` may override)."""
    match kind:
        case "openai":
            return OpenAIProvider.supports
        case "anthropic":
            return AnthropicProvider.supports
        case "azure":
            return AzureOpenAIProvider.supports
        case "gemini":
            return GeminiProvider.supports
        case "echo":
            return ECHO_SUPPORTS
        case "bedrock":
            return BEDROCK_SUPPORTS
    return frozenset()  # an unknown kind (the configuration refuses one) supports nothing


def capabilities(deployment: DeploymentConfig) -> Capabilities:
    if deployment.provider == "bedrock":
        return bedrock_capabilities(deployment)
    if deployment.provider == "gemini":
        return gemini_capabilities(deployment)
    if deployment.provider == "anthropic":
        return anthropic_capabilities(deployment)
    return Capabilities.of(deployment, supports(deployment.provider))


def build_providers(config: Config, http: HttpClient) -> Mapping[str, Provider]:
    return {
        name: build_provider(config, deployment, http)
        for name, deployment in config.policy.deployments.items()
    }


def describe(deployment: DeploymentConfig) -> str:
    """What ListModels shows for a deployment; the echo double always says what it is."""
    if deployment.provider == "echo":
        return ECHO_DESCRIPTION
    return deployment.description or f"{deployment.provider} model {deployment.model}"
