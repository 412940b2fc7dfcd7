"""load_config(path, environ): YAML (or the embedded default) + SIDECAR__ env overrides -> Config.

The only module that looks at environment variables, and it gets them injected.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import SecretStr, ValidationError

from sidecar.config.schema import Config
from sidecar.config.secrets import SecretRef

ENV_PREFIX = "SIDECAR__"
OLLAMA_URL = "http://127.0.0.1:11434/v1"


class ConfigError(Exception):
    """Every problem found in a configuration, listed at once."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{source}: {len(problems)} configuration error(s):\n{lines}")


def embedded_default(environ: Mapping[str, str]) -> dict[str, Any]:
    """The configuration used without a file: everything in memory, no external services."""
    deployments: dict[str, Any] = {
        "echo": {
            "provider": "echo",
            "model": "echo-1",
            "description": "deterministic test double: echoes the last user message",
        },
        "local": {"provider": "openai", "model": "llama3.2", "base_url": OLLAMA_URL},
    }
    routes: dict[str, Any] = {
        "echo": {"deployments": ["echo"]},
        "local": {"deployments": ["local"]},
    }
    if environ.get("OPENAI_API_KEY"):
        deployments["openai"] = {
            "provider": "openai",
            "model": "gpt-4o-mini",
            "api_key": {"env": "OPENAI_API_KEY"},
            "price": {"input_per_million": 0.15, "output_per_million": 0.60},
        }
        routes["openai"] = {"deployments": ["openai"]}
    if environ.get("ANTHROPIC_API_KEY"):
        deployments["anthropic"] = {
            "provider": "anthropic",
            "model": "claude-haiku-4-5",
            "api_key": {"env": "ANTHROPIC_API_KEY"},
            "context_window": 200_000,
            "price": {"input_per_million": 1.0, "output_per_million": 5.0},
        }
        routes["anthropic"] = {"deployments": ["anthropic"]}
    return {"policy": {"default_route": "echo", "deployments": deployments, "routes": routes}}


def load_config(path: Path | None, environ: Mapping[str, str]) -> Config:
    source = str(path) if path else "<embedded default>"
    raw = _read_yaml(path) if path else embedded_default(environ)
    problems = _apply_env_overrides(raw, environ)
    try:
        config = Config.model_validate(raw)
    except ValidationError as exc:
        problems += [_describe(err) for err in exc.errors()]
        raise ConfigError(source, problems) from None
    secrets, missing = _resolve_secrets(config, environ)
    problems += missing
    if problems:
        raise ConfigError(source, problems)
    return config.model_copy(update={"secrets": secrets})


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(str(path), [f"cannot read file: {exc.strerror}"]) from None
    except yaml.YAMLError as exc:
        raise ConfigError(str(path), [f"not valid YAML: {exc}"]) from None
    if not isinstance(data, dict):
        raise ConfigError(str(path), ["the top level must be a mapping"])
    return data


def _apply_env_overrides(raw: dict[str, Any], environ: Mapping[str, str]) -> list[str]:
    """SIDECAR__SETTINGS__LISTEN__ADDRESS=... sets settings.listen.address (value parsed as YAML)."""
    problems: list[str] = []
    for name in sorted(environ):
        if not name.startswith(ENV_PREFIX):
            continue
        path = [part.lower() for part in name[len(ENV_PREFIX) :].split("__")]
        if not all(path):
            problems.append(f"{name}: empty path segment")
            continue
        node = raw
        for key in path[:-1]:
            child = node.setdefault(key, {})
            if not isinstance(child, dict):
                problems.append(f"{name}: {key} is not a section")
                break
            node = child
        else:
            try:
                node[path[-1]] = yaml.safe_load(environ[name])
            except yaml.YAMLError:
                problems.append(f"{name}: value is not valid YAML")
    return problems


def _resolve_secrets(config: Config, environ: Mapping[str, str]) -> tuple[dict[str, SecretStr], list[str]]:
    refs: list[tuple[str, SecretRef]] = [
        (f"policy.deployments.{name}.api_key", d.api_key)
        for name, d in config.policy.deployments.items()
        if d.api_key is not None
    ]
    if config.settings.auth.token is not None:
        refs.append(("settings.auth.token", config.settings.auth.token))
    refs += [(f"settings.auth.credentials.{c.name}.token", c.token) for c in config.settings.auth.credentials]
    vault = config.settings.keys.vault
    if config.settings.keys.backend == "vault" and vault is not None and vault.token is not None:
        refs.append(("settings.keys.vault.token", vault.token))
    refs += _redis_password_refs(config)
    secrets: dict[str, SecretStr] = {}
    missing: list[str] = []
    for where, ref in refs:
        value = environ.get(ref.env, "")
        if value:
            secrets[ref.env] = SecretStr(value)
        else:
            missing.append(f"{where}: environment variable {ref.env} is not set or empty")
    return secrets, missing


def _redis_password_refs(config: Config) -> list[tuple[str, SecretRef]]:
    """The ACL passwords of the Redis stores in use."""
    s, p = config.settings, config.policy
    stores = [
        ("settings.cache.redis", s.cache.redis, s.cache.backend == "redis"),
        ("settings.keys.redis", s.keys.redis, s.keys.store == "redis"),
        ("policy.personas.sessions.redis", p.personas.sessions.redis, p.personas.sessions.store == "redis"),
    ]
    if p.quota is not None:
        stores.append(("policy.quota.redis", p.quota.redis, p.quota.store == "redis"))
    return [
        (f"{where}.password", options.password)
        for where, options, used in stores
        if used and options.password is not None
    ]


def _describe(err: Any) -> str:
    where = ".".join(str(p) for p in err.get("loc", ())) or "<root>"
    return f"{where}: {err.get('msg', 'invalid')}"


def process_environ() -> Mapping[str, str]:
    """The process environment, for the entry points that must pass it in."""
    return os.environ
