"""How a store reaches Redis: TLS, the ACL user and password, timeouts (one model for every store).

Each Redis-backed section (quota, sessions, answers, keys, cache, idempotency) keeps its `redis_url`
and has a `redis:` block of these options. The URL may carry the ACL user and password
(`rediss://user:pass@host:6380/0`); a password is better given as a secret reference
(`password: {env: REDIS_PASSWORD}`).
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field, model_validator

from sidecar.config.model import ConfigModel
from sidecar.config.secrets import SecretRef

REDIS_URL = r"^(redis|rediss|unix)://\S+$"


class RedisTlsConfig(ConfigModel):
    """TLS for a `rediss://` URL: the CA that signed the server's certificate, and a client
    certificate when the server asks for one (`tls-auth-clients yes`)."""

    ca_file: Path | None = Field(default=None, description="PEM bundle; the system CAs when unset")
    cert_file: Path | None = Field(default=None, description="PEM client certificate (with key_file)")
    key_file: Path | None = Field(default=None, description="PEM private key of cert_file")
    check_hostname: bool = Field(default=True, description="the certificate must name the URL's host")

    @model_validator(mode="after")
    def _cert_with_key(self) -> RedisTlsConfig:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("tls: cert_file and key_file go together")
        return self


class RedisConnectionConfig(ConfigModel):
    username: str | None = Field(default=None, min_length=1, description="ACL user (or in the URL)")
    password: SecretRef | None = Field(default=None, description="ACL password (or in the URL)")
    tls: RedisTlsConfig | None = Field(default=None, description="needs a rediss:// URL")
    connect_timeout_seconds: float = Field(default=2.0, gt=0, le=60)
    timeout_seconds: float | None = Field(
        default=None, gt=0, le=60, description="per operation (bounded by the call's deadline); store default"
    )
    max_connections: int = Field(default=128, ge=1, le=100_000)


def check_redis(url: str | None, options: RedisConnectionConfig) -> None:
    """Cross-field rules between a section's `redis_url` and its `redis:` options (ValueError)."""
    if url is None:
        return
    parts = urlsplit(url)
    if options.tls is not None and parts.scheme != "rediss":
        raise ValueError("redis.tls needs a rediss:// redis_url")
    if options.password is not None and parts.password:
        raise ValueError("redis.password and a password in redis_url: give one")
    if options.username is not None and parts.username:
        raise ValueError("redis.username and a user in redis_url: give one")
    if parts.scheme != "unix":
        try:
            parts.port  # noqa: B018  # raises ValueError for a port that is not a number
        except ValueError:
            # Never quoted: with a '/' in the password, what urlsplit takes for the port is the password.
            raise ValueError(
                "redis_url: the port is not a number "
                "(a password with '/', '?', '#' or '@' must be percent-encoded)"
            ) from None
        if not parts.hostname:
            raise ValueError("redis_url: no host")
