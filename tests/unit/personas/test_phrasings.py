"""The natural forms users type for a Switch, table-driven: what each resolves to, and on a miss
which candidates the error offers."""

from __future__ import annotations

import pytest

from sidecar.core.errors import AmbiguousPersonaError, PersonaNotFoundError
from sidecar.personas.matching import CommandMatcher, strip_command
from sidecar.personas.registry import PersonaRegistry
from tests.support.personas import CATALOGUE, personas_config

SRE = {
    "id": "sre-coach",
    "name": "SRE Coach",
    "aliases": ["oncall"],
    "category": "ops",
    "system_prompt": "You coach site reliability engineers.",
}
MATCHER = CommandMatcher(
    PersonaRegistry.from_config(
        personas_config(personas=[*CATALOGUE, SRE]),
        tiers=("free", "basic", "professional", "enterprise"),
        routes=("echo",),
    )
)

PHRASINGS = [
    ("SRE Coach", "sre-coach"),
    ("switch to SRE Coach persona", "sre-coach"),
    ("please switch to SRE Coach persona", "sre-coach"),
    ("Please switch to the SRE Coach persona.", "sre-coach"),
    ("use SRE Coach", "sre-coach"),
    ("use the SRE coach persona!", "sre-coach"),
    ("talk to SRE Coach", "sre-coach"),
    ("talk to the sre coach", "sre-coach"),
    ("SRE Coach please", "sre-coach"),
    ("sre coach, please!", "sre-coach"),
    ("can I talk to the SRE Coach?", "sre-coach"),
    ("Could I speak with the SRE coach please?", "sre-coach"),
    ("I'd like to talk to SRE Coach", "sre-coach"),
    ("I want to switch to sre-coach", "sre-coach"),
    ("let me talk to the oncall persona", "sre-coach"),
    ("change over to SRE Coach now", "sre-coach"),
    ("switch back to Mr Blue", "mr-blue"),
    ("Mr Blue please", "mr-blue"),
    ("can I talk to Mr. Blue?", "mr-blue"),
    ("use persona Agent #79", "agent-79"),
    ("switch to agent 80 persona", "agent-80"),
    ("talk to the dashboard architect...", "dashboard-architect"),
    ("pick dash", "dashboard-architect"),
    ("switch to SRE Coch persona", "sre-coach"),  # a typo whose only candidate is SRE Coach
    ("can I talk to Mr Bleu", "mr-blue"),  # likewise
    ("hey, can I talk with the SRE coach please?", "sre-coach"),  # an opener and its comma
    ("OK, switch to Mr Blue", "mr-blue"),
    ("yo switch to mr blue", "mr-blue"),
    ("hello! could you switch me to the SRE coach?", "sre-coach"),
    ("switch me to SRE Coach", "sre-coach"),
    ("switch the persona to Mr Blue", "mr-blue"),
    ("set persona to SRE Coach", "sre-coach"),
    ("persona: SRE Coach", "sre-coach"),
    ("go back to Mr Blue", "mr-blue"),
]


@pytest.mark.parametrize(("command", "expected"), PHRASINGS)
def test_natural_phrasings_resolve(command: str, expected: str) -> None:
    assert MATCHER.match(command, tier="enterprise").id == expected


MISSES = [
    # command, tier, error, the candidates offered
    ("switch to Zorglub persona", "free", PersonaNotFoundError, "agent-79,mr-blue,sre-coach"),
    ("use agent", "enterprise", AmbiguousPersonaError, "agent-79,agent-80"),
    ("talk to the agnet #8", "enterprise", PersonaNotFoundError, {"agent-79", "agent-80"}),
    ("please switch to persona", "free", PersonaNotFoundError, "agent-79,mr-blue,sre-coach"),
]


@pytest.mark.parametrize(("command", "tier", "error", "candidates"), MISSES)
def test_misses_offer_candidates(
    command: str, tier: str, error: type[Exception], candidates: str | set[str]
) -> None:
    with pytest.raises(error) as info:
        MATCHER.match(command, tier=tier)
    offered = info.value.metadata["candidates"]  # type: ignore[attr-defined]
    if isinstance(candidates, set):
        assert set(offered.split(",")) == candidates
    else:
        assert offered == candidates


@pytest.mark.parametrize(
    ("command", "stripped"),
    [
        ("please switch to SRE Coach persona", "sre coach"),
        ("can I talk to the SRE Coach?", "sre coach"),
        ("SRE Coach please!", "sre coach"),
        ("use X", "x"),
    ],
)
def test_the_persona_part_of_a_command(command: str, stripped: str) -> None:
    assert strip_command(command) == stripped
