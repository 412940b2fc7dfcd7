"""Secrets in configuration are references, never values."""

from __future__ import annotations

from pydantic import Field

from sidecar.config.model import ConfigModel


class SecretRef(ConfigModel):
    """A reference to a secret; the value never appears in configuration."""

    env: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", description="environment variable")
