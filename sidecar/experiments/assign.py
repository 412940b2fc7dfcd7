"""Which variant of an experiment serves a call: sticky per (tenant, user) by a stable hash, or the
variant the request names (GenerationInput.experiment_variant, or the `experiment_variant`
metadata label of older callers; for testing). A promoted variant takes every
call; a stopped experiment sends every call to its control, and a request forcing another variant
then is refused: the operator's stop or promotion holds for every call."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

from sidecar.config.experiments import ExperimentConfig, VariantConfig
from sidecar.core.errors import FieldViolation, InvalidRequestError

VARIANT_METADATA_KEY = "experiment_variant"
REQUESTED_FIELD = "input.experiment_variant"


@dataclass(frozen=True, slots=True)
class Assignment:
    experiment: str
    variant: str
    config: VariantConfig
    overridden: bool = False  # the request named the variant


def bucket(experiment: str, tenant: str, user: str) -> float:
    """A stable point in [0, 1) for this caller in this experiment (SHA-256; not Python's hash())."""
    digest = hashlib.sha256(f"{experiment}\x00{tenant}\x00{user}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def assign(
    name: str,
    exp: ExperimentConfig,
    *,
    tenant: str,
    user: str,
    metadata: Mapping[str, str],
    requested: str = "",
) -> Assignment:
    """The caller's variant; an override naming no variant of the experiment is INVALID_ARGUMENT.
    `requested`: the request's experiment_variant ("" = none)."""
    fixed = _fixed(exp)
    chosen = _override(name, exp, fixed, requested, metadata)
    if chosen is not None:
        return Assignment(name, chosen, exp.variants[chosen], overridden=True)
    chosen = fixed or _weighted(exp, bucket(name, tenant, user))
    return Assignment(name, chosen, exp.variants[chosen])


def _override(
    name: str, exp: ExperimentConfig, fixed: str | None, requested: str, metadata: Mapping[str, str]
) -> str | None:
    """The variant the request names, if any; INVALID_ARGUMENT naming the field it came in when the
    experiment has no such variant, or is stopped or promoted and serves every call another one."""
    field, named = REQUESTED_FIELD, requested
    if not named:
        field, named = f"metadata[{VARIANT_METADATA_KEY}]", metadata.get(VARIANT_METADATA_KEY, "")
        if VARIANT_METADATA_KEY not in metadata:
            return None
    if named not in exp.variants:
        raise InvalidRequestError([FieldViolation(field, f"one of {', '.join(exp.variants)}")])
    if fixed is not None and named != fixed:
        why = (
            f"promoted {fixed!r}"
            if exp.promoted is not None
            else f"stopped: every call gets its control {fixed!r}"
        )
        raise InvalidRequestError([FieldViolation(field, f"experiment {name!r} is {why}; only {fixed!r}")])
    return named


def _fixed(exp: ExperimentConfig) -> str | None:
    if exp.promoted is not None:
        return exp.promoted
    return exp.control if exp.status == "stopped" else None


def _weighted(exp: ExperimentConfig, point: float) -> str:
    total = sum(v.weight for v in exp.variants.values())
    edge = 0.0
    last = exp.control
    for name in sorted(exp.variants):  # a fixed order: the split does not depend on the file's order
        weight = exp.variants[name].weight
        if weight <= 0:
            continue
        edge += weight / total
        last = name
        if point < edge:
            return name
    return last  # rounding at the top edge
