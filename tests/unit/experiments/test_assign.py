"""Sticky, weighted, overridable variant assignment."""

from __future__ import annotations

import pytest

from sidecar.config.experiments import ExperimentConfig
from sidecar.core.errors import InvalidRequestError
from sidecar.experiments.assign import assign, bucket


def exp(**kw: object) -> ExperimentConfig:
    base: dict[str, object] = {
        "route": "chat",
        "control": "a",
        "variants": {"a": {"weight": 3}, "b": {"weight": 1}},
    }
    return ExperimentConfig.model_validate(base | kw)


def test_bucket_is_stable_across_processes() -> None:
    # SHA-256 of "tone\0acme\0u1", first 8 bytes; Python's hash() would vary per run
    assert bucket("tone", "acme", "u1") == bucket("tone", "acme", "u1")
    assert 0 <= bucket("tone", "acme", "u1") < 1
    assert bucket("tone", "acme", "u1") != bucket("tone", "acme", "u2")
    import hashlib

    digest = hashlib.sha256(b"tone\x00acme\x00u1").digest()
    assert bucket("tone", "acme", "u1") == int.from_bytes(digest[:8], "big") / 2**64


def test_assignment_is_sticky_and_follows_the_weights() -> None:
    e = exp()
    first = {u: assign("tone", e, tenant="t", user=f"u{u}", metadata={}).variant for u in range(4000)}
    again = {u: assign("tone", e, tenant="t", user=f"u{u}", metadata={}).variant for u in range(4000)}
    assert first == again
    share_b = sum(v == "b" for v in first.values()) / len(first)
    assert share_b == pytest.approx(0.25, abs=0.03)


def test_override_by_metadata_and_its_validation() -> None:
    e = exp()
    assert assign("tone", e, tenant="t", user="u", metadata={"experiment_variant": "b"}).variant == "b"
    with pytest.raises(InvalidRequestError) as bad:
        assign("tone", e, tenant="t", user="u", metadata={"experiment_variant": "zzz"})
    assert bad.value.violations[0].field == "metadata[experiment_variant]"


def test_promoted_takes_everyone_and_stopped_sends_everyone_to_control() -> None:
    promoted = exp(promoted="b")
    stopped = exp(status="stopped")
    users = [f"u{i}" for i in range(200)]
    assert {assign("x", promoted, tenant="t", user=u, metadata={}).variant for u in users} == {"b"}
    assert {assign("x", stopped, tenant="t", user=u, metadata={}).variant for u in users} == {"a"}


def test_config_rejects_unknown_control_and_zero_weights() -> None:
    with pytest.raises(ValueError):
        exp(control="zzz")
    with pytest.raises(ValueError):
        exp(variants={"a": {"weight": 0}, "b": {"weight": 0}})


@pytest.mark.parametrize(
    ("kw", "fixed", "other"), [({"status": "stopped"}, "a", "b"), ({"promoted": "b"}, "b", "a")]
)
def test_a_stopped_or_promoted_experiment_refuses_forcing_another_variant(
    kw: dict[str, object], fixed: str, other: str
) -> None:
    e = exp(**kw)
    with pytest.raises(InvalidRequestError) as typed:
        assign("tone", e, tenant="t", user="u", metadata={}, requested=other)
    assert typed.value.violations[0].field == "input.experiment_variant"
    with pytest.raises(InvalidRequestError) as label:
        assign("tone", e, tenant="t", user="u", metadata={"experiment_variant": other})
    assert label.value.violations[0].field == "metadata[experiment_variant]"
    same = assign("tone", e, tenant="t", user="u", metadata={}, requested=fixed)
    assert (same.variant, same.overridden) == (fixed, True)
