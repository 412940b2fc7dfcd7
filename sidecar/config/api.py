"""The API's own settings: who may call what (auth), the admin service, idempotent retries."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, model_validator

from sidecar.config.model import ConfigModel
from sidecar.config.redis import REDIS_URL, RedisConnectionConfig, check_redis
from sidecar.config.secrets import SecretRef

# "GenerationService", "orchestrator.v1.GenerationService", "GenerationService/Generate" or "*".
GRANT = r"^(\*|(orchestrator\.v1\.)?[A-Z][A-Za-z]*Service(/[A-Z][A-Za-z]*)?)$"
_TENANT = r"^[A-Za-z0-9][A-Za-z0-9._:@\-]{0,127}$"


def _octal(value: object) -> object:
    """A file mode written as text is octal, whatever its prefix: "0660", "0o660" and "660" are all
    0o660 (YAML reads an unquoted 0660 as octal already; 660 unquoted is a decimal number)."""
    if isinstance(value, str):
        text = value.strip().lower().removeprefix("0o")
        try:
            return int(text, 8)
        except ValueError:
            return value  # refused by the int check, with the key named
    return value


FileMode = Annotated[int, BeforeValidator(_octal), Field(ge=0, le=0o777)]


def _off(value: object) -> object:
    """YAML 1.1 reads an unquoted `off` as false: `mode: off` means "off"."""
    return "off" if value is False else value


class CredentialConfig(ConfigModel):
    """One credential: a bearer token (by reference) and what it may call."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_\-]{0,63}$", description="for logs, never the token")
    token: SecretRef
    allow: list[str] = Field(
        min_length=1,
        description="services or Service/Method names this credential may call; '*' for all",
    )
    tenants: list[str] | None = Field(default=None, description="tenants it may act for; unset: any tenant")

    @model_validator(mode="after")
    def _shapes(self) -> CredentialConfig:
        from sidecar.authz.catalog import unknown_grants  # the protos' service catalogue

        bad = [g for g in self.allow if not re.fullmatch(GRANT, g)] or unknown_grants(self.allow)
        bad += [t for t in self.tenants or () if not re.fullmatch(_TENANT, t)]
        if bad:
            raise ValueError(f"credential {self.name}: malformed entries {bad}")
        return self


class AuthSettings(ConfigModel):
    token: SecretRef | None = Field(
        default=None, description="a shared token with data-plane access (every service but admin)"
    )
    credentials: list[CredentialConfig] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique(self) -> AuthSettings:
        names = [c.name for c in self.credentials]
        if len(set(names)) != len(names):
            raise ValueError("auth.credentials: names must be unique")
        return self

    @property
    def configured(self) -> bool:
        return self.token is not None or bool(self.credentials)


class AdminSettings(ConfigModel):
    """The AdminService: off by default; on the main listener or on its own Unix socket."""

    mode: Annotated[Literal["off", "listener", "unix_socket"], BeforeValidator(_off)] = "off"
    unix_socket: Path | None = None
    socket_mode: FileMode = Field(default=0o600, description="file mode of the socket (octal: 0600)")

    @model_validator(mode="after")
    def _socket(self) -> AdminSettings:
        if (self.mode == "unix_socket") != (self.unix_socket is not None):
            raise ValueError("admin.unix_socket is set exactly when admin.mode is unix_socket")
        return self


class IdempotencySettings(ConfigModel):
    """Unary Generate (and Embed) repeated with one tenant (or, naming none, by one credential) and
    request_id returns the first answer."""

    enabled: bool = True
    window_seconds: float = Field(default=600.0, gt=0, le=7 * 86_400)
    backend: Literal["memory", "redis"] = "memory"
    max_entries: int = Field(default=10_000, ge=1, le=10_000_000, description="memory backend bound")
    max_response_bytes: int = Field(
        default=1024 * 1024, ge=1024, le=64 * 1024 * 1024, description="larger answers are not kept"
    )
    redis_url: str | None = Field(default=None, pattern=REDIS_URL)
    redis: RedisConnectionConfig = RedisConnectionConfig()
    key_prefix: str = Field(default="sidecar:idem:", max_length=64)

    @model_validator(mode="after")
    def _redis(self) -> IdempotencySettings:
        if self.backend == "redis" and self.redis_url is None:
            raise ValueError("idempotency.backend redis needs idempotency.redis_url")
        check_redis(self.redis_url, self.redis)
        return self
