"""The persona part of Policy: personas (inline and from a directory of files) and conversation sessions.

A persona file is one YAML mapping with the fields of `PersonaConfig` (see examples/personas/).
Files are read when the configuration is validated, so `sidecar check-config` reports a bad file
with its path. References to routes and tiers are checked against the whole Policy (`problems`).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, PrivateAttr, ValidationError, model_validator

from sidecar.config.model import MAX_OUTPUT_TOKENS, ConfigModel
from sidecar.config.redis import REDIS_URL, RedisConnectionConfig, check_redis
from sidecar.config.yaml_text import YamlProblem, parse_yaml
from sidecar.core.tokens import count_tokens

PERSONA_ID = r"^[a-z0-9][a-z0-9._-]{0,63}$"
CATEGORY = r"^[a-z0-9][a-z0-9._-]{0,63}$"
MAX_PROMPT_TOKENS = 600
MAX_PERSONA_FILES = 10_000


class PersonaParams(ConfigModel):
    """Generation parameters a persona uses when the request sets none (each field on its own)."""

    max_tokens: int | None = Field(default=None, ge=1, le=MAX_OUTPUT_TOKENS)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    stop: list[str] = Field(default_factory=list, max_length=4)
    seed: int | None = Field(default=None, ge=-(2**63), le=2**63 - 1, description="as the API's int64 seed")


class PersonaConfig(ConfigModel):
    id: str = Field(pattern=PERSONA_ID, description="stable id: lowercase letters, digits, ._-")
    name: str = Field(min_length=1, max_length=128, description="display name, matched by Switch commands")
    aliases: list[str] = Field(default_factory=list, max_length=32)
    category: str = Field(default="general", pattern=CATEGORY)
    tiers: list[str] = Field(default_factory=list, description="tiers allowed to use it; empty = every tier")
    system_prompt: str = Field(min_length=1, max_length=20_000)
    default_route: str | None = Field(default=None, description="used when a request names no model")
    default_params: PersonaParams = PersonaParams()

    @model_validator(mode="after")
    def _names(self) -> PersonaConfig:
        for alias in self.aliases:
            if not alias.strip() or len(alias) > 128:
                raise ValueError("aliases: each is 1 to 128 characters, not only spaces")
        if not self.name.strip():
            raise ValueError("name: must not be only spaces")
        return self


class SessionsConfig(ConfigModel):
    """Where conversation state lives and for how long (the store itself needs a restart to change)."""

    store: Literal["memory", "redis"] = "memory"
    redis_url: str | None = Field(default=None, pattern=REDIS_URL)
    redis: RedisConnectionConfig = RedisConnectionConfig()
    key_prefix: str = Field(default="orch:conv", pattern=r"^[A-Za-z0-9:_.-]{1,64}$")
    memory: bool = Field(default=False, description="keep history when a request does not say")
    ttl_seconds: float = Field(default=86_400.0, gt=0, le=365 * 86_400)
    max_history_messages: int = Field(default=100, ge=2, le=10_000)
    max_history_bytes: int = Field(
        default=2 * 1024 * 1024,
        ge=64 * 1024,
        le=1024**3,
        description="one conversation's history (oldest units go first; the newest message is kept)",
    )
    max_switch_history: int = Field(default=100, ge=1, le=10_000)
    max_conversations: int = Field(default=100_000, ge=1, description="in-memory store bound (LRU)")
    max_memory_bytes: int = Field(
        default=64 * 1024 * 1024,
        ge=1024 * 1024,
        le=64 * 1024**3,
        description="in-memory store: bytes of histories, summaries, switch records (least recent go first)",
    )

    @model_validator(mode="after")
    def _redis_needs_url(self) -> SessionsConfig:
        if self.store == "redis" and self.redis_url is None:
            raise ValueError("store 'redis' needs `redis_url` (redis://HOST:PORT/DB)")
        check_redis(self.redis_url, self.redis)
        return self


class PersonasConfig(ConfigModel):
    personas: list[PersonaConfig] = Field(default_factory=list)
    directory: Path | None = Field(default=None, description="every *.yaml / *.yml file is one persona")
    default: str | None = Field(default=None, description="persona of conversations that chose none")
    max_prompt_tokens: int = Field(default=MAX_PROMPT_TOKENS, ge=1, le=100_000)
    sessions: SessionsConfig = SessionsConfig()
    _from_directory: tuple[PersonaConfig, ...] = PrivateAttr(default=())

    @model_validator(mode="after")
    def _load_directory(self) -> PersonasConfig:
        if self.directory is not None:
            self._from_directory = tuple(load_persona_files(self.directory))
        return self

    def all(self) -> tuple[PersonaConfig, ...]:
        """Inline personas, then those of the directory (sorted by file name)."""
        return (*self.personas, *self._from_directory)

    def problems(
        self,
        routes: Collection[str],
        tiers: Collection[str],
        count: Callable[[str], int] = count_tokens,
    ) -> list[str]:
        """Duplicate ids, unknown routes and tiers, prompts over the token limit, a bad default."""
        found: list[str] = []
        seen: set[str] = set()
        for p in self.all():
            where = f"personas.{p.id}"
            if p.id in seen:
                found.append(f"{where}: duplicate persona id")
            seen.add(p.id)
            if p.default_route is not None and p.default_route not in routes:
                found.append(f"{where}.default_route: unknown route {p.default_route!r}")
            found += [f"{where}.tiers: unknown tier {t!r}" for t in p.tiers if t not in tiers]
            if (n := count(p.system_prompt)) > self.max_prompt_tokens:
                found.append(f"{where}.system_prompt: {n} tokens, more than {self.max_prompt_tokens}")
        if self.default is not None and self.default not in seen:
            found.append(f"personas.default: unknown persona {self.default!r}")
        return found


def load_persona_files(directory: Path) -> list[PersonaConfig]:
    """Every persona file of a directory, or ValueError naming each bad file."""
    if not directory.is_dir():
        raise ValueError(f"directory {str(directory)!r} is not a readable directory")
    paths = sorted(p for p in directory.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
    if len(paths) > MAX_PERSONA_FILES:
        raise ValueError(f"directory {str(directory)!r} has more than {MAX_PERSONA_FILES} persona files")
    loaded: list[PersonaConfig] = []
    errors: list[str] = []
    for path in paths:
        try:
            loaded.append(PersonaConfig.model_validate(_read(path)))
        except ValidationError as exc:
            for err in exc.errors():
                where = ".".join(str(part) for part in err["loc"]) or "(file)"
                errors.append(f"{path.name}: {where}: {err['msg']}")
        except ValueError as exc:
            errors.append(f"{path.name}: {exc}")
    if errors:
        raise ValueError(f"persona files in {directory}: " + "; ".join(errors))
    return loaded


def _read(path: Path) -> Any:
    try:
        data = parse_yaml(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read: {exc}") from None
    except YamlProblem as exc:
        raise ValueError(f"not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError("a persona file is one mapping")
    return data
