from __future__ import annotations

from pathlib import Path

import pytest

from sidecar.config.load import ConfigError, load_config

INVALID = sorted((Path(__file__).parent / "invalid").glob("*.yaml"))
EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "sidecar.yaml"


@pytest.mark.parametrize("path", INVALID, ids=[p.stem for p in INVALID])
def test_invalid_config_lists_every_problem(path: Path) -> None:
    expected = [
        line.split(":", 1)[1].strip()
        for line in path.read_text().splitlines()
        if line.startswith("# expect:")
    ]
    with pytest.raises(ConfigError) as info:
        load_config(path, {})
    text = str(info.value)
    for needle in expected:
        assert needle in text, text
    assert len(info.value.problems) >= len(expected)


def test_embedded_default_needs_nothing() -> None:
    cfg = load_config(None, {})
    assert cfg.policy.default_route == "echo"
    assert set(cfg.policy.routes) == {"echo", "local"}
    assert cfg.policy.deployments["local"].url() == "http://127.0.0.1:11434/v1"
    assert cfg.settings.listen.address == "127.0.0.1:50051"


def test_embedded_default_adds_hosted_routes_when_keys_are_set() -> None:
    cfg = load_config(None, {"OPENAI_API_KEY": "sk-test-1", "ANTHROPIC_API_KEY": "ak-test-2"})
    assert set(cfg.policy.routes) == {"echo", "local", "openai", "anthropic"}
    key = cfg.secret(cfg.policy.deployments["openai"].api_key)
    assert key is not None and key.get_secret_value() == "sk-test-1"
    assert "sk-test-1" not in repr(cfg) and "sk-test-1" not in str(cfg.model_dump())


def test_env_overrides_reach_nested_keys() -> None:
    env = {
        "SIDECAR__SETTINGS__LISTEN__ADDRESS": "127.0.0.1:6000",
        "SIDECAR__SETTINGS__SHUTDOWN_GRACE_SECONDS": "2.5",
        "SIDECAR__POLICY__DEFAULT_ROUTE": "local",
    }
    cfg = load_config(None, env)
    assert cfg.settings.listen.address == "127.0.0.1:6000"
    assert cfg.settings.shutdown_grace_seconds == 2.5
    assert cfg.policy.default_route == "local"


def test_bad_env_override_is_listed() -> None:
    with pytest.raises(ConfigError, match=r"settings\.log_level"):
        load_config(None, {"SIDECAR__SETTINGS__LOG_LEVEL": "CHATTY"})


def test_missing_file() -> None:
    with pytest.raises(ConfigError, match="cannot read file"):
        load_config(Path("/nonexistent/sidecar.yaml"), {})


def test_shipped_example_is_valid() -> None:
    cfg = load_config(EXAMPLE, {"OPENAI_API_KEY": "x", "ANTHROPIC_API_KEY": "y", "SIDECAR_TOKEN": "z"})
    assert cfg.policy.routes


def test_every_redis_store_gets_its_password_from_its_reference(tmp_path: Path) -> None:
    """Each store's `redis.password` reference resolves (the answers and idempotency stores' were
    never read: their clients connected without the password the configuration named)."""
    import yaml

    def store(env: str) -> dict[str, object]:
        return {"redis_url": "redis://redis.internal:6379/0", "redis": {"password": {"env": env}}}

    raw = {
        "settings": {
            "idempotency": {"backend": "redis", **store("PW_IDEM")},
            "cache": {"enabled": True, "backend": "redis", **store("PW_CACHE")},
            "keys": {"store": "redis", **store("PW_KEYS")},
        },
        "policy": {
            "default_route": "r",
            "deployments": {"e": {"provider": "echo", "model": "echo-1"}},
            "routes": {"r": {"deployments": ["e"]}},
            "quota": {"store": "redis", **store("PW_QUOTA")},
            "answers": {"store": "redis", **store("PW_ANSWERS")},
            "personas": {"sessions": {"store": "redis", **store("PW_SESSIONS")}},
        },
    }
    path = tmp_path / "sidecar.yaml"
    path.write_text(yaml.safe_dump(raw))
    names = ("PW_IDEM", "PW_CACHE", "PW_KEYS", "PW_QUOTA", "PW_ANSWERS", "PW_SESSIONS")
    cfg = load_config(path, {name: f"secret-{name}" for name in names})
    s, p = cfg.settings, cfg.policy
    assert p.quota is not None and p.answers is not None
    options = (
        s.idempotency.redis,
        s.cache.redis,
        s.keys.redis,
        p.quota.redis,
        p.answers.redis,
        p.personas.sessions.redis,
    )
    resolved = [cfg.secret(o.password) for o in options]
    assert [r.get_secret_value() if r else None for r in resolved] == [f"secret-{n}" for n in names]


POSTGRES_PASSWORD = "pw-CANARY-7d1e0c"  # a password-bearing URL in the file: no error may quote it


def test_a_file_that_is_not_utf8_is_a_configuration_error_that_quotes_nothing(tmp_path: Path) -> None:
    """A file with a byte that is not UTF-8 raised UnicodeDecodeError: a traceback from
    check-config and serve, and on SIGHUP an asyncio 'Task exception' line whose repr held the
    whole file's bytes (its passwords included)."""
    path = tmp_path / "sidecar.yaml"
    path.write_bytes(
        b"settings:\n  telemetry:\n    ledger: {backend: postgres, postgres_url: 'postgresql://u:"
        + POSTGRES_PASSWORD.encode()
        + b"@db/usage'}\n  log_level: \xff\n"
    )
    with pytest.raises(ConfigError) as info:
        load_config(path, {})
    assert info.value.problems == ["not UTF-8 text: line 4, column 14"]
    assert POSTGRES_PASSWORD not in str(info.value)


def test_a_yaml_syntax_error_names_its_place_without_quoting_the_line(tmp_path: Path) -> None:
    """PyYAML's message quotes the offending line; a password in a URL on it reached stderr."""
    path = tmp_path / "sidecar.yaml"
    path.write_text(
        "settings:\n  telemetry:\n    ledger: {backend: postgres, postgres_url: "
        f'"postgresql://u:{POSTGRES_PASSWORD}@db/usage}}\n'
    )
    with pytest.raises(ConfigError) as info:
        load_config(path, {})
    (problem,) = info.value.problems
    assert problem == (
        "not valid YAML: while scanning a quoted scalar (line 3, column 47): "
        "found unexpected end of stream (line 4, column 1)"
    )
    assert POSTGRES_PASSWORD not in str(info.value)


def test_an_env_override_with_a_yaml_syntax_error_quotes_nothing() -> None:
    url = f'"postgresql://u:{POSTGRES_PASSWORD}@db/usage'
    with pytest.raises(ConfigError) as info:
        load_config(None, {"SIDECAR__SETTINGS__TELEMETRY__LEDGER__POSTGRES_URL": url})
    assert info.value.problems[0].startswith(
        "SIDECAR__SETTINGS__TELEMETRY__LEDGER__POSTGRES_URL: value is not valid YAML"
    )
    assert POSTGRES_PASSWORD not in str(info.value)


@pytest.mark.parametrize("depth", [5_000])
def test_yaml_nested_too_deeply_is_a_configuration_error(tmp_path: Path, depth: int) -> None:
    """PyYAML parses flow collections recursively: deep nesting raised RecursionError (a traceback)."""
    path = tmp_path / "sidecar.yaml"
    path.write_text("policy: {default_route: " + "[" * depth + "]" * depth + "}\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, {})
    assert info.value.problems == ["not valid YAML: nested too deeply"]
    with pytest.raises(ConfigError) as info:
        load_config(None, {"SIDECAR__POLICY__DEFAULT_ROUTE": "[" * depth + "]" * depth})
    assert info.value.problems == [
        "SIDECAR__POLICY__DEFAULT_ROUTE: value is not valid YAML: nested too deeply"
    ]


def test_a_key_given_twice_is_a_configuration_error_naming_it(tmp_path: Path) -> None:
    """PyYAML keeps the last of two equal keys silently: a second `settings:` block dropped the
    first one's auth token, a second deployment of one name replaced the first, and check-config
    said OK."""
    policy = "policy:\n  default_route: e\n  routes: {e: {deployments: [e]}}\n  deployments:\n"
    path = tmp_path / "sidecar.yaml"
    path.write_text(
        policy + "    e: {provider: echo, model: echo-1}\n    e: {provider: echo, model: echo-2}\n"
    )
    with pytest.raises(ConfigError) as info:
        load_config(path, {})
    assert info.value.problems == ["not valid YAML: duplicate key 'e' (line 6, column 5)"]
    path.write_text(
        "settings:\n  auth: {token: {env: SIDECAR_TOKEN}}\n"
        + policy
        + "    e: {provider: echo, model: echo-1}\nsettings:\n  log_level: DEBUG\n"
    )
    with pytest.raises(ConfigError) as info:
        load_config(path, {"SIDECAR_TOKEN": "t"})
    assert info.value.problems == ["not valid YAML: duplicate key 'settings' (line 8, column 1)"]


def test_keys_a_merge_brings_in_may_still_be_overridden(tmp_path: Path) -> None:
    path = tmp_path / "sidecar.yaml"
    path.write_text(
        "x-echo: &echo {provider: echo, model: echo-1, context_window: 1000}\n"
        "policy:\n  default_route: e\n"
        "  deployments:\n    e: {<<: *echo, context_window: 2000}\n"
        "  routes: {e: {deployments: [e]}}\n"
    )
    with pytest.raises(ConfigError) as info:  # only the anchor's holder is refused, as unknown
        load_config(path, {})
    assert info.value.problems == ["x-echo: Extra inputs are not permitted"]
    path.write_text(
        "policy:\n  default_route: e\n"
        "  deployments:\n    base: &echo {provider: echo, model: echo-1, context_window: 1000}\n"
        "    e: {<<: *echo, context_window: 2000}\n"
        "  routes: {e: {deployments: [e]}}\n"
    )
    assert load_config(path, {}).policy.deployments["e"].context_window == 2000


def test_an_env_override_value_with_a_key_given_twice_is_listed() -> None:
    with pytest.raises(ConfigError) as info:
        load_config(None, {"SIDECAR__SETTINGS__AUTH": "{token: {env: A}, token: {env: B}}"})
    assert info.value.problems == [
        "SIDECAR__SETTINGS__AUTH: value is not valid YAML: duplicate key 'token' (line 1, column 19)"
    ]


@pytest.mark.parametrize(
    "url",
    [
        f"redis://:{POSTGRES_PASSWORD}/x@redis.internal:6379/0",  # a '/' in the password, not encoded
        f"rediss://user:{POSTGRES_PASSWORD}@redis.internal:63x79/0",
    ],
)
def test_a_redis_url_whose_port_does_not_parse_is_named_without_quoting_it(url: str) -> None:
    """The error quoted the URL's netloc after the last '@': with a '/' in the password (not
    percent-encoded) that was the password itself."""
    with pytest.raises(ConfigError) as info:
        load_config(
            None, {"SIDECAR__SETTINGS__KEYS__STORE": "redis", "SIDECAR__SETTINGS__KEYS__REDIS_URL": url}
        )
    assert info.value.problems == [
        "settings.keys: Value error, redis_url: the port is not a number "
        "(a password with '/', '?', '#' or '@' must be percent-encoded)"
    ]
    assert POSTGRES_PASSWORD not in str(info.value)


def test_two_credentials_with_one_token_are_a_configuration_error(tmp_path: Path) -> None:
    """The first credential whose token matches wins: a second credential with the same token (the
    same variable, or two variables holding one value) was unreachable, silently, and which grants
    and tenants a caller got depended on the order: a tenant-bound credential listed after a
    wider one sharing its token acted for every tenant."""
    import yaml

    auth = {
        "token": {"env": "SHARED"},
        "credentials": [
            {"name": "ops", "token": {"env": "OPS"}, "allow": ["*"]},
            {"name": "acme-app", "token": {"env": "ACME"}, "allow": ["*"], "tenants": ["acme"]},
            {"name": "beta-app", "token": {"env": "OPS"}, "allow": ["*"], "tenants": ["beta"]},
        ],
    }
    path = tmp_path / "sidecar.yaml"
    path.write_text(yaml.safe_dump({"settings": {"auth": auth}, "policy": {
        "default_route": "e", "deployments": {"e": {"provider": "echo", "model": "echo-1"}},
        "routes": {"e": {"deployments": ["e"]}}}}))  # fmt: skip
    env = {"SHARED": "tok-shared-0001", "OPS": "tok-ops-0002", "ACME": "tok-ops-0002"}
    with pytest.raises(ConfigError) as info:
        load_config(path, env)
    assert info.value.problems == [
        "settings.auth.credentials.acme-app.token: the same token as settings.auth.credentials.ops.token "
        "(each credential needs its own)",
        "settings.auth.credentials.beta-app.token: the same token as settings.auth.credentials.ops.token "
        "(each credential needs its own)",
    ]
    assert "tok-ops-0002" not in str(info.value)
    env["ACME"], env["OPS"] = "tok-acme-0003", "tok-shared-0001"
    with pytest.raises(ConfigError) as info:
        load_config(path, env)
    assert info.value.problems[0] == (
        "settings.auth.credentials.ops.token: the same token as settings.auth.token "
        "(each credential needs its own)"
    )
