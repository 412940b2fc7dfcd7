"""The persona registry: every configured persona by id, checked once at load, filtered for listing."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from sidecar.config.personas import PersonaConfig, PersonasConfig
from sidecar.core.errors import (
    FieldViolation,
    PersonaNotAllowedError,
    PersonaNotFoundError,
    ResourceRef,
)
from sidecar.core.tokens import count_tokens
from sidecar.core.types import GenerationParams

TokenCounter = Callable[[str], int]


class PersonaLoadError(ValueError):
    """Personas that fail the checks only the registry can make (the injected token counter)."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True, slots=True)
class Persona:
    id: str
    name: str
    aliases: tuple[str, ...]
    category: str
    tiers: frozenset[str]  # empty: every tier
    system_prompt: str
    prompt_tokens: int
    default_route: str | None
    default_params: GenerationParams

    def allows(self, tier: str) -> bool:
        return not self.tiers or tier in self.tiers

    @classmethod
    def from_config(cls, p: PersonaConfig, tokens: int) -> Persona:
        d = p.default_params
        params = GenerationParams(d.max_tokens, d.temperature, d.top_p, tuple(d.stop), d.seed)
        return cls(
            id=p.id,
            name=p.name,
            aliases=tuple(p.aliases),
            category=p.category,
            tiers=frozenset(p.tiers),
            system_prompt=p.system_prompt,
            prompt_tokens=tokens,
            default_route=p.default_route,
            default_params=params,
        )


class PersonaRegistry:
    """All personas, by id. A call looks up only its own one."""

    def __init__(self, personas: Iterable[Persona], default: str | None = None) -> None:
        self._by_id = {p.id: p for p in personas}
        self.default = default

    @classmethod
    def from_config(
        cls,
        cfg: PersonasConfig,
        *,
        tiers: Iterable[str],
        routes: Iterable[str],
        count: TokenCounter = count_tokens,
    ) -> PersonaRegistry:
        """Build from configuration; the prompt limit is checked again with the injected counter."""
        problems = cfg.problems(set(routes), set(tiers), count)
        if problems:
            raise PersonaLoadError(problems)
        return cls((Persona.from_config(p, count(p.system_prompt)) for p in cfg.all()), cfg.default)

    def __len__(self) -> int:
        return len(self._by_id)

    def all(self) -> list[Persona]:
        return list(self._by_id.values())

    def get(self, persona_id: str) -> Persona | None:
        return self._by_id.get(persona_id)

    def require(self, persona_id: str, tier: str, *, field: str = "persona_id") -> Persona:
        """The persona with that id, usable by `tier`; PERSONA_NOT_FOUND / PERSONA_NOT_ALLOWED otherwise."""
        persona = self._by_id.get(persona_id)
        if persona is None:
            raise PersonaNotFoundError(
                f"no persona with id {persona_id!r} (see ListPersonas)",
                metadata={"personaId": persona_id},
                violations=[FieldViolation(field, "the id of a configured persona (see ListPersonas)")],
            )
        ensure_allowed(persona, tier)
        return persona

    def list(self, *, category: str = "", tier: str = "") -> list[Persona]:
        """Personas of a category and usable by a tier ("" = any), sorted by id."""
        return sorted(
            (
                p
                for p in self._by_id.values()
                if (not category or p.category == category) and (not tier or p.allows(tier))
            ),
            key=lambda p: p.id,
        )


def ensure_allowed(persona: Persona, tier: str) -> None:
    if not persona.allows(tier):
        raise PersonaNotAllowedError(
            f"persona {persona.id!r} is not available to tier {tier!r}",
            metadata={"personaId": persona.id, "tier": tier},
            resource=ResourceRef(
                "orchestrator.v1.Persona", persona.id, "allowed tiers: " + ", ".join(sorted(persona.tiers))
            ),
        )
