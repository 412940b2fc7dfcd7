from __future__ import annotations

import pytest
import yaml
from conftest import CONTRACT

from orchestrator_client._connection import resolve


def test_defaults_environment_and_explicit_arguments() -> None:
    assert resolve(environ={}).target == "127.0.0.1:50051" and resolve(environ={}).token is None
    env = {"ORCHESTRATOR_SIDECAR_ADDRESS": "unix:///run/sidecar.sock", "ORCHESTRATOR_SIDECAR_TOKEN": "t"}
    assert resolve(environ=env) == resolve("unix:///run/sidecar.sock", "t", environ={})
    assert resolve("10.0.0.1:7000", environ=env).target == "10.0.0.1:7000"
    assert resolve("/run/s.sock", environ={}).target == "unix:///run/s.sock"
    assert resolve(token="", environ=env).token is None  # an explicit empty token sends none


BAD_ADDRESSES = ["localhost", "127.0.0.1", "host:0", "host:99999", "host:abc", "unix://relative/s.sock",
                 "unix:relative.sock", "  "]  # fmt: skip


@pytest.mark.parametrize("address", BAD_ADDRESSES)
def test_an_address_of_no_documented_form_is_refused_naming_it(address: str) -> None:
    """As the TypeScript and Java clients do: not a channel to port 443 (gRPC's default for a host
    without a port) whose calls then fail UNAVAILABLE, retryable, as if the sidecar were down."""
    with pytest.raises(ValueError, match="sidecar address"):
        resolve(address, environ={})


def test_the_documented_forms_are_taken() -> None:
    for address, target in [
        ("127.0.0.1:50051", "127.0.0.1:50051"),
        ("sidecar:7", "sidecar:7"),
        ("[::1]:7", "[::1]:7"),
        ("unix:///run/s.sock", "unix:///run/s.sock"),
        ("unix:/run/s.sock", "unix:/run/s.sock"),
        ("/run/s.sock", "unix:///run/s.sock"),
    ]:
        assert resolve(address, environ={}).target == target


def test_the_shared_address_table() -> None:
    """tests/contract/addresses.yaml, replayed by every client: the same addresses taken and refused."""
    table = yaml.safe_load((CONTRACT / "addresses.yaml").read_text())
    for address, path in table["unix"].items():
        target = resolve(address, environ={}).target
        assert target.startswith("unix:") and target.removeprefix("unix:").removeprefix("//") == path, address
    for address in table["tcp"]:
        assert resolve(address, environ={}).target == address
    for address in table["refused"]:
        with pytest.raises(ValueError, match="sidecar address"):
            resolve(address, environ={})
