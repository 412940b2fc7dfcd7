"""The response cache key: every input that shapes an answer changes it; equal requests share it."""

from __future__ import annotations

from sidecar.cache.key import CacheScope, answer_key, cache_scope
from sidecar.core.types import GenerationParams, Message, Role

BASE = {
    "persona": "mr-blue",
    "route": "chat",
    "params": GenerationParams(max_tokens=50, temperature=0.0, stop=("x",)),
    "messages": (Message(Role.SYSTEM, "be brief"), Message(Role.USER, "hi")),
}
SCOPE = CacheScope("acme", "ann")


def key(scope: CacheScope = SCOPE, **changes: object) -> str:
    return answer_key(scope, **{**BASE, **changes})  # type: ignore[arg-type]


def test_compact_and_stable() -> None:
    k = key()
    assert k == key() and k.startswith("answer:") and len(k) == len("answer:") + 40


def test_every_input_changes_the_key() -> None:
    variants = {
        key(CacheScope("other", "ann")),
        key(CacheScope("acme", "bob")),
        key(CacheScope("acme", "")),
        key(persona=""),
        key(route="other"),
        key(deployments=("small",)),  # an experiment variant's (or the budget's) deployment
        key(params=GenerationParams(max_tokens=51, temperature=0.0, stop=("x",))),
        key(params=GenerationParams(max_tokens=50, temperature=0.0, stop=("y",))),
        key(params=GenerationParams(max_tokens=50, temperature=0.0, stop=("x",), seed=1)),
        key(params=GenerationParams(max_tokens=50, temperature=0.0, top_p=0.5, stop=("x",))),
        key(messages=(Message(Role.USER, "be brief"), Message(Role.USER, "hi"))),
        key(messages=(Message(Role.SYSTEM, "be brief"), Message(Role.USER, "hi", name="n"))),
        key(messages=(Message(Role.SYSTEM, "be brief"), Message(Role.USER, "hi "))),
        key(messages=(Message(Role.SYSTEM, "be brief hi"),)),
    }
    assert key() not in variants and len(variants) == 14


def test_fields_cannot_bleed_into_each_other() -> None:
    """A tenant "a:b" with user "c" is not tenant "a" with user "b:c" (structured, not concatenated)."""
    assert key(CacheScope("a:b", "c")) != key(CacheScope("a", "b:c"))


def test_integral_temperatures_normalize() -> None:
    assert key(params=GenerationParams(max_tokens=50, temperature=0, stop=("x",))) == key()


def test_a_route_taking_user_keys_keeps_answers_per_user_even_in_tenant_scope() -> None:
    shared = cache_scope("acme", "ann", scope="tenant", user_key="never")
    assert shared == CacheScope("acme", "")
    for mode in ("preferred", "required"):  # an answer made on ann's own key is ann's
        assert cache_scope("acme", "ann", scope="tenant", user_key=mode) == CacheScope("acme", "ann")
    assert cache_scope("acme", "ann", scope="user", user_key="never") == CacheScope("acme", "ann")
