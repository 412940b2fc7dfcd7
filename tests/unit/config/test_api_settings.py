"""`settings.admin` and `settings.listen` as operators write them."""

from __future__ import annotations

from pathlib import Path

import pytest

from sidecar.config.load import ConfigError, load_config


def test_admin_mode_off_unquoted_is_off(tmp_path: Path) -> None:
    """YAML 1.1 reads an unquoted `off` as false: `admin: {mode: off}`, as the configuration page
    writes it, was refused with "Input should be 'off', 'listener' or 'unix_socket'"."""
    path = tmp_path / "sidecar.yaml"
    path.write_text(
        "settings:\n  admin: {mode: off}\n"
        "policy:\n  default_route: e\n  deployments: {e: {provider: echo, model: echo-1}}\n"
        "  routes: {e: {deployments: [e]}}\n"
    )
    assert load_config(path, {}).settings.admin.mode == "off"


@pytest.mark.parametrize(
    "address", ["127.example.internal:50051", "127.0.0.1.nip.io:50051", "localhost.evil.example:1", "0:50051"]
)
def test_a_host_name_that_only_starts_like_loopback_needs_a_token(tmp_path: Path, address: str) -> None:
    """Any host starting with "127." passed for loopback: a DNS name such as 127.example.internal
    (resolving to the pod's own address) served every caller on the network, registered keys
    included, with no token."""
    path = tmp_path / "sidecar.yaml"
    path.write_text(
        f"settings:\n  listen: {{address: '{address}'}}\n"
        "policy:\n  default_route: e\n  deployments: {e: {provider: echo, model: echo-1}}\n"
        "  routes: {e: {deployments: [e]}}\n"
    )
    with pytest.raises(ConfigError, match=r"is reachable beyond this host: set auth\.token"):
        load_config(path, {})


@pytest.mark.parametrize("address", ["127.0.0.1:0", "127.3.4.5:1", "localhost:50051", "[::1]:0"])
def test_loopback_addresses_need_no_token(tmp_path: Path, address: str) -> None:
    path = tmp_path / "sidecar.yaml"
    path.write_text(
        f"settings:\n  listen: {{address: '{address}'}}\n"
        "policy:\n  default_route: e\n  deployments: {e: {provider: echo, model: echo-1}}\n"
        "  routes: {e: {deployments: [e]}}\n"
    )
    assert load_config(path, {}).settings.listen.address == address
