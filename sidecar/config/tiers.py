"""Tiers: named service levels (free, basic, professional, enterprise) and how a call's tier is found.

The quota policy attaches limits to tiers and personas restrict themselves to tiers; both read the
tier the edge resolved onto `Call.tier`. `source: config` looks the caller up in the `users` map
("tenant/user" keys), then the `tenants` map, then falls back to `default`. `source: metadata`
trusts the application: the request metadata entry `metadata_key` names the tier (an unknown name is
INVALID_ARGUMENT on `metadata[<key>]`), and a request without it gets `default`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from pydantic import Field

from sidecar.config.model import ConfigModel

DEFAULT_TIERS = ("free", "basic", "professional", "enterprise")
TIER_NAME = r"^[a-z][a-z0-9_-]{0,31}$"


class TierAssignment(ConfigModel):
    source: Literal["config", "metadata"] = "config"
    metadata_key: str = Field(default="tier", min_length=1, max_length=64)
    default: str = Field(default="free", pattern=TIER_NAME)
    tenants: dict[str, str] = Field(default_factory=dict, description="tenant id -> tier")
    users: dict[str, str] = Field(default_factory=dict, description='"tenant/user" -> tier')

    def referenced(self) -> list[tuple[str, str]]:
        """(config path, tier name) of every tier this assignment names, for the reference check."""
        refs = [("tier_assignment.default", self.default)]
        refs += [(f"tier_assignment.tenants.{t}", tier) for t, tier in self.tenants.items()]
        refs += [(f"tier_assignment.users.{u}", tier) for u, tier in self.users.items()]
        return refs


class UnknownTier(ValueError):
    """The request metadata named a tier the policy does not define."""

    def __init__(self, field: str, known: tuple[str, ...]) -> None:
        super().__init__(f"{field}: one of {', '.join(known)}")
        self.field, self.known = field, known


def resolve_tier(
    assign: TierAssignment,
    known: tuple[str, ...],
    *,
    tenant: str,
    user: str,
    metadata: Mapping[str, str],
) -> str:
    """The caller's tier; raises UnknownTier when trusted metadata names one that does not exist."""
    if assign.source == "metadata":
        named = metadata.get(assign.metadata_key)
        if named is None:
            return assign.default
        if named not in known:
            raise UnknownTier(f"metadata[{assign.metadata_key}]", known)
        return named
    if tenant and user and (tier := assign.users.get(f"{tenant}/{user}")) is not None:
        return tier
    return assign.tenants.get(tenant, assign.default)
