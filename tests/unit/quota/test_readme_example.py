"""The quota policy example of docs/quotas.md loads as written (with deployments and routes filled in)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from sidecar.config.schema import Policy

PAGE = Path(__file__).resolve().parents[3] / "docs" / "quotas.md"


def test_readme_policy_example_is_valid() -> None:
    section = PAGE.read_text().split("## Policy format", 1)[1]
    block = re.search(r"```yaml\n(.*?)```", section, re.S)
    assert block is not None
    policy = yaml.safe_load(block.group(1))["policy"]
    price = {"input_per_million": 5, "output_per_million": 15}
    policy["deployments"] = {
        name: {"provider": "echo", "model": name, "price": price} for name in ("echo", "gpt-big", "gpt-small")
    }
    policy["routes"]["echo"] = {"deployments": ["echo"]}
    policy["default_route"] = "echo"
    parsed = Policy.model_validate(policy)
    assert parsed.quota is not None and parsed.quota.store == "redis"
    assert parsed.tiers["trial"].allowed_routes == ["echo"]
    assert not parsed.quota.tenants["acme"].limits[1].enabled
