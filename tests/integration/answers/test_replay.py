"""The replayed conversation set (tests/fixtures/answers/replay.yaml) through a served sidecar with the
example agent (examples/answers) and the local MiniLM embeddings: every message's path against the
expected one. The figures printed here are the ones in docs/answer-policy.md#path-accuracy."""

from __future__ import annotations

import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml

from sidecar._gen.orchestrator.v1 import answers_pb2 as ans
from sidecar._gen.orchestrator.v1 import escalation_pb2 as esc
from sidecar.core.clock import FakeClock
from tests.conftest import user
from tests.support.api import generate_request

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[3]
LETTER = {getattr(ans, f"ANSWER_PATH_{n}"): c for n, c in (
    ("AUTO_ANSWER", "A"), ("CLARIFY", "B"), ("CANONICAL", "C"), ("OFFER_ESCALATION", "D"),
    ("QUEUED", "E"), ("REFUSE", "F"),
)}  # fmt: skip
RULES = ("vague", "blocked", "wrong_tier", "over_limit")  # paths decided by rules, not by similarity


def example_config(tmp_path: Path) -> dict[str, Any]:
    raw: dict[str, Any] = yaml.safe_load((ROOT / "examples/answers/sidecar.yaml").read_text())
    raw["settings"] = {}
    raw["policy"]["answers"]["sqlite_path"] = str(tmp_path / "answers.db")
    return raw


def wednesday_morning_in_paris() -> FakeClock:
    """A clock whose wall time is Wednesday 2025-11-26 10:00 in Paris: inside the agent's window."""
    target = datetime(2025, 11, 26, 9, 0, tzinfo=UTC).timestamp()
    return FakeClock(start=target - FakeClock().wall() + FakeClock().now)


async def accept(s: Any, who: str, escalation_id: str) -> int:
    """1 when the offer is queued, 0 when the day limit refused it."""
    req = esc.AcceptEscalationRequest(tenant_id="demo", user_id=who, escalation_id=escalation_id)
    try:
        accepted = await s.stub.AcceptEscalation(req)
    except grpc.aio.AioRpcError as err:
        assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, err
        return 0
    assert accepted.escalation.state == esc.ESCALATION_STATE_QUEUED
    return 1


async def test_path_accuracy_on_the_replayed_set(
    serve: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(ROOT)  # the example's paths are relative to the repository
    s = await serve(example_config(tmp_path), clock=wednesday_morning_in_paris())
    messages = yaml.safe_load((ROOT / "tests/fixtures/answers/replay.yaml").read_text())["messages"]
    total, right = Counter[str](), Counter[str]()
    similar_at_080 = accepted = 0
    misses: list[str] = []
    for i, m in enumerate(messages):
        who = m.get("user", f"fan{i}")
        req = generate_request(
            tenant_id="demo", user_id=who, conversation_id=f"c{i}", persona_id="chef-maya",
            messages=[user(m["text"])],
        )  # fmt: skip
        d = (await s.stub.Generate(req)).summary.answer_decision
        got = LETTER[d.path]
        total[m["kind"]] += 1
        if got == m["expect"]:
            right[m["kind"]] += 1
        else:
            misses.append(
                f"{m['kind']}: {m['text']!r} -> {got} ({d.reason}, similarity {d.signals.similarity:.3f})"
            )
        if m["kind"] == "paraphrase" and d.signals.similarity >= 0.80:
            similar_at_080 += 1
        if m.get("accept") and got == "D":
            accepted += await accept(s, who, d.escalation_id)
    overall = sum(right.values()) / sum(total.values())
    lines = [f"path accuracy on {sum(total.values())} messages: {overall:.1%}"]
    lines += [f"  {kind:<11} {right[kind]}/{total[kind]}" for kind in total]
    lines.append(f"  paraphrases with similarity >= 0.80: {similar_at_080}/{total['paraphrase']}")
    lines += [f"  miss: {miss}" for miss in misses]
    with capsys.disabled():
        sys.stdout.write("\n" + "\n".join(lines) + "\n")
    assert accepted == 5  # the day limit: the over_limit messages came after it was reached
    for kind in RULES:
        assert right[kind] == total[kind], misses
    assert overall >= 0.85, misses
