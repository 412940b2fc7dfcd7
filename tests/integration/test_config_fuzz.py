"""Hostile and careless configurations: every field of examples/sidecar.yaml set to values of the
wrong type, negative, zero, huge, not finite, enormous strings, secret references to nothing, and
an unknown key in every section. The loader answers each with a ConfigError naming the field (or
its section), never another exception, which `check-config` and `serve` would print as a traceback.
And through the real command line: `check-config` and `serve` exit non-zero with the field named,
also for files that check-config cannot see (a Vault token file that never ends)."""

from __future__ import annotations

import copy
import math
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from sidecar.config.load import ConfigError, load_config

pytestmark = pytest.mark.integration
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "sidecar.yaml"
ENV = {"SIDECAR_TOKEN": "t0ken-abcdefgh-1", "OPENAI_API_KEY": "x" * 20, "ANTHROPIC_API_KEY": "y" * 20}
HOSTILE: list[Any] = [-1, 0, 10**30, math.inf, math.nan, "x", [], {}, None, "a" * 300, {"env": "NOPE"}]
SIDECAR = [sys.executable, "-m", "sidecar"]

Path_ = tuple[str | int, ...]


def leaves(node: Any, at: Path_ = ()) -> Iterator[tuple[Path_, Any]]:
    """Every place in the document: mappings and lists (for an unknown key) and their values."""
    if at:
        yield at, node
    if isinstance(node, dict):
        for key, value in node.items():
            yield from leaves(value, (*at, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from leaves(value, (*at, i))


def mutated(base: dict[str, Any], at: Path_, value: Any) -> dict[str, Any]:
    raw = copy.deepcopy(base)
    node: Any = raw
    for part in at[:-1]:
        node = node[part]
    node[at[-1]] = value
    return raw


def problems_of(raw: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> list[str] | None:
    """The loader's problems with `raw` (None: it loaded); any other exception fails the test. The
    document is handed to the loader as read (its YAML parser is tested on its own: and it is slow)."""
    monkeypatch.setattr("sidecar.config.load._read_yaml", lambda _path: copy.deepcopy(raw))
    try:
        load_config(Path("fuzzed.yaml"), ENV)
    except ConfigError as exc:
        return exc.problems
    return None


def test_every_field_of_the_example_set_to_hostile_values_is_a_config_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    base = yaml.safe_load(EXAMPLE.read_text())
    assert problems_of(base, monkeypatch) is None
    unnamed: list[str] = []
    for at, node in list(leaves(base)):
        cases = [(value, mutated(base, at, value)) for value in HOSTILE]
        if isinstance(node, dict):
            cases.append(("unknown key", mutated(base, (*at, "surely_unknown_key"), 1)))
        dotted = ".".join(map(str, at))
        for value, raw in cases:
            problems = problems_of(raw, monkeypatch)  # any exception but ConfigError fails here
            places = [p.split(":")[0].strip() for p in problems or ()]
            if problems is not None and not any(_related(place, dotted) for place in places):
                unnamed.append(f"{dotted}={value!r:.30}: {problems}")
    assert not unnamed, "\n".join(unnamed[:20])


def _related(place: str, dotted: str) -> bool:
    """A problem named at the mutated field, inside it, or at a section that holds it."""
    return place == dotted or place.startswith(f"{dotted}.") or dotted.startswith(f"{place}.")


def run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*SIDECAR, *args], capture_output=True, text=True, timeout=timeout)


def echo_config(tmp: Path, **policy: Any) -> Path:
    raw = {
        "default_route": "e",
        "deployments": {"e": {"provider": "echo", "model": "m"}},
        "routes": {"e": {"deployments": ["e"]}},
        **policy,
    }
    path = tmp / "sidecar.yaml"
    path.write_text(yaml.safe_dump({"policy": raw}))
    return path


def test_check_config_names_a_time_zone_too_long_for_a_file_name(tmp_path: Path) -> None:
    path = echo_config(tmp_path, quota={"timezone": "Europe/" + "x" * 300})
    result = run("check-config", str(path))
    assert result.returncode == 1
    assert "policy.quota.timezone: Value error, unknown time zone" in result.stderr
    assert "Traceback" not in result.stderr


def test_serve_with_a_vault_token_file_that_never_ends_exits_naming_it(tmp_path: Path) -> None:
    """/dev/zero as the token file: serve read it without end (5.5 GB, deaf to SIGTERM)."""
    path = echo_config(tmp_path)
    raw = yaml.safe_load(path.read_text())
    vault = {"url": "http://127.0.0.1:1", "key_name": "k", "token_file": "/dev/zero"}
    raw["settings"] = {
        "listen": {"address": "127.0.0.1:0"},
        "keys": {"backend": "vault", "vault": vault, "store_path": str(tmp_path / "keys.db")},
        "telemetry": {"metrics": {"enabled": False}, "ledger": {"backend": "none"}},
    }
    path.write_text(yaml.safe_dump(raw))
    assert run("check-config", str(path)).returncode == 0  # the file is read by serve
    result = run("serve", "--config", str(path), timeout=60)
    assert result.returncode == 1
    assert "settings.keys.vault: /dev/zero: larger than 65536 bytes" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("content", [None, b"not a PEM bundle\n"], ids=["missing", "not PEM"])
def test_serve_with_a_ca_file_it_cannot_load_exits_naming_it(tmp_path: Path, content: bytes | None) -> None:
    """settings.http.ca_file was first read at the first HTTPS call: the sidecar served, and every
    upstream failed as unavailable ('upstream connection failed (No such file or directory)'),
    opening every breaker, the setting named nowhere."""
    ca = tmp_path / "ca.pem"
    if content is not None:
        ca.write_bytes(content)
    path = echo_config(tmp_path)
    raw = yaml.safe_load(path.read_text())
    raw["settings"] = {
        "listen": {"address": "127.0.0.1:0"},
        "http": {"ca_file": str(ca)},
        "telemetry": {"metrics": {"enabled": False}, "ledger": {"backend": "none"}},
    }
    path.write_text(yaml.safe_dump(raw))
    result = run("serve", "--config", str(path), timeout=30)
    assert result.returncode == 1, result.stderr[-500:]
    assert f"settings.http.ca_file: {ca}: cannot load the CA bundle" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("which", ["ca_file", "cert_file"])
def test_serve_with_redis_tls_files_it_cannot_load_exits_naming_them(tmp_path: Path, which: str) -> None:
    """A Redis store's TLS files were first read at the first connection: with the quota store's CA
    missing every reserve failed as 'unavailable (ConnectionError)', and quotas were not enforced
    (on_store_error: fail_open), the file named nowhere."""
    missing = tmp_path / f"missing-{which}.pem"
    tls = (
        {which: str(missing)} if which == "ca_file" else {"cert_file": str(missing), "key_file": str(missing)}
    )
    path = echo_config(
        tmp_path, quota={"store": "redis", "redis_url": "rediss://127.0.0.1:1/0", "redis": {"tls": tls}}
    )
    raw = yaml.safe_load(path.read_text())
    raw["settings"] = {
        "listen": {"address": "127.0.0.1:0"},
        "telemetry": {"metrics": {"enabled": False}, "ledger": {"backend": "none"}},
    }
    path.write_text(yaml.safe_dump(raw))
    result = run("serve", "--config", str(path), timeout=30)
    assert result.returncode == 1, result.stderr[-500:]
    assert f"redis.tls: {missing}: cannot load" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("where", ["a directory", "not a database", "in a missing directory"])
def test_serve_with_a_key_store_it_cannot_open_exits_naming_it(tmp_path: Path, where: str) -> None:
    """settings.keys.store_path was first opened at the first key RPC: the sidecar served, and every
    RegisterKey, ListKeys and user-key call failed INTERNAL / KEY_UNAVAILABLE, the setting named nowhere."""
    store = {"a directory": tmp_path, "not a database": tmp_path / "garbage.db"}.get(
        where, tmp_path / "no" / "such" / "keys.db"
    )
    (tmp_path / "garbage.db").write_bytes(b"this is not an SQLite database file, not at all" * 4)
    kek = tmp_path / "kek"
    assert run("keys", "new-kek", str(kek)).returncode == 0
    path = echo_config(tmp_path)
    raw = yaml.safe_load(path.read_text())
    raw["settings"] = {
        "listen": {"address": "127.0.0.1:0"},
        "keys": {"backend": "local", "local": {"kek_file": str(kek)}, "store_path": str(store)},
        "telemetry": {"metrics": {"enabled": False}, "ledger": {"backend": "none"}},
    }
    path.write_text(yaml.safe_dump(raw))
    result = run("serve", "--config", str(path), timeout=30)
    assert result.returncode == 1, result.stderr[-500:]
    assert f"settings.keys.store_path: {store}: cannot open" in result.stderr
    assert "Traceback" not in result.stderr
