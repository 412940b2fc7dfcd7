"""KeyPauses on virtual time: a user key's Retry-After, per deployment and key, bounded."""

from __future__ import annotations

import pytest

from sidecar.routing.key_pause import KeyPauses
from tests.conftest import FakeClock


def test_a_pause_holds_that_key_on_that_deployment_until_it_is_over(clock: FakeClock) -> None:
    pauses = KeyPauses(clock)
    pauses.pause("oai", "sk-alice", 30)
    assert pauses.remaining("oai", "sk-alice") == 30
    assert pauses.remaining("oai", "sk-bob") is None  # another key
    assert pauses.remaining("oai-eu", "sk-alice") is None  # another deployment
    clock.advance(29.5)
    assert pauses.remaining("oai", "sk-alice") == pytest.approx(0.5)
    clock.advance(0.5)
    assert pauses.remaining("oai", "sk-alice") is None
    assert len(pauses) == 0  # an ended pause is forgotten


def test_a_shorter_retry_after_does_not_cut_a_pause(clock: FakeClock) -> None:
    pauses = KeyPauses(clock)
    pauses.pause("oai", "sk-alice", 30)
    pauses.pause("oai", "sk-alice", 5)
    assert pauses.remaining("oai", "sk-alice") == 30
    pauses.pause("oai", "sk-alice", 60)
    assert pauses.remaining("oai", "sk-alice") == 60


@pytest.mark.parametrize("seconds", [0.0, -3.0, float("nan")])
def test_no_wait_is_no_pause(clock: FakeClock, seconds: float) -> None:
    pauses = KeyPauses(clock)
    pauses.pause("oai", "sk-alice", seconds)
    assert pauses.remaining("oai", "sk-alice") is None and len(pauses) == 0


def test_keys_are_held_as_salted_digests_never_as_text(clock: FakeClock) -> None:
    pauses = KeyPauses(clock, salt=b"s" * 16)
    pauses.pause("oai", "sk-alice-secret", 30)
    assert "sk-alice-secret" not in repr(vars(pauses))
    assert KeyPauses(clock).remaining("oai", "sk-alice-secret") is None  # another salt, another digest


def test_many_paused_keys_are_bounded_dropping_those_that_end_first(clock: FakeClock) -> None:
    pauses = KeyPauses(clock, max_keys=3)
    for i, seconds in enumerate([50, 10, 40, 30]):
        pauses.pause("oai", f"sk-{i}", seconds)
    assert len(pauses) == 3
    assert pauses.remaining("oai", "sk-1") is None  # the one ending first made room
    assert [pauses.remaining("oai", f"sk-{i}") for i in (0, 2, 3)] == [50, 40, 30]
    clock.advance(45)  # two are over: they go before any live pause is dropped
    pauses.pause("oai", "sk-4", 100)
    pauses.pause("oai", "sk-5", 100)
    assert len(pauses) == 3
    assert pauses.remaining("oai", "sk-0") == pytest.approx(5)
