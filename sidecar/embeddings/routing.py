"""Embedding deployments built on first use, and routes that fall back over them.

Each deployment's embedder is built when a call first needs it: the local model is read then (in
a worker thread, once, under a lock) unless `embeddings.load: start` reads it when the server
starts. A route tries its deployments in order; a deployment whose circuit breaker (the same
breakers as generation routes, under an `embed:` name) is open is skipped, and a retryable
failure moves to the next one. Remote embedders import nothing beyond the HTTP client.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pydantic import SecretStr

from sidecar.config.embeddings import EmbeddingDeployment, EmbeddingsPolicy
from sidecar.config.schema import DeploymentConfig
from sidecar.config.secrets import SecretRef
from sidecar.core.clock import Deadline
from sidecar.core.errors import (
    CircuitOpenError,
    FieldViolation,
    InvalidRequestError,
    ProviderAuthError,
    ProviderError,
    ProvidersUnavailableError,
    SidecarError,
)
from sidecar.embeddings.base import Embedder, Embeddings
from sidecar.providers._http import HttpClient
from sidecar.routing.breaker import Breakers

SecretLookup = Callable[[SecretRef | None], SecretStr | None]


@dataclass(frozen=True, slots=True)
class Served:
    deployment: str
    config: EmbeddingDeployment
    embeddings: Embeddings


def model_identity(d: EmbeddingDeployment) -> str:
    """What makes two deployments' vectors comparable: kind, model and dimensions."""
    return f"{d.kind}:{d.model}:{d.dimensions or ''}"


class EmbeddingDeployments:
    def __init__(self, policy: EmbeddingsPolicy, *, http: HttpClient, secret: SecretLookup) -> None:
        self._policy, self._http, self._secret = policy, http, secret
        self._building: dict[str, asyncio.Future[Embedder]] = {}

    async def get(self, name: str) -> Embedder:
        """The deployment's embedder, built once: callers that give up waiting (a timeout, a
        cancelled call) leave the build running for the next one instead of starting it again."""
        building = self._building.get(name)
        if building is None or (building.done() and building.exception() is not None):
            building = asyncio.ensure_future(self._build(self._policy.deployments[name]))
            building.add_done_callback(_observed)  # a failure all callers gave up on is not "never retrieved"
            self._building[name] = building
        return await asyncio.shield(building)

    async def start(self) -> None:
        """`load: start`: build every local deployment now (reads the model, about a second)."""
        if self._policy.load == "start":
            for name, d in self._policy.deployments.items():
                if d.kind == "local":
                    await self.get(name)

    async def _build(self, d: EmbeddingDeployment) -> Embedder:
        if d.kind == "local":
            from sidecar.embeddings.local import LocalEmbedder

            return await asyncio.to_thread(LocalEmbedder.load)
        deployment = DeploymentConfig(
            provider=d.kind, model=d.model, base_url=d.base_url, api_key=d.api_key,
            read_timeout_seconds=d.read_timeout_seconds, bedrock=d.bedrock, gemini=d.gemini,
        )  # fmt: skip
        key = self._secret(d.api_key)
        if d.kind == "openai":
            from sidecar.embeddings.openai import OpenAIEmbedder

            return OpenAIEmbedder(deployment, http=self._http, api_key=key, dimensions=d.dimensions)
        if d.kind == "bedrock":
            from sidecar.embeddings.bedrock import BedrockEmbedder

            return BedrockEmbedder(deployment, http=self._http, api_key=key, dimensions=d.dimensions)
        from sidecar.embeddings.gemini import GeminiEmbedder
        from sidecar.providers.tokens import GoogleServiceAccountTokens

        account = d.gemini.service_account_file if d.gemini is not None else None
        tokens = (
            None
            if account is None or d.gemini is None
            else GoogleServiceAccountTokens(account, d.gemini.scopes)
        )
        return GeminiEmbedder(
            deployment, http=self._http, api_key=key, token_source=tokens, dimensions=d.dimensions
        )

    async def aclose(self) -> None:
        for building in self._building.values():
            if not building.done():
                building.cancel()
            elif building.exception() is None:
                await building.result().aclose()
        self._building.clear()


class EmbeddingRouter:
    def __init__(
        self, policy: EmbeddingsPolicy, deployments: EmbeddingDeployments, breakers: Breakers
    ) -> None:
        self._policy, self._deployments, self._breakers = policy, deployments, breakers
        self.deployments = deployments

    def alias(self, requested: str) -> str:
        """The route a call names ("" = the default); an unknown one is the caller's error."""
        alias = requested or self._policy.default_route
        if alias not in self._policy.routes:
            known = ", ".join(sorted(self._policy.routes))
            raise InvalidRequestError(
                [FieldViolation("route", f"no embedding route {alias!r}; known: {known}")]
            )
        return alias

    def candidates(self, alias: str) -> list[tuple[str, EmbeddingDeployment]]:
        return [(n, self._policy.deployments[n]) for n in self._policy.routes[alias].deployments]

    async def attempt(self, name: str, texts: Sequence[str], deadline: Deadline) -> Embeddings:
        """One deployment's answer, its breaker told how it went; CircuitOpenError when it is open."""
        breaker = self._breakers.get(f"embed:{name}")
        if not breaker.allow():
            raise CircuitOpenError(f"embedding deployment {name}: circuit open")
        try:
            embedder = await self._deployments.get(name)
            result = await embedder.embed(texts, deadline=deadline)
        except ProviderError as exc:
            if exc.retryable and exc.deployment_fault:  # the deployment's own failure (core/errors.py)
                breaker.record_failure(retry_after=exc.retry_after)
            else:
                breaker.release()
            raise
        except BaseException:
            breaker.release()
            raise
        breaker.record_success()
        return result


def all_failed(alias: str, failures: Sequence[tuple[str, ProviderError]]) -> SidecarError:
    """Each deployment and its reason only, as for generation: the upstreams' own text (which may
    quote the request back or name internal hosts) is not passed on. Every deployment refusing our
    key is that (INTERNAL / PROVIDER_AUTH_FAILED: our misconfiguration, alerted on), as a chat route
    says it (pipeline/route.py), not a provider outage for the caller to retry."""
    if failures and all(isinstance(err, ProviderAuthError) for _, err in failures):
        return failures[-1][1]
    summary = ", ".join(f"{name}: {err.reason}" for name, err in failures) or "no deployment"
    waits = [err.retry_after for _, err in failures if err.retry_after is not None]
    return ProvidersUnavailableError(
        f"every deployment of embedding route {alias!r} failed ({summary})",
        metadata={"model": alias, "attempts": str(len(failures))},
        retry_after=min(waits) if waits else None,
    )


def _observed(building: asyncio.Future[Embedder]) -> None:
    if not building.cancelled():
        building.exception()
