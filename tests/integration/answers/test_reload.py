"""The answer policy reloaded without a restart, through the real server's reload entry point (the one
SIGHUP calls) and through SIGHUP to a served sidecar process: changed blocked topics, allowed tiers,
limits, thresholds, creators and canonical answers are in force for the next call; a policy naming
what the running sidecar lacks is refused whole and the old one stays; a file that does not pass the
check changes nothing."""

from __future__ import annotations

import signal
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml

from sidecar._gen.orchestrator.v1 import answers_pb2 as ans
from sidecar._gen.orchestrator.v1 import escalation_pb2 as esc
from tests.conftest import free_port, make_config
from tests.integration.answers.conftest import PERSONAS, TOKENS, answers_config, bearer
from tests.integration.answers.test_cli import ROOT, SIDECAR, run
from tests.integration.answers.test_lifecycle import NOVEL, accept, ask, offered
from tests.integration.helpers import rich
from tests.support.prometheus import quiet_telemetry

pytestmark = pytest.mark.integration


def sqlite(tmp_path: Path) -> dict[str, Any]:
    return {"store": "sqlite", "sqlite_path": str(tmp_path / "answers.db")}


async def reload(s: Any, tmp_path: Path, raw: dict[str, Any]) -> list[str]:
    where = tmp_path / f"reload-{uuid.uuid4().hex[:8]}"
    where.mkdir()
    cfg = make_config({**raw, "settings": {**raw["settings"], "listen": {"address": "127.0.0.1:0"}}},
                      TOKENS, where)  # fmt: skip
    problems: list[str] = await s.sidecar.reload(cfg, source="test")
    return problems


def reloads(s: Any, result: str) -> float | None:
    registry = s.sidecar.deps.telemetry.metrics.registry
    value: float | None = registry.get_sample_value("sidecar_answer_policy_reloads_total", {"result": result})
    return value


async def test_a_reload_puts_the_changed_agent_policies_in_force(serve: Any, tmp_path: Path) -> None:
    s = await serve(answers_config(sqlite(tmp_path)), environ=TOKENS)
    tattoos = "Do you have any tattoos on your arms?"
    assert (await ask(s, tattoos)).summary.answer_decision.path != ans.ANSWER_PATH_REFUSE
    added = {"question": "Do you teach cooking classes?", "answer": "Yes, on Saturday mornings."}
    changed = answers_config(
        sqlite(tmp_path),
        blocked_topics=["politics", "tattoos"],
        allowed_tiers=["free", "basic", "enterprise"],  # eve (enterprise) may now ask
        escalations_per_day=1,
        canonical=[*answers_config()["policy"]["answers"]["agents"]["maya"]["canonical"], added],
    )
    del changed["policy"]["answers"]["agents"]["leo"]
    changed["policy"]["answers"]["sweep_batch"] = 7  # read at start: logged, not applied
    assert await reload(s, tmp_path, changed) == []
    assert s.sidecar.deps.answers.policy.sweep_batch == 500
    blocked = (await ask(s, tattoos)).summary.answer_decision
    assert (blocked.path, blocked.reason) == (ans.ANSWER_PATH_REFUSE, "blocked_topic")
    eve = (await ask(s, "Can I freeze fresh basil?", who="eve")).summary.answer_decision
    assert eve.path == ans.ANSWER_PATH_CANONICAL  # tier_not_allowed before the reload
    served = (await ask(s, "Do you give cooking classes?")).summary.answer_decision
    assert served.path == ans.ANSWER_PATH_CANONICAL  # the canonical answer added by the reload
    first = await offered(s, who="bob")
    second = await offered(s, who="cat")
    await accept(s, first, who="bob")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await accept(s, second, who="cat")  # the day limit is 1 now
    assert (await rich(err.value)).reason == "ESCALATION_LIMIT_REACHED"
    req = esc.ListEscalationsRequest(tenant_id="acme", agent_id="leo")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await s.stub.ListEscalations(req, metadata=bearer("LEO"))
    assert (await rich(err.value)).reason == "AGENT_NOT_FOUND"  # leo's policy was removed
    assert reloads(s, "applied") == 1.0


async def test_an_offer_of_an_agent_a_reload_removed_is_refused_naming_a_field_of_the_request(
    serve: Any, tmp_path: Path
) -> None:
    """AcceptEscalation has tenant_id, user_id and escalation_id: the offer's agent lost its policy
    is about the escalation, not about an `agent_id` the request does not have."""
    s = await serve(answers_config(sqlite(tmp_path)), environ=TOKENS)
    offer = await offered(s, who="bob")
    without = answers_config(sqlite(tmp_path))
    del without["policy"]["answers"]["agents"]["maya"]
    assert await reload(s, tmp_path, without) == []
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await accept(s, offer, who="bob")
    refused = await rich(err.value)
    assert (refused.reason, refused.fields) == ("AGENT_NOT_FOUND", ["escalation_id"])


async def test_a_policy_naming_what_the_sidecar_does_not_run_is_refused_whole(
    serve: Any, tmp_path: Path
) -> None:
    s = await serve(answers_config(sqlite(tmp_path)), environ=TOKENS)
    bad = answers_config(sqlite(tmp_path), blocked_topics=["imeretian cheese"])
    bad["policy"]["personas"]["personas"] = [*PERSONAS, {"id": "zed", "name": "Zed", "system_prompt": "Zed."}]
    bad["policy"]["answers"]["agents"]["zed"] = {}  # a persona the file adds: personas are not reloaded
    problems = await reload(s, tmp_path, bad)
    assert problems == ["answers.agents.zed: unknown persona 'zed'"]
    still = (await ask(s, NOVEL)).summary.answer_decision
    assert still.path == ans.ANSWER_PATH_OFFER_ESCALATION  # the blocked topic of that file is not in force
    removed = answers_config(sqlite(tmp_path))
    del removed["policy"]["answers"]
    assert await reload(s, tmp_path, removed) == [
        "answers: the section was removed; restart the sidecar to turn the answer policy off"
    ]
    assert (await ask(s, NOVEL)).summary.answer_decision.path == ans.ANSWER_PATH_OFFER_ESCALATION
    assert reloads(s, "refused") == 2.0 and reloads(s, "applied") is None


def wait_for(proc: subprocess.Popen[str], text: str) -> str:
    """Read the served sidecar's log until a line holds `text` (the test's timeout bounds it)."""
    assert proc.stderr is not None
    for line in proc.stderr:
        if text in line:
            return line
    raise AssertionError(f"the sidecar exited before logging {text!r}")


@pytest.fixture
def example(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], Path, dict[str, Any], str]]:
    """The example agent served by `sidecar serve` in another process: (process, config file, config,
    target)."""
    raw = yaml.safe_load((ROOT / "examples/answers/sidecar.yaml").read_text())
    port = free_port()
    raw["settings"] = {"listen": {"address": f"127.0.0.1:{port}"}, "telemetry": quiet_telemetry(tmp_path)}
    raw["policy"]["personas"]["directory"] = str(ROOT / "examples/answers/personas")
    maya = raw["policy"]["answers"]["agents"]["chef-maya"]
    maya["canonical_file"] = str(ROOT / "examples/answers/chef-maya-canonical.yaml")
    maya["availability"] = []  # the test runs at any hour
    path = tmp_path / "sidecar.yaml"
    path.write_text(yaml.safe_dump(raw))
    proc = subprocess.Popen([*SIDECAR, "serve", "--config", str(path)], stderr=subprocess.PIPE, text=True)
    try:
        wait_for(proc, "sidecar serving")
        yield proc, path, raw, f"127.0.0.1:{port}"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    assert proc.returncode == 0


def test_sighup_reloads_the_answer_policy_and_a_bad_file_changes_nothing(
    example: tuple[subprocess.Popen[str], Path, dict[str, Any], str],
) -> None:
    proc, path, raw, target = example
    who = ("--target", target, "--persona", "chef-maya", "--tenant", "demo", "--user", "ann")
    question = "What camera do you use to film your videos?"
    before = run("chat", *who, question)
    assert "[path D escalation offered: novel]" in before.stderr, before.stderr
    raw["policy"]["answers"]["agents"]["chef-maya"]["blocked_topics"].append("camera")
    path.write_text(yaml.safe_dump(raw))
    proc.send_signal(signal.SIGHUP)
    line = wait_for(proc, "answer policy reloaded")
    assert "agent chef-maya: blocked_topics" in line
    after = run("chat", *who, question)
    assert "[path F refused: blocked_topic]" in after.stderr, after.stderr
    raw["policy"]["answers"]["agents"]["chef-maya"]["similarity_threshold"] = 2  # does not pass the check
    raw["policy"]["answers"]["agents"]["chef-maya"]["blocked_topics"].remove("camera")
    path.write_text(yaml.safe_dump(raw))
    proc.send_signal(signal.SIGHUP)
    wait_for(proc, "policy not reloaded")
    kept = run("chat", *who, question)
    assert "[path F refused: blocked_topic]" in kept.stderr, kept.stderr  # the old policy is in force


async def test_an_offer_accepted_after_a_reload_turned_escalations_off_is_refused(
    serve: Any, tmp_path: Path
) -> None:
    """A creator who turns escalations off (`escalations: false`, a reload) takes no more: new
    messages are refused (F escalations_disabled), and an offer made before, accepted after, was
    queued all the same, as a lowered day limit or a removed agent is not."""
    s = await serve(answers_config(sqlite(tmp_path)), environ=TOKENS)
    offer = await offered(s, who="bob")
    off = answers_config(sqlite(tmp_path), escalations=False)
    assert await reload(s, tmp_path, off) == []
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await accept(s, offer, who="bob")
    refused = await rich(err.value)
    assert (refused.code, refused.reason, refused.fields) == (
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "ESCALATION_LIMIT_REACHED",
        ["escalation_id"],
    )
    listed = await s.stub.ListEscalations(
        esc.ListEscalationsRequest(tenant_id="acme", agent_id="maya", states=[esc.ESCALATION_STATE_OFFERED]),
        metadata=bearer("MAYA"),
    )
    assert [e.id for e in listed.escalations] == [offer]  # still an offer: refused, nothing changed
    assert await reload(s, tmp_path, answers_config(sqlite(tmp_path))) == []
    assert (await accept(s, offer, who="bob")).escalation.state == esc.ESCALATION_STATE_QUEUED


@pytest.mark.parametrize(
    ("tightened", "why"),
    [({"allowed_tiers": ["enterprise"]}, "tier"), ({"blocked_topics": ["politics", "khachapuri"]}, "topic")],
)
async def test_an_offer_accepted_after_a_reload_tightened_tiers_or_topics_is_refused(
    serve: Any, tmp_path: Path, tightened: dict[str, Any], why: str
) -> None:
    """A creator who takes a tier out of `allowed_tiers` or blocks a topic (a reload) gets no such
    message in the queue: an offer made before, accepted after, is refused as a new message would
    be (F), and stays an offer, acceptable again if the policy is loosened."""
    s = await serve(answers_config(sqlite(tmp_path)), environ=TOKENS)
    offer = await offered(s, who="bob")
    assert await reload(s, tmp_path, answers_config(sqlite(tmp_path), **tightened)) == []
    assert (await ask(s, NOVEL, who="bob")).summary.answer_decision.path == ans.ANSWER_PATH_REFUSE
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await accept(s, offer, who="bob")
    refused = await rich(err.value)
    assert (refused.code, refused.reason, refused.fields) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "ESCALATION_NOT_ALLOWED",
        ["escalation_id"],
    )
    assert why in (err.value.details() or "")
    listed = await s.stub.ListEscalations(
        esc.ListEscalationsRequest(tenant_id="acme", agent_id="maya", states=[esc.ESCALATION_STATE_OFFERED]),
        metadata=bearer("MAYA"),
    )
    assert [e.id for e in listed.escalations] == [offer]  # still an offer: refused, nothing changed
    assert await reload(s, tmp_path, answers_config(sqlite(tmp_path))) == []
    assert (await accept(s, offer, who="bob")).escalation.state == esc.ESCALATION_STATE_QUEUED
