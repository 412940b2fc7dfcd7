"""What a reload of the answer policy reports: the agents added, removed and changed (with the
fields), an edited canonical_file, and the settings read only at start."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from sidecar.answers.reload import AT_START, changes
from sidecar.config.answers import AgentPolicy


def test_changes_name_each_agent_and_its_fields() -> None:
    old = {"maya": AgentPolicy(), "leo": AgentPolicy()}
    new = {"maya": AgentPolicy(blocked_topics=["politics"], escalations_per_day=3), "zed": AgentPolicy()}
    assert changes(old, new) == [
        "agent leo: removed",
        "agent maya: escalations_per_day, blocked_topics",
        "agent zed: added",
    ]
    assert changes(new, new) == []


def test_an_edited_canonical_file_is_a_change(tmp_path: Path) -> None:
    path = tmp_path / "canonical.yaml"
    path.write_text(yaml.safe_dump([{"question": "q1?", "answer": "a1"}]))
    before = AgentPolicy(canonical_file=path)
    path.write_text(
        yaml.safe_dump([{"question": "q1?", "answer": "a1"}, {"question": "q2?", "answer": "a2"}])
    )
    after = AgentPolicy(canonical_file=path)
    assert changes({"maya": before}, {"maya": after}) == ["agent maya: canonical answers"]


@pytest.mark.parametrize(
    "name", ["store", "sqlite_path", "redis_url", "key_prefix", "sweep_interval_seconds"]
)
def test_the_store_and_the_sweep_are_read_at_start(name: str) -> None:
    assert name in AT_START and "agents" not in AT_START
