"""policy.answers: validated at load with errors naming the field; check-config reports them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from sidecar.cli import main
from sidecar.config.answers import AgentPolicy
from sidecar.config.load import ConfigError
from tests.conftest import echo_policy, make_config

PERSONA = {"id": "maya", "name": "Maya", "system_prompt": "You are Maya's assistant."}


def config(agent: dict[str, Any], tmp_path: Path, **answers: Any) -> Any:
    policy = echo_policy(personas={"personas": [PERSONA]}, answers={"agents": {"maya": agent}, **answers})
    return make_config({"policy": policy}, {}, tmp_path)


def test_defaults_are_the_issue_s(tmp_path: Path) -> None:
    cfg = config({}, tmp_path)
    assert cfg.policy.answers is not None
    p = cfg.policy.answers.agents["maya"]
    assert (p.similarity_threshold, p.novelty_threshold, p.complexity_threshold) == (0.85, 0.7, 0.6)
    assert p.escalations and p.clarification and p.availability == []


@pytest.mark.parametrize(
    ("agent", "answers", "message"),
    [
        ({"similarity_threshold": 1.5}, {}, "similarity_threshold"),
        ({"escalations_per_day": 10, "escalations_per_week": 5}, {}, "escalations_per_day (10) is more"),
        ({"timezone": "Mars/Olympus"}, {}, "unknown time zone"),
        ({"availability": [{"start": "18:00", "end": "09:00"}]}, {}, "must be after start"),
        ({"availability": [{"days": ["someday"]}]}, {}, "days"),
        ({"allowed_tiers": ["gold"]}, {}, "answers.agents.maya.allowed_tiers: unknown tier 'gold'"),
        ({"creators": ["nobody"]}, {}, "answers.agents.maya.creators: unknown credential 'nobody'"),
        ({"context_summary": {"route": "gone"}}, {}, "maya.context_summary.route: unknown route 'gone'"),
        ({"context_summary": {"route": "echo", "timeout_seconds": 0}}, {}, "timeout_seconds"),
        ({}, {"sweep_interval_seconds": 0}, "sweep_interval_seconds"),
        ({}, {"sweep_batch": 0}, "sweep_batch"),
        ({"blocked_topics": ["  "]}, {}, "blocked topic"),
        ({"clarifying_questions": ["a", "b", "c"]}, {}, "clarifying_questions"),
        ({}, {"store": "redis"}, "needs `redis_url`"),
        ({}, {"embedding_route": "nope"}, "answers.embedding_route: unknown embedding route 'nope'"),
        ({"unknown_field": 1}, {}, "unknown_field"),
    ],
)
def test_bad_policy_is_refused_naming_the_field(
    agent: dict[str, Any], answers: dict[str, Any], message: str, tmp_path: Path
) -> None:
    with pytest.raises(ConfigError) as err:
        config(agent, tmp_path, **answers)
    assert message in str(err.value)


def test_an_agent_must_be_a_persona(tmp_path: Path) -> None:
    policy = echo_policy(answers={"agents": {"ghost": {}}})
    with pytest.raises(ConfigError, match=r"answers\.agents\.ghost: unknown persona 'ghost'"):
        make_config({"policy": policy}, {}, tmp_path)


def test_canonical_file_is_read_and_checked(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(yaml.safe_dump([{"question": "q?", "answer": "a.", "layer": "friends"}]))
    p = AgentPolicy(canonical=[{"question": "x", "answer": "y"}], canonical_file=good)  # type: ignore[list-item]
    assert [(s.question, s.layer) for s in p.seeds()] == [("x", "public"), ("q?", "friends")]
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump([{"question": "q?", "answer": "a.", "layer": "secret"}, {"answer": "a"}]))
    with pytest.raises(ValidationError) as err:
        AgentPolicy(canonical_file=bad)
    assert "[0].layer" in str(err.value) and "[1].question" in str(err.value)
    twice = tmp_path / "twice.yaml"
    twice.write_text("- question: q?\n  answer: a.\n  answer: b.\n")
    with pytest.raises(ValidationError, match=r"duplicate key 'answer' \(line 3, column 3\)"):
        AgentPolicy(canonical_file=twice)


def test_check_config_covers_the_answers_section(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "sidecar.yaml"
    answers = {"agents": {"maya": {"allowed_tiers": ["gold"]}}}
    policy = echo_policy(personas={"personas": [PERSONA]}, answers=answers)
    path.write_text(yaml.safe_dump({"policy": policy}))
    assert main(["check-config", str(path)]) != 0
    assert "answers.agents.maya.allowed_tiers: unknown tier 'gold'" in capsys.readouterr().err


def test_the_example_agent_is_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    root = Path(__file__).resolve().parents[3]
    monkeypatch.chdir(root)  # the example's paths are relative to the repository
    assert main(["check-config", str(root / "examples/answers/sidecar.yaml")]) == 0
