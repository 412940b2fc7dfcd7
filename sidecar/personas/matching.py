"""Switch commands -> one persona: "use Mr Blue", "switch to dashboard architect", "Agent #79".

A command is compared case-, space- and punctuation-insensitively (casefold, keeping only letters
and digits: "Agent #79", "agent 79" and "agent-79" are one key) with each
persona's id, display name and aliases, after dropping a leading verb ("use", "switch to", "change
to", "talk to", "activate", "select", optionally followed by "persona"), a leading "please" and
trailing punctuation. The first rule that matches anything decides:

1. the whole command (without the verb) equals an id, name or alias;
2. it is the start of exactly such a key (at least 3 characters: "use dash" -> "Dashboard Architect").

One persona: that persona. Several: AMBIGUOUS_PERSONA listing them. None: PERSONA_NOT_FOUND listing
the closest names (or those the caller's tier may use). Both are INVALID_ARGUMENT on `command`.
"""

from __future__ import annotations

import difflib
import re
from collections import defaultdict

from sidecar.core.errors import AmbiguousPersonaError, FieldViolation, PersonaNotFoundError
from sidecar.personas.registry import Persona, PersonaRegistry

_VERB = re.compile(
    r"^(?:please\s+)?(?:(?:switch|change)(?:\s+(?:over|back))?\s+to|talk\s+to|use|activate|select|switch)"
    r"(?:\s+(?:the\s+)?persona)?\s+",
)
_NOT_WORD = re.compile(r"[\W_]+")
_TRAILING = re.compile(r"[\s.!?]+$")
MIN_PREFIX = 3
MAX_CANDIDATES = 10


def key(text: str) -> str:
    """The comparison form of a name: casefolded letters and digits only."""
    return _NOT_WORD.sub("", text.casefold())


def strip_command(command: str) -> str:
    """The persona part of a natural command."""
    text = _TRAILING.sub("", command.strip().casefold())
    return _VERB.sub("", text, count=1)


class CommandMatcher:
    """An index of every persona's keys, built once per registry."""

    def __init__(self, registry: PersonaRegistry) -> None:
        self._registry = registry
        self._keys: dict[str, set[str]] = defaultdict(set)
        for p in registry.all():
            for name in (p.id, p.name, *p.aliases):
                self._keys[key(name)].add(p.id)

    def match(self, command: str, *, tier: str) -> Persona:
        """The one persona a command names (tier is checked by the caller), or a classified error."""
        whole, stripped = key(command), key(strip_command(command))
        for probe in dict.fromkeys((stripped, whole)):
            if probe and (ids := self._keys.get(probe)):
                return self._one(ids, command)
        for probe in dict.fromkeys((stripped, whole)):
            if len(probe) >= MIN_PREFIX:
                ids = {i for k, owners in self._keys.items() if k.startswith(probe) for i in owners}
                if ids:
                    return self._one(ids, command)
        raise self._unknown(command, stripped, tier)

    def _one(self, ids: set[str], command: str) -> Persona:
        if len(ids) == 1:
            persona = self._registry.get(next(iter(ids)))
            assert persona is not None
            return persona
        found = sorted(ids)[:MAX_CANDIDATES]
        raise AmbiguousPersonaError(
            f"{command!r} matches several personas: {self._describe(found)}; name one of them",
            metadata={"command": command[:128], "candidates": ",".join(found)},
            violations=[FieldViolation("command", "matches several personas: " + ", ".join(found))],
        )

    def _unknown(self, command: str, probe: str, tier: str) -> PersonaNotFoundError:
        usable = {p.id: p for p in self._registry.list(tier=tier)}
        by_key = {key(n): p.id for p in usable.values() for n in (p.name, *p.aliases, p.id)}
        close = difflib.get_close_matches(probe, list(by_key), n=MAX_CANDIDATES, cutoff=0.6)
        found = list(dict.fromkeys(by_key[k] for k in close)) or sorted(usable)[:MAX_CANDIDATES]
        return PersonaNotFoundError(
            f"no persona matches {command!r}; candidates: {self._describe(found) or 'none'}",
            metadata={"command": command[:128], "candidates": ",".join(found)},
            violations=[FieldViolation("command", "names no persona; candidates: " + ", ".join(found))],
        )

    def _describe(self, ids: list[str]) -> str:
        return ", ".join(f"{p.name} ({p.id})" for i in ids if (p := self._registry.get(i)) is not None)
