"""`sidecar chat` and `sidecar answers` as a person runs them against the example agent, served in
another process: the path shown, an offer accepted from the chat, the creator's queue, the answer,
the report."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.conftest import free_port
from tests.support.prometheus import quiet_telemetry

pytestmark = pytest.mark.integration
SIDECAR = [sys.executable, "-m", "sidecar"]
ROOT = Path(__file__).resolve().parents[3]
NOVEL = "What camera do you use to film your videos?"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*SIDECAR, *args], capture_output=True, text=True, timeout=60, env=dict(os.environ))


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    raw = yaml.safe_load((ROOT / "examples/answers/sidecar.yaml").read_text())
    port = free_port()
    raw["settings"] = {"listen": {"address": f"127.0.0.1:{port}"}, "telemetry": quiet_telemetry(tmp_path)}
    raw["policy"]["personas"]["directory"] = str(ROOT / "examples/answers/personas")
    maya = raw["policy"]["answers"]["agents"]["chef-maya"]
    maya["canonical_file"] = str(ROOT / "examples/answers/chef-maya-canonical.yaml")
    maya["availability"] = []  # the test runs at any hour
    config = tmp_path / "sidecar.yaml"
    config.write_text(yaml.safe_dump(raw))
    proc = subprocess.Popen([*SIDECAR, "serve", "--config", str(config)], stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    for line in proc.stderr:  # the canonical answers are seeded before it says it is serving
        if "sidecar serving" in line:
            break
    try:
        yield f"127.0.0.1:{port}"
    finally:
        proc.send_signal(signal.SIGTERM)
        _, errors = proc.communicate(timeout=30)
        assert proc.returncode == 0, errors


def test_chat_shows_the_path_and_accepts_an_offer(served: str) -> None:
    who = ("--target", served, "--persona", "chef-maya", "--tenant", "demo", "--user", "ann")
    canonical = run("chat", *who, "Can fresh basil be frozen?")
    assert canonical.returncode == 0, canonical.stderr
    assert (
        "ice-cube tray" in canonical.stdout
        and "[path C canonical answer: canonical_match]" in canonical.stderr
    )
    offer = run("chat", *who, "--accept", NOVEL)
    assert offer.returncode == 0, offer.stderr
    assert "[path D escalation offered: novel]" in offer.stderr
    assert "[path E queued for the creator: escalation esc_" in offer.stderr
    queue = run("answers", "list", "--target", served, "--tenant", "demo", "--agent", "chef-maya")
    assert queue.returncode == 0, queue.stderr
    [pending] = json.loads(queue.stdout)["escalations"]
    assert pending["question"] == NOVEL and pending["state"] == "ESCALATION_STATE_QUEUED"
    answer = ("answers", "answer", "--target", served, "--tenant", "demo", "--agent", "chef-maya")
    done = run(*answer, pending["id"], "A small mirrorless camera and a phone.")
    assert (
        done.returncode == 0 and json.loads(done.stdout)["escalation"]["state"] == "ESCALATION_STATE_ANSWERED"
    )
    twice = run(*answer, pending["id"], "Again.")
    assert twice.returncode == 1 and "FAILED_PRECONDITION ESCALATION_WRONG_STATE" in twice.stderr
    again = run("chat", *who, "Which camera do you film your videos with?")
    assert "mirrorless" in again.stdout and "[path C" in again.stderr
    report = run("answers", "report", "--target", served, "--tenant", "demo", "--agent", "chef-maya")
    figures = json.loads(report.stdout)
    assert figures["messages"] == "3" and figures["paths"] == {"C": "2", "D": "1"}
    assert figures["reuse_rate"] == pytest.approx(2 / 3, abs=1e-3) and figures["queue_backlog"] == "0"


def test_answers_list_prints_every_page(served: str) -> None:
    """`answers list` asked for one page of 1000 and printed it with its next_page_token, which the
    command has no way to pass back: past 1000 escalations in a state (answered ones over the
    30 days of retention) the rest could not be listed, and a page of long escalations could pass
    the 4 MB a gRPC client takes. It follows the pages and prints them all."""
    for who in ("ann", "bob", "cat"):  # offers (not accepted: stdin is not a terminal)
        offer = run(
            "chat", "--target", served, "--persona", "chef-maya", "--tenant", "demo", "--user", who, NOVEL
        )
        assert "[path D escalation offered: novel]" in offer.stderr, offer.stderr
    where = ("--target", served, "--tenant", "demo", "--agent", "chef-maya", "--state", "offered")
    listed = run("answers", "list", *where, "--page-size", "2")
    assert listed.returncode == 0, listed.stderr
    doc = json.loads(listed.stdout)
    # three offers, in order; none accepted, so who made them is not shown to the creator
    assert len({e["id"] for e in doc["escalations"]}) == 3
    assert [e.get("user_id", "") for e in doc["escalations"]] == ["", "", ""]
    assert not doc.get("next_page_token")
