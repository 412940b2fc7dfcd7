"""Builds one Provider per configured deployment, all sharing one HTTP client."""

from __future__ import annotations

from collections.abc import Mapping

from sidecar.config.schema import Config, DeploymentConfig
from sidecar.providers._http import HttpClient
from sidecar.providers.anthropic import AnthropicProvider
from sidecar.providers.base import Capabilities, Provider
from sidecar.providers.echo import DESCRIPTION as ECHO_DESCRIPTION
from sidecar.providers.echo import SUPPORTS as ECHO_SUPPORTS
from sidecar.providers.echo import EchoProvider
from sidecar.providers.openai import OpenAIProvider


def build_provider(config: Config, deployment: DeploymentConfig, http: HttpClient) -> Provider:
    api_key = config.secret(deployment.api_key)
    match deployment.provider:
        case "openai":
            return OpenAIProvider(deployment, http=http, api_key=api_key)
        case "anthropic":
            return AnthropicProvider(deployment, http=http, api_key=api_key)
        case "echo":
            return EchoProvider(deployment)


def supports(kind: str) -> frozenset[str]:
    """The features a provider kind has by default (a deployment's `capabilities` may override)."""
    match kind:
        case "openai":
            return OpenAIProvider.supports
        case "anthropic":
            return AnthropicProvider.supports
        case "echo":
            return ECHO_SUPPORTS
    return frozenset()


def capabilities(deployment: DeploymentConfig) -> Capabilities:
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
