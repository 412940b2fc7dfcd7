"""`settings.admin` as operators write it."""

from __future__ import annotations

from pathlib import Path

from sidecar.config.load import load_config


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
