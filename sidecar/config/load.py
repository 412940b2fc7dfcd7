"""load_config(path, environ): YAML (or the embedded default) + SIDECAR__ env overrides -> Config.

The only module that looks at environment variables, and it gets them injected.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, SecretStr, ValidationError

from sidecar.config.quota import webhook_key
from sidecar.config.schema import Config
from sidecar.config.secrets import SecretRef
from sidecar.config.yaml_text import YamlProblem, parse_yaml

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
    problems += missing + _shared_tokens(config, secrets) + _webhook_secret(config, secrets)
    if problems:
        raise ConfigError(source, problems)
    return config.model_copy(update={"secrets": secrets})


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = parse_yaml(_read_text(path))
    except YamlProblem as exc:
        raise ConfigError(str(path), [f"not valid YAML: {exc}"]) from None
    if not isinstance(data, dict):
        raise ConfigError(str(path), ["the top level must be a mapping"])
    return data


def _read_text(path: Path) -> str:
    """The file as UTF-8 text. A byte that is not UTF-8 is named by its place: the exception's own
    text (and repr) would hold the file's bytes, passwords in its URLs included."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(str(path), [f"cannot read file: {exc.strerror}"]) from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = raw[: exc.start]
        line, column = before.count(b"\n") + 1, exc.start - (before.rfind(b"\n") + 1) + 1
        raise ConfigError(str(path), [f"not UTF-8 text: line {line}, column {column}"]) from None


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
                node[path[-1]] = parse_yaml(environ[name])
            except YamlProblem as exc:
                problems.append(f"{name}: value is not valid YAML: {exc}")
    return problems


def _resolve_secrets(config: Config, environ: Mapping[str, str]) -> tuple[dict[str, SecretStr], list[str]]:
    refs: list[tuple[str, SecretRef]] = [
        (f"policy.deployments.{name}.api_key", d.api_key)
        for name, d in config.policy.deployments.items()
        if d.api_key is not None
    ]
    refs += [
        (f"policy.embeddings.deployments.{name}.api_key", d.api_key)
        for name, d in config.policy.embeddings.deployments.items()
        if d.api_key is not None
    ]
    if config.settings.auth.token is not None:
        refs.append(("settings.auth.token", config.settings.auth.token))
    refs += [(f"settings.auth.credentials.{c.name}.token", c.token) for c in config.settings.auth.credentials]
    vault = config.settings.keys.vault
    if config.settings.keys.backend == "vault" and vault is not None and vault.token is not None:
        refs.append(("settings.keys.vault.token", vault.token))
    refs += _redis_password_refs(config)
    webhook = config.policy.quota.webhook if config.policy.quota is not None else None
    if webhook is not None and webhook.secret is not None:
        refs.append(("policy.quota.webhook.secret", webhook.secret))
    missing = [
        f"{where}: environment variable {ref.env} is not set or empty"
        for where, ref in refs
        if not environ.get(ref.env, "")
    ]
    # Resolved: every reference anywhere in the configuration whose variable is set, not only the
    # ones listed above as required, so that a section added later is never left without its secret.
    secrets = {
        ref.env: SecretStr(environ[ref.env]) for ref in _every_secret_ref(config) if environ.get(ref.env)
    }
    return secrets, missing


def _shared_tokens(config: Config, secrets: Mapping[str, SecretStr]) -> list[str]:
    """Each credential needs its own token: the first credential a token matches is the caller's, so
    a second one with the same token would be unreachable, and which grants and tenants a caller
    gets would hang on their order. Names the credentials, never the token."""
    auth = config.settings.auth
    named = [("settings.auth.token", auth.token)] if auth.token is not None else []
    named += [(f"settings.auth.credentials.{c.name}.token", c.token) for c in auth.credentials]
    first: dict[str, str] = {}
    problems = []
    for where, ref in named:
        value = secrets.get(ref.env) if ref is not None else None
        if value is None:
            continue  # unset: reported as missing
        holder = first.setdefault(value.get_secret_value(), where)
        if holder != where:
            problems.append(f"{where}: the same token as {holder} (each credential needs its own)")
    return problems


def _webhook_secret(config: Config, secrets: Mapping[str, SecretStr]) -> list[str]:
    """The quota webhook's signing secret must be one (whsec_ and base64); named, never shown."""
    webhook = config.policy.quota.webhook if config.policy.quota is not None else None
    ref = webhook.secret if webhook is not None else None
    value = secrets.get(ref.env) if ref is not None else None
    if ref is None or value is None:
        return []  # none, or unset: reported as missing
    try:
        webhook_key(value.get_secret_value())
    except ValueError as exc:
        return [f"policy.quota.webhook.secret: environment variable {ref.env}: {exc}"]
    return []


def _every_secret_ref(model: BaseModel) -> Iterator[SecretRef]:
    """Each SecretRef in `model`, its nested models and their mappings and sequences."""
    for _, value in model:
        yield from _refs_in(value)


def _refs_in(value: object) -> Iterator[SecretRef]:
    if isinstance(value, SecretRef):
        yield value
    elif isinstance(value, BaseModel):
        yield from _every_secret_ref(value)
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _refs_in(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _refs_in(item)


def _redis_password_refs(config: Config) -> list[tuple[str, SecretRef]]:
    """The ACL passwords of the Redis stores in use."""
    s, p = config.settings, config.policy
    stores = [
        ("settings.cache.redis", s.cache.redis, s.cache.backend == "redis"),
        ("settings.cache.semantic.redis", s.cache.semantic.redis, s.cache.semantic.backend == "redis"),
        ("settings.keys.redis", s.keys.redis, s.keys.store == "redis"),
        ("settings.idempotency.redis", s.idempotency.redis, s.idempotency.backend == "redis"),
        ("policy.personas.sessions.redis", p.personas.sessions.redis, p.personas.sessions.store == "redis"),
    ]
    if p.quota is not None:
        stores.append(("policy.quota.redis", p.quota.redis, p.quota.store == "redis"))
    if p.answers is not None:
        stores.append(("policy.answers.redis", p.answers.redis, p.answers.store == "redis"))
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
