"""Switch command parsing: exact, alias, case, spaces, prefixes, ambiguous, unknown, not allowed."""

from __future__ import annotations

import pytest

from sidecar.core.errors import AmbiguousPersonaError, PersonaNotAllowedError, PersonaNotFoundError
from sidecar.personas.matching import CommandMatcher, strip_command
from sidecar.personas.registry import ensure_allowed
from tests.support.personas import registry

MATCHER = CommandMatcher(registry())


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("Mr Blue", "mr-blue"),  # exact name
        ("mr-blue", "mr-blue"),  # exact id
        ("use Mr Blue", "mr-blue"),
        ("USE MR BLUE", "mr-blue"),  # case
        ("  use   mr    blue  ", "mr-blue"),  # spaces
        ("use mrblue", "mr-blue"),  # spaces removed entirely
        ("use blue", "mr-blue"),  # alias
        ("switch to Dashboard Architect", "dashboard-architect"),
        ("Switch to dashboardarchitect.", "dashboard-architect"),  # trailing punctuation
        ("please change to the architect", "dashboard-architect"),  # the article is dropped
        ("please change to architect!", "dashboard-architect"),
        ("talk to dash", "dashboard-architect"),  # alias
        ("use dashb", "dashboard-architect"),  # unique prefix
        ("use Agent #79", "agent-79"),
        ("use agent#79", "agent-79"),
        ("use agent 79", "agent-79"),  # punctuation ignored
        ("use AGENT-79", "agent-79"),
        ("activate persona Agent #80", "agent-80"),
        ("select agent-80", "agent-80"),
    ],
)
def test_commands_that_name_one_persona(command: str, expected: str | None) -> None:
    if expected is None:
        with pytest.raises(PersonaNotFoundError):
            MATCHER.match(command, tier="enterprise")
        return
    assert MATCHER.match(command, tier="enterprise").id == expected


@pytest.mark.parametrize("command", ["use agent", "switch to Agent #", "AGENT"])
def test_ambiguous_commands_list_the_candidates(command: str) -> None:
    with pytest.raises(AmbiguousPersonaError) as info:
        MATCHER.match(command, tier="enterprise")
    err = info.value
    assert err.metadata["candidates"] == "agent-79,agent-80"
    assert "Agent #79 (agent-79)" in err.message and "Agent #80 (agent-80)" in err.message
    assert err.violations[0].field == "command"


def test_unknown_command_lists_close_candidates() -> None:
    with pytest.raises(PersonaNotFoundError) as info:
        MATCHER.match("use Agnet #8", tier="enterprise")
    assert set(info.value.metadata["candidates"].split(",")) == {"agent-79", "agent-80"}
    assert info.value.violations[0].field == "command"


def test_a_miss_whose_only_close_candidate_is_one_persona_resolves_to_it() -> None:
    assert MATCHER.match("use Mr Bleu", tier="free").id == "mr-blue"


def test_unknown_command_without_close_names_lists_what_the_tier_may_use() -> None:
    with pytest.raises(PersonaNotFoundError) as info:
        MATCHER.match("use Zorglub the Magnificent", tier="free")
    # dashboard-architect and agent-80 are not for the free tier
    assert info.value.metadata["candidates"] == "agent-79,mr-blue"


@pytest.mark.parametrize("command", ["", "   ", "use", "use ", "x"])
def test_commands_without_a_name_are_unknown(command: str) -> None:
    with pytest.raises(PersonaNotFoundError):
        MATCHER.match(command, tier="free")


def test_a_persona_the_tier_may_not_use_is_permission_denied() -> None:
    persona = MATCHER.match("use Dashboard Architect", tier="free")
    with pytest.raises(PersonaNotAllowedError) as info:
        ensure_allowed(persona, "free")
    assert info.value.metadata == {"personaId": "dashboard-architect", "tier": "free"}
    ensure_allowed(persona, "professional")


def test_a_name_that_starts_with_a_verb_still_matches() -> None:
    reg = registry(personas=[{"id": "uc", "name": "Use Case Analyst", "system_prompt": "p"}])
    assert CommandMatcher(reg).match("Use Case Analyst", tier="free").id == "uc"
    assert CommandMatcher(reg).match("use use case analyst", tier="free").id == "uc"


def test_strip_command() -> None:
    assert strip_command("Please switch over to  Mr Blue!") == "mr blue"
    assert strip_command("use the persona Agent #79") == "agent #79"


def _full_width(text: str) -> str:
    """The text as a CJK input method in full-width mode types it (U+FF01..U+FF5E)."""
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


@pytest.mark.parametrize(
    "command",
    [
        _full_width("use mr blue"),
        "use " + _full_width("mr blue"),
        _full_width("SWITCH TO Mr Blue"),
        "use\u00a0Mr\u00a0Blue",  # no-break spaces
        "use \u1d39\u02b3 \u1d2e\u02e1\u1d58\u1d49",  # modifier letters fold the same way (NFKC)
    ],
)
def test_compatibility_forms_of_a_name_match_it(command: str) -> None:
    """Names are compared in Unicode's compatibility form (NFKC), as identifiers are: full-width
    letters were other letters than their ASCII forms, so a command typed in full-width mode named
    no persona (PERSONA_NOT_FOUND) unless the close-name fallback happened to rescue it."""
    assert MATCHER.match(command, tier="free").id == "mr-blue"
