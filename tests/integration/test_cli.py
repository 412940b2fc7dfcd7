"""The console script as a person runs it: serve in one process, chat from another, SIGTERM."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.conftest import echo_policy, free_port
from tests.support.prometheus import quiet_telemetry

pytestmark = pytest.mark.integration
SIDECAR = [sys.executable, "-m", "sidecar"]
INVALID = Path(__file__).resolve().parents[1] / "unit" / "config" / "invalid"


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*SIDECAR, *args], capture_output=True, text=True, timeout=30, env={**os.environ, **(env or {})}
    )


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    config = tmp_path / "sidecar.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "settings": {
                    "listen": {"address": f"127.0.0.1:{port}"},
                    "telemetry": quiet_telemetry(tmp_path),
                },
                "policy": echo_policy(),
            }
        )
    )
    proc = subprocess.Popen([*SIDECAR, "serve", "--config", str(config)], stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    line = proc.stderr.readline()  # the first log line says it is serving
    assert "sidecar serving" in line, line
    try:
        yield f"127.0.0.1:{port}"
    finally:
        proc.send_signal(signal.SIGTERM)
        _, errors = proc.communicate(timeout=15)
        assert proc.returncode == 0, errors


def test_chat_unary_and_stream(served: str) -> None:
    unary = run("chat", "--target", served, "hello from the CLI")
    assert unary.returncode == 0, unary.stderr
    assert unary.stdout == "hello from the CLI\n"
    assert "echo/echo-1" in unary.stderr and "tokens in=" in unary.stderr
    stream = run("chat", "--target", served, "--stream", "--max-tokens", "2", "one two three")
    assert stream.returncode == 0, stream.stderr
    assert stream.stdout == "one two\n"
    assert "FINISH_REASON_LENGTH" in stream.stderr


def test_chat_reports_errors_by_reason(served: str) -> None:
    result = run("chat", "--target", served, "--model", "nope", "hi")
    assert result.returncode == 1
    assert "NOT_FOUND MODEL_NOT_FOUND" in result.stderr


def test_embed_prints_one_vector_a_line_and_errors_by_field(served: str) -> None:
    result = run("embed", "--target", served, "--tenant", "acme", "a cat", "a dog")
    assert result.returncode == 0, result.stderr
    vectors = [json.loads(line) for line in result.stdout.splitlines()]
    assert [len(v) for v in vectors] == [384, 384]
    assert "dimensions=384" in result.stderr and "via local:local" in result.stderr
    bad = run("embed", "--target", served, "--tenant", "acme", "ok", "  ")
    assert bad.returncode == 1
    assert "INVALID_ARGUMENT INVALID_REQUEST" in bad.stderr and "texts[1]" in bad.stderr


def test_check_config() -> None:
    good = run("check-config", str(Path(__file__).resolve().parents[2] / "examples" / "sidecar.yaml"),
               env={"SIDECAR_TOKEN": "t", "OPENAI_API_KEY": "k", "ANTHROPIC_API_KEY": "k"})  # fmt: skip
    assert good.returncode == 0 and "OK" in good.stdout
    bad = run("check-config", str(INVALID / "bad_values.yaml"))
    assert bad.returncode == 1
    assert "4 configuration error(s)" in bad.stderr


def test_a_served_sidecar_loads_no_library_its_configuration_does_not_use(tmp_path: Path) -> None:
    """The served process's mapped extension modules, after a call: no aiohttp (the injector's and the
    quota webhook's), no cryptography (keys), no rpds (jsonschema's, loaded by the first call with a
    schema), no tiktoken (an OpenAI deployment with no encodings_dir counts with the estimate), no
    regex (the answer policy's words, and schema patterns). Each is megabytes of RSS in every pod
    (bench/analysis.md)."""
    port = free_port()
    config = tmp_path / "sidecar.yaml"
    settings = {"listen": {"address": f"127.0.0.1:{port}"}, "telemetry": quiet_telemetry(tmp_path)}
    gpt = {"provider": "openai", "model": "gpt-4o", "base_url": f"http://127.0.0.1:{free_port()}/v1"}
    policy = echo_policy(deployments={"echo": {"provider": "echo", "model": "echo-1"}, "gpt": gpt})
    config.write_text(yaml.safe_dump({"settings": settings, "policy": policy}))
    proc = subprocess.Popen([*SIDECAR, "serve", "--config", str(config)], stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        while "sidecar serving" not in (line := proc.stderr.readline()):  # after the encoding warning
            assert line, "the sidecar exited before serving"
        assert run("chat", "--target", f"127.0.0.1:{port}", "hello").returncode == 0
        mapped = Path(f"/proc/{proc.pid}/maps").read_text()
        assert "site-packages/grpc/" in mapped  # the check sees the process's libraries
        for library in ("aiohttp", "cryptography", "rpds", "tiktoken", "regex"):
            assert f"site-packages/{library}/" not in mapped, library
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=15)


SERVE_ONE_CALL = """
import asyncio, sys
from pathlib import Path
import grpc, yaml
from sidecar.app import build_server
from sidecar.config.load import load_config
from tests.conftest import user
from tests.support.api import Stubs, generate_request
from tests.support.upstream import Reply, Upstream

async def main():
    upstream = await Upstream().start()
    upstream.push(Reply.json("openai/chat_completion.json"))
    raw = yaml.safe_load(Path(sys.argv[1]).read_text())
    gpt = {"provider": "openai", "model": "m", "base_url": f"{upstream.url}/v1"}
    routes = {"r": {"deployments": ["gpt"]}}
    raw["policy"] = {"default_route": "r", "deployments": {"gpt": gpt}, "routes": routes}
    Path(sys.argv[1]).write_text(yaml.safe_dump(raw))
    sidecar = build_server(load_config(Path(sys.argv[1]), {}))
    await sidecar.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{sidecar.port}") as channel:
        await Stubs(channel).Generate(generate_request(messages=[user("hi")]), timeout=10)
    await sidecar.stop(0)
    await upstream.close()
    print(sorted({m.split(".")[0] for m in sys.modules}))

asyncio.run(main())
"""


def test_a_sidecar_without_tracing_never_imports_opentelemetry(tmp_path: Path) -> None:
    """Tracing off (the default) costs no OpenTelemetry import (half a megabyte of RSS): built, served
    one call with an upstream HTTP request (which asks for the current trace context), stopped."""
    config = tmp_path / "sidecar.yaml"
    settings = {"listen": {"address": "127.0.0.1:0"}, "telemetry": quiet_telemetry(tmp_path)}
    config.write_text(yaml.safe_dump({"settings": settings, "policy": echo_policy()}))
    done = subprocess.run(
        [sys.executable, "-c", SERVE_ONE_CALL, str(config)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr[-2000:]
    loaded = json.loads(done.stdout.strip().splitlines()[-1].replace("'", '"'))
    assert "grpc" in loaded and "opentelemetry" not in loaded


def test_version() -> None:
    assert run("version").stdout.startswith("sidecar ")


def test_sigterm_waits_for_a_stream_in_flight(tmp_path: Path) -> None:
    port = free_port()
    policy = echo_policy(
        deployments={
            "echo": {
                "provider": "echo",
                "model": "e",
                "echo": {"chunk_delay_seconds": 0.2, "tokens_per_chunk": 1},
            }
        }
    )
    config = tmp_path / "sidecar.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "settings": {
                    "listen": {"address": f"127.0.0.1:{port}"},
                    "shutdown_grace_seconds": 10,
                    "telemetry": quiet_telemetry(tmp_path),
                },
                "policy": policy,
            }
        )
    )
    server = subprocess.Popen([*SIDECAR, "serve", "--config", str(config)], stderr=subprocess.PIPE, text=True)
    try:
        assert server.stderr is not None and "sidecar serving" in server.stderr.readline()
        chat = subprocess.Popen(
            [*SIDECAR, "chat", "--target", f"127.0.0.1:{port}", "--stream", "a b c d e f"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert chat.stdout is not None
        assert chat.stdout.read(1) == "a"  # the stream has started
        server.send_signal(signal.SIGTERM)
        started = time.monotonic()
        out, err = chat.communicate(timeout=15)
        assert chat.returncode == 0, err
        assert "a" + out == "a b c d e f\n"
        _, errors = server.communicate(timeout=15)
        assert server.returncode == 0, errors
        assert time.monotonic() - started < 10
    finally:
        if server.poll() is None:  # a failed assertion must not leave a server running
            server.kill()
            server.communicate()


def test_serve_on_a_busy_port_fails_clearly(served: str, tmp_path: Path) -> None:
    config = tmp_path / "busy.yaml"
    settings = {"listen": {"address": served}, "telemetry": quiet_telemetry(tmp_path)}
    config.write_text(yaml.safe_dump({"settings": settings, "policy": echo_policy()}))
    result = run("serve", "--config", str(config))
    assert result.returncode == 1
    assert f"cannot serve: cannot listen on {served}" in result.stderr


def test_serve_refuses_a_persona_prompt_the_exact_tokenizer_finds_too_long(
    tmp_path: Path, encodings_dir: Path
) -> None:
    """check-config counts with the estimate (350 here); serving counts with tiktoken (700 > 600)."""
    policy = {
        "default_route": "gpt",
        "deployments": {"gpt": {"provider": "openai", "model": "gpt-4o", "base_url": "http://127.0.0.1:9"}},
        "routes": {"gpt": {"deployments": ["gpt"]}},
        "routing": {"probes": {"enabled": False}},
        "context": {"encodings_dir": str(encodings_dir)},
        "personas": {"personas": [{"id": "ship", "name": "Ship", "system_prompt": "🚢" * 350}]},
    }
    config = tmp_path / "personas.yaml"
    settings = {"listen": {"address": "127.0.0.1:0"}, "telemetry": quiet_telemetry(tmp_path)}
    config.write_text(yaml.safe_dump({"settings": settings, "policy": policy}))
    assert run("check-config", str(config)).returncode == 0
    result = run("serve", "--config", str(config))
    assert result.returncode == 1
    assert "sidecar: personas:" in result.stderr and "ship" in result.stderr and "600" in result.stderr


def test_a_missing_extra_is_not_reported_as_a_busy_address(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Tracing to OTLP without the exporter installed said `cannot serve on 127.0.0.1:50051`."""
    from sidecar.cli import main

    monkeypatch.setitem(sys.modules, "opentelemetry.exporter.otlp.proto.http.trace_exporter", None)
    tracing = {"enabled": True, "otlp_endpoint": "http://127.0.0.1:4318/v1/traces"}
    settings = {
        "listen": {"address": f"127.0.0.1:{free_port()}"},
        "telemetry": {**quiet_telemetry(tmp_path), "tracing": tracing},
    }
    config = tmp_path / "otlp.yaml"
    config.write_text(yaml.safe_dump({"settings": settings, "policy": echo_policy()}))
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        assert main(["serve", "--config", str(config)]) == 1
    finally:  # serve set up logging on this process's root logger: a handler on capsys's stream, INFO
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
    err = capsys.readouterr().err
    assert "needs the OTLP exporter" in err and "listen" not in err and "cannot serve on" not in err
