from __future__ import annotations

from orchestrator_client._connection import resolve


def test_defaults_environment_and_explicit_arguments() -> None:
    assert resolve(environ={}).target == "127.0.0.1:50051" and resolve(environ={}).token is None
    env = {"ORCHESTRATOR_SIDECAR_ADDRESS": "unix:///run/sidecar.sock", "ORCHESTRATOR_SIDECAR_TOKEN": "t"}
    assert resolve(environ=env) == resolve("unix:///run/sidecar.sock", "t", environ={})
    assert resolve("10.0.0.1:7000", environ=env).target == "10.0.0.1:7000"
    assert resolve("/run/s.sock", environ={}).target == "unix:///run/s.sock"
    assert resolve(token="", environ=env).token is None  # an explicit empty token sends none
