"""Personas over the wire: ListPersonas, Switch (table, ordering, last one wins), ListSwitchHistory,
the persona that answers a Generate, and bad input for every new field."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import grpc
import pytest

from sidecar._gen.orchestrator.v1 import personas_pb2 as pb
from tests.conftest import Running, echo_policy, user
from tests.integration.helpers import rich
from tests.support.api import generate_request, stream_request
from tests.support.personas import CATALOGUE

pytestmark = pytest.mark.integration

IDS = {"tenant_id": "t1", "user_id": "u1", "conversation_id": "c1"}


def config(**personas: Any) -> dict[str, Any]:
    return {
        "policy": echo_policy(
            personas={"personas": CATALOGUE, **personas},
            tier_assignment={"default": "enterprise", "users": {"t1/free-user": "free"}},
        )
    }


async def error_of(awaitable: Any) -> Any:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await awaitable
    return await rich(info.value)


async def test_list_personas_filters(serve: Any) -> None:
    s: Running = await serve(config(default="mr-blue"))
    every = await s.stub.ListPersonas(pb.ListPersonasRequest())
    assert [p.id for p in every.personas] == ["agent-79", "agent-80", "dashboard-architect", "mr-blue"]
    assert every.default_persona_id == "mr-blue"
    architect = every.personas[2]
    assert (architect.display_name, list(architect.aliases), architect.category) == (
        "Dashboard Architect",
        ["architect", "dash"],
        "analytics",
    )
    assert (list(architect.tiers), architect.default_route) == (["enterprise", "professional"], "echo")
    assert architect.prompt_tokens > 0
    agents = await s.stub.ListPersonas(pb.ListPersonasRequest(category="agents"))
    assert [p.id for p in agents.personas] == ["agent-79", "agent-80"]
    free = await s.stub.ListPersonas(pb.ListPersonasRequest(tier="free"))
    assert [p.id for p in free.personas] == ["agent-79", "mr-blue"]
    both = await s.stub.ListPersonas(pb.ListPersonasRequest(category="agents", tier="professional"))
    assert [p.id for p in both.personas] == ["agent-79"]


SWITCH_TABLE = [
    ("exact", "Mr Blue", "u1", grpc.StatusCode.OK, "mr-blue"),
    ("alias", "use architect", "u1", grpc.StatusCode.OK, "dashboard-architect"),
    ("case", "SWITCH TO DASHBOARD ARCHITECT", "u1", grpc.StatusCode.OK, "dashboard-architect"),
    ("spaces", "  use   Agent   #79  ", "u1", grpc.StatusCode.OK, "agent-79"),
    ("ambiguous", "use agent", "u1", grpc.StatusCode.INVALID_ARGUMENT, "AMBIGUOUS_PERSONA"),
    ("unknown", "use Mr Purple Haze", "u1", grpc.StatusCode.INVALID_ARGUMENT, "PERSONA_NOT_FOUND"),
    (
        "not allowed",
        "use Dashboard Architect",
        "free-user",
        grpc.StatusCode.PERMISSION_DENIED,
        "PERSONA_NOT_ALLOWED",
    ),
]


@pytest.mark.parametrize(
    ("case", "command", "user_id", "code", "expected"), SWITCH_TABLE, ids=[c[0] for c in SWITCH_TABLE]
)
async def test_switch_command_table(
    serve: Any, case: str, command: str, user_id: str, code: grpc.StatusCode, expected: str
) -> None:
    s: Running = await serve(config())
    req = pb.SwitchRequest(tenant_id="t1", user_id=user_id, conversation_id="c1", command=command)
    if code == grpc.StatusCode.OK:
        resp = await s.stub.Switch(req)
        assert resp.persona.id == expected and resp.previous_persona_id == "" and resp.version == 1
        return
    err = await error_of(s.stub.Switch(req))
    assert (err.code, err.reason) == (code, expected)
    if case == "ambiguous":
        assert err.info.metadata["candidates"] == "agent-79,agent-80"
        assert "Agent #79 (agent-79)" in err.message and err.fields == ["command"]
    if case == "unknown":
        assert err.info.metadata["candidates"]  # the personas the caller could pick
        assert err.fields == ["command"]
    history = await s.stub.ListSwitchHistory(pb.ListSwitchHistoryRequest(tenant_id="t1", user_id=user_id))
    assert [(r.success, r.error_reason, r.command) for r in history.switches] == [(False, expected, command)]


async def test_switch_decides_which_persona_answers(serve: Any) -> None:
    s: Running = await serve(config(default="mr-blue"))
    ask = generate_request(messages=[user("hi")], **IDS)
    assert (await s.stub.Generate(ask)).summary.persona_id == "mr-blue"  # the default
    await s.stub.Switch(pb.SwitchRequest(persona_id="agent-79", **IDS))
    assert (await s.stub.Generate(ask)).summary.persona_id == "agent-79"
    once = generate_request(messages=[user("hi")], persona_id="agent-80", **IDS)
    assert (await s.stub.Generate(once)).summary.persona_id == "agent-80"  # this call only
    stream = [m async for m in s.stub.StreamGenerate(stream_request(messages=[user("hi")], **IDS))]
    assert stream[-1].result.summary.persona_id == "agent-79"
    other = generate_request(messages=[user("hi")], tenant_id="t1", user_id="u1", conversation_id="c2")
    assert (await s.stub.Generate(other)).summary.persona_id == "mr-blue"


async def test_switch_history_newest_first_with_limit(serve: Any) -> None:
    s: Running = await serve(config())
    for target in ("mr-blue", "agent-79", "agent-80"):
        await s.stub.Switch(pb.SwitchRequest(persona_id=target, **IDS))
    await s.stub.Switch(
        pb.SwitchRequest(tenant_id="t1", user_id="u1", conversation_id="c2", command="use blue")
    )
    query = pb.ListSwitchHistoryRequest(tenant_id="t1", user_id="u1")
    records = (await s.stub.ListSwitchHistory(query)).switches
    assert [(r.conversation_id, r.from_persona_id, r.to_persona_id) for r in records] == [
        ("c2", "", "mr-blue"),
        ("c1", "agent-79", "agent-80"),
        ("c1", "mr-blue", "agent-79"),
        ("c1", "", "mr-blue"),
    ]
    assert records[0].command == "use blue" and records[0].time.seconds > 0
    query.page_size = 2
    assert len((await s.stub.ListSwitchHistory(query)).switches) == 2
    query.conversation_id, query.page_size = "c1", 1
    assert [r.to_persona_id for r in (await s.stub.ListSwitchHistory(query)).switches] == ["agent-80"]


@pytest.mark.parametrize("store", ["memory", "redis"])
async def test_concurrent_switches_and_generations_last_switch_wins(
    serve: Any, store: str, request: pytest.FixtureRequest
) -> None:
    sessions: dict[str, Any] = {"store": store}
    if store == "redis":
        sessions.update(
            redis_url=request.getfixturevalue("redis_url"), key_prefix=f"p{uuid.uuid4().hex[:10]}"
        )
    s: Running = await serve(config(sessions=sessions))
    targets = ["mr-blue", "agent-79", "agent-80", "dashboard-architect"] * 3
    ask = generate_request(messages=[user("hi")], **IDS)

    async def switch(target: str) -> tuple[str, grpc.StatusCode]:
        try:
            resp = await s.stub.Switch(pb.SwitchRequest(persona_id=target, **IDS))
        except grpc.aio.AioRpcError as err:
            assert (await rich(err)).reason == "SWITCH_SUPERSEDED"
            return target, err.code()
        return resp.persona.id, grpc.StatusCode.OK

    calls: list[Any] = []
    for target in targets:
        calls.append(asyncio.ensure_future(switch(target)))
        calls.append(asyncio.ensure_future(s.stub.Generate(ask)))
    results = await asyncio.gather(*calls)
    outcomes = results[0::2]
    assert {code for _, code in outcomes} <= {grpc.StatusCode.OK, grpc.StatusCode.ABORTED}
    history = (await s.stub.ListSwitchHistory(pb.ListSwitchHistoryRequest(page_size=100, **{**IDS}))).switches
    assert len(history) == len(targets)  # every attempt is recorded, applied or superseded
    assert sum(r.success for r in history) == sum(code == grpc.StatusCode.OK for _, code in outcomes)
    newest = max(history, key=lambda r: r.version)
    assert newest.success  # the Switch that arrived last always wins
    applied = sorted((r for r in history if r.success), key=lambda r: r.version)
    assert [r.from_persona_id for r in applied[1:]] == [r.to_persona_id for r in applied[:-1]]
    served = {resp.summary.persona_id for resp in results[1::2]}
    assert served <= {r.to_persona_id for r in applied} | {""}
    after = await s.stub.Generate(ask)
    assert after.summary.persona_id == newest.to_persona_id


BAD_SWITCHES: list[tuple[str, dict[str, Any], str]] = [
    ("no tenant", {"user_id": "u", "conversation_id": "c", "persona_id": "mr-blue"}, "tenant_id"),
    ("no user", {"tenant_id": "t", "conversation_id": "c", "persona_id": "mr-blue"}, "user_id"),
    ("no conversation", {"tenant_id": "t", "user_id": "u", "persona_id": "mr-blue"}, "conversation_id"),
    ("bad tenant", {**IDS, "tenant_id": "t t", "persona_id": "mr-blue"}, "tenant_id"),
    ("long conversation", {**IDS, "conversation_id": "c" * 129, "persona_id": "mr-blue"}, "conversation_id"),
    ("no target", {**IDS}, "persona_id"),
    ("bad persona id", {**IDS, "persona_id": "Mr Blue"}, "persona_id"),
    ("empty command", {**IDS, "command": ""}, "persona_id"),  # an empty oneof member is still set
    ("blank command", {**IDS, "command": "   "}, "command"),
    ("long command", {**IDS, "command": "use " + "x" * 300}, "command"),
    ("control characters", {**IDS, "command": "use mr\x00blue"}, "command"),
    ("C1 control", {**IDS, "command": "use mr\x85blue"}, "command"),
    ("bidi override", {**IDS, "command": "use \u202eeulb rm"}, "command"),  # reads "use mr blue"
    ("bad metadata", {**IDS, "persona_id": "mr-blue", "metadata": {"bad key": "v"}}, "metadata['bad key']"),
]


@pytest.mark.parametrize(("case", "fields", "field"), BAD_SWITCHES, ids=[b[0] for b in BAD_SWITCHES])
async def test_bad_switch_requests(serve: Any, case: str, fields: dict[str, Any], field: str) -> None:
    s: Running = await serve(config())
    req = pb.SwitchRequest(**fields)
    if case == "empty command":
        req.command = ""
        field = "command"
    err = await error_of(s.stub.Switch(req))
    assert (err.code, err.reason, err.fields[0]) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_REQUEST",
        field,
    )


async def test_unknown_persona_id_and_tier_from_metadata(serve: Any) -> None:
    raw = config()
    raw["policy"]["tier_assignment"] = {"source": "metadata", "default": "free"}
    s: Running = await serve(raw)
    err = await error_of(s.stub.Switch(pb.SwitchRequest(persona_id="ghost", **IDS)))
    assert (err.reason, err.fields) == ("PERSONA_NOT_FOUND", ["persona_id"])
    err = await error_of(s.stub.Switch(pb.SwitchRequest(persona_id="agent-80", **IDS)))
    assert (err.code, err.reason) == (grpc.StatusCode.PERMISSION_DENIED, "PERSONA_NOT_ALLOWED")
    ok = await s.stub.Switch(pb.SwitchRequest(persona_id="agent-80", metadata={"tier": "enterprise"}, **IDS))
    assert ok.persona.id == "agent-80"
    err = await error_of(
        s.stub.Switch(pb.SwitchRequest(persona_id="agent-80", metadata={"tier": "gold"}, **IDS))
    )
    assert (err.reason, err.fields) == ("INVALID_REQUEST", ["metadata[tier]"])
    # the user's tier is checked again when the conversation's persona answers
    err = await error_of(s.stub.Generate(generate_request(messages=[user("hi")], **IDS)))
    assert (err.code, err.reason) == (grpc.StatusCode.PERMISSION_DENIED, "PERSONA_NOT_ALLOWED")


BAD_OTHERS: list[tuple[str, str, Any, str]] = [
    ("list bad tier", "ListPersonas", pb.ListPersonasRequest(tier="gold"), "tier"),
    ("list bad category", "ListPersonas", pb.ListPersonasRequest(category="A B"), "category"),
    ("history no tenant", "ListSwitchHistory", pb.ListSwitchHistoryRequest(user_id="u"), "tenant_id"),
    ("history no user", "ListSwitchHistory", pb.ListSwitchHistoryRequest(tenant_id="t"), "user_id"),
    (
        "history bad conversation",
        "ListSwitchHistory",
        pb.ListSwitchHistoryRequest(tenant_id="t", user_id="u", conversation_id="a b"),
        "conversation_id",
    ),
    (
        "history negative page size",
        "ListSwitchHistory",
        pb.ListSwitchHistoryRequest(tenant_id="t", user_id="u", page_size=-1),
        "page_size",
    ),
    (
        "history huge page size",
        "ListSwitchHistory",
        pb.ListSwitchHistoryRequest(tenant_id="t", user_id="u", page_size=1001),
        "page_size",
    ),
    (
        "clear no conversation",
        "ClearConversation",
        pb.ClearConversationRequest(tenant_id="t", user_id="u"),
        "conversation_id",
    ),
    (
        "generate bad persona id",
        "Generate",
        generate_request(messages=[user("hi")], persona_id="A!"),
        "input.persona_id",
    ),
    (
        "generate memory without ids",
        "Generate",
        generate_request(messages=[user("hi")], memory=True),
        "input.tenant_id",
    ),
    (
        "generate memory without conversation",
        "Generate",
        generate_request(messages=[user("hi")], memory=True, tenant_id="t", user_id="u"),
        "input.conversation_id",
    ),
    (
        "stream bad persona id",
        "StreamGenerate",
        stream_request(messages=[user("hi")], persona_id="-x"),
        "input.persona_id",
    ),
]


@pytest.mark.parametrize(("case", "rpc", "req", "field"), BAD_OTHERS, ids=[b[0] for b in BAD_OTHERS])
async def test_bad_input_for_every_new_field(serve: Any, case: str, rpc: str, req: Any, field: str) -> None:
    s: Running = await serve(config())
    method = getattr(s.stub, rpc)
    if rpc == "StreamGenerate":
        err = await error_of(_drain(method(req)))
    else:
        err = await error_of(method(req))
    assert (err.code, err.reason, err.fields[0]) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_REQUEST",
        field,
    )


async def _drain(stream: Any) -> None:
    async for _ in stream:
        pass


async def test_persona_id_unknown_on_generate(serve: Any) -> None:
    s: Running = await serve(config())
    err = await error_of(s.stub.Generate(generate_request(messages=[user("hi")], persona_id="ghost")))
    assert (err.code, err.reason, err.fields) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "PERSONA_NOT_FOUND",
        ["input.persona_id"],  # Switch names `persona_id`: each from its own request's root
    )


async def test_persona_rpcs_need_the_token(serve: Any) -> None:
    raw = config()
    raw["settings"] = {"auth": {"token": {"env": "TOKEN"}}}
    s: Running = await serve(raw, {"TOKEN": "secret-token"})
    for call in (
        s.stub.ListPersonas(pb.ListPersonasRequest()),
        s.stub.Switch(pb.SwitchRequest(persona_id="mr-blue", **IDS)),
        s.stub.ListSwitchHistory(pb.ListSwitchHistoryRequest(tenant_id="t1", user_id="u1")),
        s.stub.ClearConversation(pb.ClearConversationRequest(**IDS)),
    ):
        err = await error_of(call)
        assert (err.code, err.reason) == (grpc.StatusCode.UNAUTHENTICATED, "MISSING_CREDENTIALS")
    ok = await s.stub.ListPersonas(
        pb.ListPersonasRequest(), metadata=[("authorization", "Bearer secret-token")]
    )
    assert len(ok.personas) == 4
