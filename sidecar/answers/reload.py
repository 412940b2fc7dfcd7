"""A reloaded answer policy (SIGHUP, `Sidecar.reload`): the per-agent policies (thresholds,
clarification, windows, limits, expiries, blocked topics, allowed tiers, creators, context summary,
canonical seeds) are swapped in without a restart, whole or not at all.

The file has passed the full configuration check before it gets here; the new agents are then
checked against what the running sidecar has, because personas, tiers, credentials and routes are
not reloaded: an agent that is not a running persona, a tier, credential or route the sidecar does
not run refuses the whole answers section (logged, the old policy stays in force). The store, its
connection and the sweep settings are read at start: a change to them is logged as needing a
restart and is not applied. Adding or removing the whole answers section needs a restart too.
Canonical answers added to the policy are stored for the seed tenants after the swap.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING

from sidecar.answers.errors import RECOVERABLE
from sidecar.config.answers import AgentPolicy, AnswersPolicy

if TYPE_CHECKING:
    from sidecar.answers.service import AnswerService
    from sidecar.config.schema import Config

_log = logging.getLogger("sidecar.answers")
AT_START = frozenset(AnswersPolicy.model_fields) - {"agents"}  # read when the sidecar starts


def problems(running: Config, new: Config, service: AnswerService | None) -> list[str]:
    """Why `new`'s answers section cannot be put in force in the running sidecar (empty: it can)."""
    section = new.policy.answers
    if section is None:
        if service is None:
            return []
        return ["answers: the section was removed; restart the sidecar to turn the answer policy off"]
    if service is None:
        return ["answers: the running sidecar has no answer policy; restart it to add one"]
    r = running.policy
    credentials = {c.name for c in running.settings.auth.credentials} | {"token", "anonymous"}
    personas = {p.id for p in r.personas.all()}
    return section.problems(personas, r.tiers, credentials, r.embeddings.routes, r.routes)


def changes(old: Mapping[str, AgentPolicy], new: Mapping[str, AgentPolicy]) -> list[str]:
    """What a swap changes, one line per agent: added, removed, or the fields that changed."""
    out = [f"agent {a}: removed" for a in sorted(set(old) - set(new))]
    for agent in sorted(new):
        if agent not in old:
            out.append(f"agent {agent}: added")
            continue
        before, after = old[agent].model_dump(), new[agent].model_dump()
        fields = [f for f in after if after[f] != before.get(f)]
        if "canonical_file" not in fields and old[agent].seeds() != new[agent].seeds():
            fields.append("canonical answers")  # the same canonical_file, edited
        if fields:
            out.append(f"agent {agent}: {', '.join(fields)}")
    return out


async def apply(service: AnswerService, new: AnswersPolicy, *, source: str) -> list[str]:
    """Swap in `new`'s agents (checked by `problems` first); the changes, also logged."""
    running = service.policy
    pending = sorted(f for f in AT_START if getattr(new, f) != getattr(running, f))
    if pending:
        _log.warning(
            "answer policy: not reloaded, needs a restart",
            extra={"fields": ", ".join(pending), "source": source},
        )
    changed = changes(running.agents, new.agents)
    service.replace_agents(new.agents)
    _log.warning(
        "answer policy reloaded",
        extra={"changes": "; ".join(changed) or "none", "source": source},
    )
    try:
        seeded = await service.seed(before=running.agents)
    except RECOVERABLE as exc:  # the policy is in force; its new canonical answers wait for a restart
        _log.error("answer policy: new canonical answers not seeded: %r", exc)
    else:
        if seeded:
            _log.info("canonical answers seeded", extra={"answers": seeded, "source": source})
    return changed
