"""Switch commands -> one persona: "use Mr Blue", "switch to dashboard architect", "Agent #79".

A command is compared case-, space- and punctuation-insensitively (NFKC, casefold, keeping only
letters and digits: "Agent #79", "agent 79" and "agent-79" are one key) with each persona's id, display
name and aliases. The natural forms users type are peeled off, a word group at a time, into a
list of probes, least stripped first: leading greetings, politeness and questions ("hey,",
"please", "can I", "I'd like to", "let me"), a verb ("use", "switch me to", "change over to",
"set persona to", "talk to", "speak with", "activate", "select", "pick"), an article ("the",
"my"), the word "persona", and at the end "persona", "please", "now", "instead", "thanks" and
punctuation: "please switch to SRE Coach persona", "can I talk to the SRE coach?", "SRE coach
please" all probe "srecoach". The first rule that matches anything decides:

1. a probe equals an id, name or alias (the least stripped probe first: "use the architect" finds
   a persona named "The Architect" before one aliased "architect");
2. a probe of at least 3 characters is the start of such a key ("use dash" -> "Dashboard Architect");
3. the close names (difflib) of the most stripped probe among the personas the caller's tier may
   use all belong to one persona: that persona (a miss whose only candidate is X resolves to X).

One persona: that persona. Several: AMBIGUOUS_PERSONA listing them. None: PERSONA_NOT_FOUND listing
the closest names (or those the caller's tier may use). Both are INVALID_ARGUMENT on `command`.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections import defaultdict

from sidecar.core.errors import AmbiguousPersonaError, FieldViolation, PersonaNotFoundError
from sidecar.personas.registry import Persona, PersonaRegistry

_LEADING = re.compile(  # each group ends in spaces or an opener's punctuation ("hey, ...", "ok! ...")
    r"^(?:please|pls|kindly|hey|hi|hello|hiya|yo|ok|okay|now|so|and|then"
    r"|(?:can|could|may|would|will|shall)\s+(?:i|we|you)"
    r"|i\s+(?:want|wanna|need|would\s+like|'?d\s+like)(?:\s+to)?|i'?d\s+like(?:\s+to)?|let\s+me|let'?s"
    r"|(?:switch|change|swap|go|move)(?:\s+(?:me|us))?(?:\s+(?:over|back))?(?:\s+to)?"
    r"|set(?:\s+(?:the\s+)?persona)?(?:\s+to)?"
    r"|(?:talk|speak|chat)(?:\s+(?:to|with))?|use|activate|select|pick|choose|load|enable"
    r"|(?:give|get|put)\s+me(?:\s+through\s+to)?|bring\s+(?:in|up)"
    r"|the|a|an|my|persona|to|with)(?:\s*[,!.:;]\s*|\s+)"
)
_TRAILING = re.compile(r"(?:[\s.!?,;:)(]+|\s+(?:persona|please|pls|now|instead|thanks|thank\s+you|again))$")
_NOT_WORD = re.compile(r"[\W_]+")
MIN_PREFIX = 3
MAX_CANDIDATES = 10


def fold(text: str) -> str:
    """Unicode's compatibility form (NFKC: full-width and modifier letters are their plain forms,
    as in identifiers), casefolded."""
    return unicodedata.normalize("NFKC", text).casefold()


def key(text: str) -> str:
    """The comparison form of a name: folded (`fold`) letters and digits only."""
    return _NOT_WORD.sub("", fold(text))


def _peel(pattern: re.Pattern[str], text: str, out: list[str]) -> str:
    while (shorter := pattern.sub("", text, count=1)) != text:
        text = shorter.strip()
        out.append(text)
    return text


def variants(command: str) -> list[str]:
    """The command and each shorter form of it, least stripped first (for probes and tests)."""
    text = " ".join(fold(command).split())
    out = [text]
    text = _peel(_TRAILING, text, out)
    text = _peel(_LEADING, text, out)
    _peel(_TRAILING, text, out)
    return list(dict.fromkeys(v for v in out if v))


def strip_command(command: str) -> str:
    """The persona part of a natural command."""
    forms = variants(command)
    return forms[-1] if forms else ""


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
        probes = [p for p in dict.fromkeys(key(v) for v in variants(command)) if p]
        for probe in probes:
            if ids := self._keys.get(probe):
                return self._one(ids, command)
        for probe in reversed(probes):
            if len(probe) >= MIN_PREFIX:
                ids = {i for k, owners in self._keys.items() if k.startswith(probe) for i in owners}
                if ids:
                    return self._one(ids, command)
        close = self._close(probes[-1] if probes else "", tier)
        if len(close) == 1:
            return self._one(set(close), command)
        raise self._unknown(command, close, tier)

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

    def _close(self, probe: str, tier: str) -> list[str]:
        """The ids of the personas the tier may use whose names are close to the probe, closest first."""
        if not probe:
            return []
        usable = self._registry.list(tier=tier)
        by_key = {key(n): p.id for p in usable for n in (p.name, *p.aliases, p.id)}
        close = difflib.get_close_matches(probe, list(by_key), n=MAX_CANDIDATES, cutoff=0.6)
        return list(dict.fromkeys(by_key[k] for k in close))

    def _unknown(self, command: str, close: list[str], tier: str) -> PersonaNotFoundError:
        found = close or sorted(p.id for p in self._registry.list(tier=tier))[:MAX_CANDIDATES]
        return PersonaNotFoundError(
            f"no persona matches {command!r}; candidates: {self._describe(found) or 'none'}",
            metadata={"command": command[:128], "candidates": ",".join(found)},
            violations=[FieldViolation("command", "names no persona; candidates: " + ", ".join(found))],
        )

    def _describe(self, ids: list[str]) -> str:
        return ", ".join(f"{p.name} ({p.id})" for i in ids if (p := self._registry.get(i)) is not None)
