"""Config = Settings (needs a restart) + Policy (routes, deployments, limits). Frozen, strict."""

from __future__ import annotations

import ipaddress
import re
from collections import Counter
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from sidecar.config.admission import AdmissionPolicy
from sidecar.config.answers import AnswersPolicy
from sidecar.config.api import AdminSettings, AuthSettings, FileMode, IdempotencySettings
from sidecar.config.cache import CacheSettings
from sidecar.config.context import ChatTemplateConfig, ContextPolicy, TokenizerName
from sidecar.config.embeddings import EmbeddingsPolicy
from sidecar.config.experiments import NAME as EXPERIMENT_NAME
from sidecar.config.experiments import ExperimentConfig
from sidecar.config.keys import KeysSettings
from sidecar.config.model import (
    MAX_CONTEXT_TOKENS,
    MAX_OUTPUT_TOKENS,
    MAX_PRICE_PER_MILLION,
    ConfigModel,
    EndpointUrl,
    HostPort,
)
from sidecar.config.personas import PersonasConfig
from sidecar.config.providers import AzureOptions, BedrockOptions, GeminiOptions
from sidecar.config.quota import QuotaPolicy, TierConfig, limit_shape_problems
from sidecar.config.routing import RouteConfig, RoutingPolicy
from sidecar.config.secrets import SecretRef
from sidecar.config.telemetry import TelemetrySettings
from sidecar.config.tiers import DEFAULT_TIERS, TIER_NAME, TierAssignment

ProviderKind = Literal["openai", "anthropic", "bedrock", "gemini", "azure", "echo"]

DEFAULT_BASE_URLS: dict[str, str] = {
    "openai": "https://api.openai.com/v1",
    "anthropic": "https://api.anthropic.com",
    "gemini": "https://generativelanguage.googleapis.com/v1beta",
}


class ListenSettings(ConfigModel):
    address: HostPort = "127.0.0.1:50051"
    unix_socket: Path | None = None
    unix_socket_mode: FileMode = Field(
        default=0o660,
        description="file mode of unix_socket (octal: 0660, owner and group may connect); set when it is "
        "created, never wider meanwhile",
    )


class HttpSettings(ConfigModel):
    max_connections: int = Field(default=512, ge=1, le=100_000)
    max_connections_per_host: int = Field(default=256, ge=0, le=100_000)
    connect_timeout_seconds: float = Field(default=5.0, gt=0, le=300)
    keepalive_seconds: float = Field(
        default=30.0,
        gt=0,
        le=3600,
        description="an idle upstream connection older than this is closed, not reused",
    )
    ca_file: Path | None = Field(
        default=None,
        description="PEM file of the CAs upstream TLS certificates are checked against (default: system)",
    )
    error_body_timeout_seconds: float = Field(
        default=2.0,
        gt=0,
        le=60,
        description="how long the body of an upstream error (HTTP status >= 300) is read, at most 64 KiB; "
        "the error is classified by its status with what arrived by then",
    )
    max_retry_after_seconds: float = Field(
        default=300.0,
        gt=0,
        le=86_400,
        description="cap on an upstream Retry-After: the breaker's open time and clients' RetryInfo",
    )


class MemorySettings(ConfigModel):
    """Allocator settings (glibc only; see sidecar/telemetry/memory.py and docs/memory.md)."""

    malloc_arena_max: int = Field(default=2, ge=0, le=64, description="0: glibc's default (8 per core)")
    trim_after_request_bytes: int = Field(
        default=1024 * 1024, ge=0, description="give freed heap back after requests this large; 0: never"
    )
    trim_delay_seconds: float = Field(default=2.0, gt=0, le=600)


def _loopback(address: str) -> bool:
    """Is the listener's host a loopback address? An IP address is checked as one; of names, only
    `localhost`: another name (127.example.internal) resolves to wherever DNS says."""
    host = address.rsplit(":", 1)[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Settings(ConfigModel):
    listen: ListenSettings = ListenSettings()
    auth: AuthSettings = AuthSettings()
    admin: AdminSettings = AdminSettings()
    idempotency: IdempotencySettings = IdempotencySettings()
    http: HttpSettings = HttpSettings()
    shutdown_grace_seconds: float = Field(default=10.0, ge=0, le=600)
    stream_write_timeout_seconds: float = Field(
        default=30.0,
        gt=0,
        le=3600,
        description="how long one StreamGenerate event may wait to be sent to a caller that does not "
        "read (gRPC flow control); then the call ends DEADLINE_EXCEEDED / CALLER_NOT_READING",
    )
    max_receive_message_bytes: int = Field(default=8 * 1024 * 1024, ge=1024, le=256 * 1024 * 1024)
    max_concurrent_rpcs: int = Field(
        default=2048,
        ge=1,
        le=100_000,
        description="RPCs served at once over every listener; more are RESOURCE_EXHAUSTED at once",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    keys: KeysSettings = KeysSettings()
    cache: CacheSettings = CacheSettings()
    telemetry: TelemetrySettings = TelemetrySettings()
    memory: MemorySettings = MemorySettings()

    @model_validator(mode="after")
    def _exposed_needs_a_token(self) -> Settings:
        if not _loopback(self.listen.address) and not self.auth.configured:
            raise ValueError(
                f"listen.address {self.listen.address} is reachable beyond this host: set auth.token "
                "(anyone who can reach the port could otherwise use registered keys)"
            )
        if self.admin.mode == "listener" and not self.auth.configured:
            raise ValueError(
                "admin.mode listener needs auth credentials: anyone who reaches the port could "
                "otherwise rotate keys and read every tenant's usage (or use admin.mode unix_socket)"
            )
        return self


class PriceConfig(ConfigModel):
    input_per_million: float = Field(default=0.0, ge=0, le=MAX_PRICE_PER_MILLION)
    output_per_million: float = Field(default=0.0, ge=0, le=MAX_PRICE_PER_MILLION)
    cache_write_per_million: float | None = Field(
        default=None,
        ge=0,
        le=MAX_PRICE_PER_MILLION,
        description="prompt tokens written to the provider's cache; unset: input price",
    )


class EchoOptions(ConfigModel):
    """The echo provider's knobs: latency and chunking, for demos, tests and benchmarks."""

    first_token_delay_seconds: float = Field(default=0.0, ge=0, le=60)
    chunk_delay_seconds: float = Field(default=0.0, ge=0, le=60)
    tokens_per_chunk: int = Field(default=4, ge=1, le=10_000)
    faults: bool = Field(default=False, description="obey [[fault:...]] directives (providers/faults.py)")


class CapabilityOverrides(ConfigModel):
    """What a deployment can do, where it differs from its provider's defaults (unset: the default)."""

    tools: bool | None = None
    json_schema: bool | None = None
    images: bool | None = None
    reasoning: bool | None = None
    max_request_bytes: int | None = Field(
        default=None,
        ge=0,
        description="the largest request body it takes, inline images included (0: no limit); "
        "default: the provider's documented limit (docs/providers.md)",
    )
    max_images: int | None = Field(
        default=None, ge=0, description="the most images it takes in one request (0: no limit)"
    )


class DeploymentConfig(ConfigModel):
    provider: ProviderKind
    model: str = Field(min_length=1, max_length=256)
    base_url: EndpointUrl | None = None
    api_key: SecretRef | None = None
    price: PriceConfig = PriceConfig()
    context_window: int = Field(default=128_000, ge=1, le=MAX_CONTEXT_TOKENS)
    default_max_tokens: int = Field(
        default=1024, ge=1, le=MAX_OUTPUT_TOKENS, description="sent when a call sets none"
    )
    read_timeout_seconds: float = Field(default=60.0, gt=0, le=3600)
    stream_idle_timeout_seconds: float = Field(
        default=300.0,
        gt=0,
        le=3600,
        description="the longest wait for the next event that carries data in a streamed answer (SSE "
        "keep-alive comments do not count); then the attempt fails PROVIDER_TIMEOUT",
    )
    probe: bool = Field(
        default=True,
        description="health-probe it (routing.probes); false for a server without the probe's "
        "endpoint (a model list), which would be taken for unhealthy: its breaker still guards it",
    )
    max_tokens_field: Literal["max_tokens", "max_completion_tokens"] = "max_tokens"
    anthropic_version: str = "2023-06-01"
    echo: EchoOptions | None = None
    bedrock: BedrockOptions | None = None
    gemini: GeminiOptions | None = None
    azure: AzureOptions | None = None
    capabilities: CapabilityOverrides = CapabilityOverrides()
    description: str = ""
    weight: float = Field(default=1.0, ge=0, description="for the weighted strategy")
    priority: int = Field(default=0, description="lower first, for the priority strategy")
    tags: list[str] = Field(default_factory=list, description="e.g. cheap, for the complexity strategy")
    allow_user_keys: bool = Field(
        default=False,
        description="send users' own keys here; implied for the provider's official base URL only",
    )
    tokenizer: TokenizerName = Field(
        default="auto", description="auto: tiktoken for OpenAI model families, else the estimate"
    )
    chat_template: ChatTemplateConfig | None = Field(
        default=None, description="the framing of a server-side chat template, instead of OpenAI's"
    )

    @model_validator(mode="after")
    def _provider_specific(self) -> DeploymentConfig:
        for kind in ("echo", "bedrock", "gemini", "azure"):
            if getattr(self, kind) is not None and self.provider != kind:
                raise ValueError(f"`{kind}` options apply only to provider: {kind}")
        if self.provider == "azure" and self.base_url is None:
            raise ValueError("provider azure needs base_url: https://<resource>.openai.azure.com")
        account = self.gemini.service_account_file if self.gemini is not None else None
        if account is not None and self.api_key is not None:
            raise ValueError("gemini: set api_key or gemini.service_account_file, not both")
        if self.azure is not None and self.azure.auth == "entra_id" and self.api_key is not None:
            raise ValueError("azure: auth entra_id takes no api_key")
        return self

    def url(self) -> str:
        if self.provider == "bedrock" and self.base_url is None:
            return (self.bedrock or BedrockOptions()).default_url()
        return (self.base_url or DEFAULT_BASE_URLS.get(self.provider, "")).rstrip("/")

    def official_url(self) -> str:
        """The provider's own public endpoint, or "" where every endpoint is the customer's own (Azure)."""
        if self.provider == "bedrock":
            return (self.bedrock or BedrockOptions()).default_url()
        return DEFAULT_BASE_URLS.get(self.provider, "").rstrip("/")

    def takes_user_keys(self) -> bool:
        """A user's key goes only to the provider that issued it, unless this server is trusted."""
        official = bool(self.official_url()) and self.url() == self.official_url()
        return self.provider == "echo" or official or self.allow_user_keys


class RequestLimits(ConfigModel):
    """Bounds on what a caller may send; checked before anything is routed or charged."""

    max_messages: int = Field(default=512, ge=1)
    max_message_chars: int = Field(default=200_000, ge=1)
    max_total_chars: int = Field(default=2_000_000, ge=1)
    max_tokens_cap: int = Field(default=32_768, ge=1)
    max_stop_sequences: int = Field(default=4, ge=0)
    max_stop_chars: int = Field(default=64, ge=1)
    max_metadata_entries: int = Field(default=32, ge=0)
    max_metadata_key_chars: int = Field(default=64, ge=1)
    max_metadata_value_chars: int = Field(default=512, ge=0)


class Policy(ConfigModel):
    default_route: str
    deployments: dict[str, DeploymentConfig] = Field(min_length=1)
    routes: dict[str, RouteConfig] = Field(min_length=1)
    limits: RequestLimits = RequestLimits()
    routing: RoutingPolicy = RoutingPolicy()
    tiers: dict[str, TierConfig] = Field(
        default_factory=lambda: {name: TierConfig() for name in DEFAULT_TIERS}, min_length=1
    )
    tier_assignment: TierAssignment = TierAssignment()
    personas: PersonasConfig = PersonasConfig()
    context: ContextPolicy = ContextPolicy()
    embeddings: EmbeddingsPolicy = EmbeddingsPolicy()
    admission: AdmissionPolicy | None = Field(default=None, description="no section: no admission control")
    experiments: dict[str, ExperimentConfig] = Field(
        default_factory=dict, description="at most one per route"
    )

    @model_validator(mode="after")
    def _semantic_routes(self) -> Policy:
        problems = [
            f"routes.{alias}.cache.semantic.embedding_route: unknown embedding route {sem.embedding_route!r}"
            for alias, route in self.routes.items()
            if (sem := route.cache.semantic) is not None and sem.enabled
            if (sem.embedding_route or self.embeddings.default_route) not in self.embeddings.routes
        ]
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @model_validator(mode="after")
    def _summary_route(self) -> Policy:
        summary = self.context.summary
        if summary is not None and summary.route not in self.routes:
            raise ValueError(f"context.summary.route: unknown route {summary.route!r}")
        return self

    quota: QuotaPolicy | None = Field(default=None, description="no section: no quotas are enforced")
    answers: AnswersPolicy | None = Field(default=None, description="no section: no answer policy")

    @model_validator(mode="after")
    def _references(self) -> Policy:
        problems = [
            f"routes.{alias}.deployments: unknown deployment {name!r}"
            for alias, route in self.routes.items()
            for name in route.deployments
            if name not in self.deployments
        ]
        problems += [  # each listing is tried as another deployment: retries past max_attempts, unbudgeted
            f"routes.{alias}.deployments: deployment {name!r} is listed {n} times"
            for alias, route in self.routes.items()
            for name, n in Counter(route.deployments).items()
            if n > 1
        ]
        problems += [
            f"routes.{alias}.user_key: deployment {name!r} is not the provider's official endpoint; "
            "set allow_user_keys: true on it if users' own keys may go there"
            for alias, route in self.routes.items()
            if route.user_key != "never"
            for name in route.deployments
            if name in self.deployments and not self.deployments[name].takes_user_keys()
        ]
        if self.default_route not in self.routes:
            problems.append(f"default_route: unknown route {self.default_route!r}")
        problems += [
            f"{path}: unknown tier {tier!r}"
            for path, tier in self.tier_assignment.referenced()
            if tier not in self.tiers
        ]
        problems += [
            f"tiers.{name}: a tier name is lowercase letters, digits, _ and -"
            for name in self.tiers
            if not re.fullmatch(TIER_NAME, name)
        ]
        problems += self.personas.problems(self.routes, self.tiers)
        problems += self._quota_references()
        problems += self._experiment_references()
        if self.admission is not None:
            problems += self.admission.problems(set(self.deployments))
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def _experiment_references(self) -> list[str]:
        routes = {alias: route.deployments for alias, route in self.routes.items()}
        personas = {p.id for p in self.personas.all()}
        problems = [
            f"experiments.{name}: a name is lowercase letters, digits, _ and -"
            for name in self.experiments
            if not re.fullmatch(EXPERIMENT_NAME, name)
        ]
        seen: dict[str, str] = {}
        for name, exp in self.experiments.items():
            problems += exp.problems(name, routes, personas)
            if (other := seen.setdefault(exp.route, name)) != name:
                problems.append(f"experiments.{name}.route: route {exp.route!r} already holds {other!r}")
        return problems

    def _quota_references(self) -> list[str]:
        problems = [
            f"tiers.{name}.allowed_routes: unknown route {alias!r}"
            for name, tier in self.tiers.items()
            for alias in tier.allowed_routes or ()
            if alias not in self.routes
        ]
        if self.quota is not None:
            problems += limit_shape_problems(self.quota, self.tiers)
        return problems + [
            f"routes.{alias}.budget_fallback: {route.budget_fallback!r} is not one of the route's deployments"
            for alias, route in self.routes.items()
            if route.budget_fallback is not None and route.budget_fallback not in route.deployments
        ]


class Config(ConfigModel):
    settings: Settings = Settings()
    policy: Policy
    secrets: dict[str, SecretStr] = Field(
        default_factory=dict, description="resolved SecretRef values, filled by load_config"
    )

    @field_validator("secrets", mode="before")
    @classmethod
    def _not_input(cls, value: object) -> object:
        """Filled by load_config from the references, never read from a file or an override."""
        raise ValueError("not a configuration key; a secret is a reference ({env: VAR}) where it is used")

    def secret(self, ref: SecretRef | None) -> SecretStr | None:
        return None if ref is None else self.secrets.get(ref.env)

    @model_validator(mode="after")
    def _answer_references(self) -> Config:
        answers = self.policy.answers
        if answers is None:
            return self
        auth = self.settings.auth
        credentials = {c.name for c in auth.credentials} | {"token", "anonymous"}
        problems = answers.problems(
            {p.id for p in self.policy.personas.all()},
            self.policy.tiers,
            credentials,
            self.policy.embeddings.routes,
            self.policy.routes,
        )
        if problems:
            raise ValueError("; ".join(problems))
        return self
