"""The user-key part of Settings: which key-encryption backend, where records live, the cache."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from sidecar.config.model import ConfigModel
from sidecar.config.redis import REDIS_URL, RedisConnectionConfig, check_redis
from sidecar.config.secrets import SecretRef


class LocalKekConfig(ConfigModel):
    kek_file: Path = Field(
        description="32 random bytes, raw or base64; `sidecar keys new-kek FILE` writes one"
    )


class AwsKmsConfig(ConfigModel):
    key_id: str = Field(min_length=1, description="key ARN or alias/NAME")
    region: str = Field(default="us-east-1", min_length=1)
    endpoint_url: str | None = Field(default=None, pattern=r"^https?://\S+$")
    previous_key_ids: list[str] = Field(
        default_factory=list, description="keys whose wrapped data keys may still be unwrapped and rewrapped"
    )


class VaultConfig(ConfigModel):
    url: str = Field(pattern=r"^https?://\S+$")
    key_name: str = Field(min_length=1, description="a transit key created with derived=true")
    token: SecretRef | None = None
    token_file: Path | None = Field(
        default=None,
        description="a file holding the token, kept alive by its writer (Vault Agent's auto-auth sink); "
        "read again when it changes or Vault refuses the token",
    )
    kubernetes_role: str | None = None
    namespace: str | None = None
    mount_point: str = "transit"
    previous_key_names: list[str] = Field(
        default_factory=list, description="transit keys whose wrapped data keys may still be unwrapped"
    )

    @model_validator(mode="after")
    def _one_auth(self) -> VaultConfig:
        if sum(x is not None for x in (self.token, self.token_file, self.kubernetes_role)) != 1:
            raise ValueError("set exactly one of `token`, `token_file` or `kubernetes_role`")
        return self


class KeyCacheConfig(ConfigModel):
    max_age_seconds: float = Field(default=300.0, gt=0, le=86_400)
    max_uses: int = Field(default=1000, ge=1)
    max_entries: int = Field(default=10_000, ge=1)


class EnvelopeFailuresConfig(ConfigModel):
    """Bounds on the key-backend calls envelopes that do not open may cost (docs/keys.md)."""

    max_per_tenant: int = Field(
        default=20,
        ge=1,
        le=100_000,
        description="inline envelopes of a tenant that may fail to open per window",
    )
    window_seconds: float = Field(default=60.0, gt=0, le=86_400)
    remember_seconds: float = Field(
        default=600.0, ge=0, le=86_400, description="an envelope that failed is refused at once for this long"
    )
    max_remembered: int = Field(default=10_000, ge=1, le=10_000_000)


class RegistrationsConfig(ConfigModel):
    """Bounds on the key-backend calls RegisterKey may make, per sidecar (docs/keys.md)."""

    max_per_user: int = Field(
        default=10, ge=1, le=100_000, description="RegisterKey calls one user may make per window"
    )
    max_per_tenant: int = Field(
        default=200, ge=1, le=1_000_000, description="RegisterKey calls one tenant may make per window"
    )
    window_seconds: float = Field(default=60.0, gt=0, le=86_400)


class KeysSettings(ConfigModel):
    """`backend: none` (the default) turns user keys off: routes then use platform keys only."""

    backend: Literal["none", "local", "aws-kms", "vault"] = "none"
    local: LocalKekConfig | None = None
    aws_kms: AwsKmsConfig | None = None
    vault: VaultConfig | None = None
    store: Literal["sqlite", "redis"] = Field(
        default="sqlite", description="where records live: an SQLite file, or Redis shared by sidecars"
    )
    store_path: Path = Field(default=Path("sidecar-keys.db"), description="SQLite file of encrypted records")
    redis_url: str | None = Field(default=None, pattern=REDIS_URL, description="the Redis of `store: redis`")
    redis: RedisConnectionConfig = RedisConnectionConfig()
    cache: KeyCacheConfig = KeyCacheConfig()
    rotation_per_second: float = Field(
        default=20.0, gt=0, le=10_000, description="backend calls a second while rotating (KMS/Vault quotas)"
    )
    envelope_failures: EnvelopeFailuresConfig = EnvelopeFailuresConfig()
    registrations: RegistrationsConfig = RegistrationsConfig()
    max_keys_per_user: int = Field(
        default=50, ge=1, le=100_000, description="keys one user may keep (a new name past it is refused)"
    )

    @model_validator(mode="after")
    def _backend_configured(self) -> KeysSettings:
        section = {"local": self.local, "aws-kms": self.aws_kms, "vault": self.vault}.get(self.backend, True)
        if section is None:
            raise ValueError(
                f"backend {self.backend!r} needs its section ({self.backend.replace('-', '_')}:)"
            )
        if self.store == "redis" and self.redis_url is None:
            raise ValueError("store 'redis' needs `redis_url` (redis://HOST:PORT/DB)")
        check_redis(self.redis_url, self.redis)
        return self
