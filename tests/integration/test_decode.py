"""Undecodable requests over a real channel: INVALID_ARGUMENT with ErrorInfo, never UNKNOWN, no traceback."""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import pytest

from sidecar._gen.orchestrator.v1 import embed_pb2, escalation_pb2, personas_pb2
from sidecar._gen.orchestrator.v1 import generate_pb2 as gen
from tests.conftest import echo_policy, user
from tests.integration.helpers import rich
from tests.support.api import generate_request

pytestmark = pytest.mark.integration

GENERATE = "/orchestrator.v1.GenerationService/Generate"
STREAM = "/orchestrator.v1.GenerationService/StreamGenerate"
SWITCH = "/orchestrator.v1.ConversationService/Switch"
BAD_UTF8 = b"\xff\xfe\xc3("


def with_bad_string(field_number: int, prefix: bytes = b"") -> bytes:
    """A request whose string field `field_number` holds invalid UTF-8 (wire type 2)."""
    return prefix + bytes([field_number << 3 | 2, len(BAD_UTF8)]) + BAD_UTF8


def bad_model() -> bytes:
    """A GenerateRequest whose input.model is not UTF-8."""
    number = gen.GenerationInput.DESCRIPTOR.fields_by_name["model"].number
    inner = with_bad_string(number)
    return bytes([gen.GenerateRequest.DESCRIPTOR.fields_by_name["input"].number << 3 | 2, len(inner)]) + inner


def nested_bad_text() -> bytes:
    """A GenerateRequest whose messages[1].content[0].text is not UTF-8."""
    good = generate_request(messages=[user("fine"), user("placeholder")]).SerializeToString()
    return good.replace(b"placeholder", b"\xffplacehold\xfe")


async def call_raw(
    channel: grpc.aio.Channel, path: str, raw: bytes, stream: bool
) -> grpc.aio.AioRpcError | None:
    if stream:
        call = channel.unary_stream(path, request_serializer=None, response_deserializer=None)(raw)
        try:
            async for _ in call:
                pass
        except grpc.aio.AioRpcError as err:
            return err
        return None
    try:
        await channel.unary_unary(path, request_serializer=None, response_deserializer=None)(raw)
    except grpc.aio.AioRpcError as err:
        return err
    return None


@pytest.mark.parametrize("path,stream", [(GENERATE, False), (STREAM, True)])
@pytest.mark.parametrize(
    "raw,field",
    [
        (b"\xff\xff\xff\xff\xff", ""),
        (b"\x0a\x64short", ""),  # a length past the end
        (bad_model(), "input.model"),
        (nested_bad_text(), "input.messages[1].content[0].text"),
    ],
    ids=["garbage", "truncated", "model-not-utf8", "nested-text-not-utf8"],
)
async def test_undecodable_request_is_invalid_argument_naming_the_field(
    serve: Callable[..., Any],
    path: str,
    stream: bool,
    raw: bytes,
    field: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    running = await serve({"policy": echo_policy()})
    with caplog.at_level(logging.DEBUG):
        err = await call_raw(running.channel, path, raw, stream)
    assert err is not None and err.code() == grpc.StatusCode.INVALID_ARGUMENT
    detail = await rich(err)
    assert detail.reason == "MALFORMED_REQUEST"
    assert detail.fields == [field]
    assert "Traceback" not in caplog.text and "DecodeError" not in (err.details() or "")
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_other_methods_are_tolerant_too(serve: Callable[..., Any]) -> None:
    running = await serve({"policy": echo_policy()})
    raw = personas_pb2.SwitchRequest(tenant_id="t", user_id="u").SerializeToString()
    number = personas_pb2.SwitchRequest.DESCRIPTOR.fields_by_name["tenant_id"].number
    err = await call_raw(running.channel, SWITCH, with_bad_string(number, raw), stream=False)
    assert err is not None and (await rich(err)).reason == "MALFORMED_REQUEST"
    assert (await rich(err)).fields == ["tenant_id"]


async def test_bad_requests_log_one_rate_limited_line(
    serve: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    running = await serve({"policy": echo_policy()})
    with caplog.at_level(logging.DEBUG, logger="sidecar"):
        for _ in range(50):
            await call_raw(running.channel, GENERATE, b"\xff\xff\xff", stream=False)
    lines = [r for r in caplog.records if r.getMessage() == "undecodable request"]
    assert len(lines) == 1 and lines[0].levelno == logging.WARNING


def mutations(rng: random.Random, count: int) -> list[bytes]:
    """Random byte strings and valid requests with bytes flipped, inserted, dropped or truncated."""
    valid = generate_request(
        messages=[user("hello there"), user("and more")], model="echo", tenant_id="t", user_id="u"
    ).SerializeToString()
    out: list[bytes] = []
    for i in range(count):
        if i % 3 == 0:
            out.append(rng.randbytes(rng.randrange(0, 64)))
            continue
        data = bytearray(valid)
        for _ in range(rng.randrange(1, 4)):
            pos = rng.randrange(len(data))
            kind = rng.randrange(4)
            if kind == 0:
                data[pos] = rng.randrange(256)
            elif kind == 1:
                data.insert(pos, rng.randrange(256))
            elif kind == 2 and len(data) > 1:
                del data[pos]
            else:
                data = data[:pos]
                break
        out.append(bytes(data))
    return out


async def test_fuzz_every_answer_is_invalid_argument_or_normal(
    serve: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    running = await serve({"policy": echo_policy()})
    rng = random.Random(1313)
    codes: dict[str, int] = {}
    with caplog.at_level(logging.DEBUG):
        for i, raw in enumerate(mutations(rng, 240)):
            err = await call_raw(running.channel, STREAM if i % 2 else GENERATE, raw, stream=bool(i % 2))
            if err is None:
                codes["OK"] = codes.get("OK", 0) + 1
                continue
            detail = await rich(err)  # every error carries exactly one ErrorInfo
            codes[detail.reason] = codes.get(detail.reason, 0) + 1
            assert err.code() != grpc.StatusCode.UNKNOWN and err.code() != grpc.StatusCode.INTERNAL, detail
    assert codes.get("MALFORMED_REQUEST", 0) > 20, codes
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert "Traceback" not in caplog.text


class Crashing:
    """A servicer with a bug: each method raises an exception nobody classified."""

    async def ListModels(self, request: object, context: object) -> object:
        raise RuntimeError("a bug")

    Generate = Embed = ListModels

    async def StreamGenerate(self, request: object, context: object) -> Any:
        yield gen.StreamGenerateResponse()
        raise KeyError("a bug mid-stream")


async def test_an_unclassified_exception_is_internal_with_a_request_id_never_unknown(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from sidecar._gen.orchestrator.v1 import generation_service_pb2
    from sidecar.api.decode import add_service

    server = grpc.aio.server()
    service = generation_service_pb2.DESCRIPTOR.services_by_name["GenerationService"]
    add_service(server, Crashing(), service)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            with caplog.at_level(logging.DEBUG):
                for path, stream in (
                    ("/orchestrator.v1.GenerationService/ListModels", False),
                    (STREAM, True),
                ):
                    raw = b"" if not stream else generate_request(messages=[user("x")]).SerializeToString()
                    err = await call_raw(channel, path, raw, stream)
                    assert err is not None and err.code() == grpc.StatusCode.INTERNAL, err
                    detail = await rich(err)
                    assert detail.reason == "INTERNAL" and "request id" in detail.message
    finally:
        await server.stop(0)
    assert not [r for r in caplog.records if "Unexpected" in r.getMessage()], "grpc's own error log"
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == [
        "ListModels crashed",
        "StreamGenerate crashed",
    ]


def _field(number: int, body: bytes) -> bytes:
    head, size = bytearray([number << 3 | 2]), len(body)
    while size > 0x7F:
        head.append(size & 0x7F | 0x80)
        size >>= 7
    head.append(size)
    return bytes(head) + body


def _reset_peak_mb() -> float:
    """Start the process's peak RSS again from its current RSS (Linux: clear_refs 5)."""
    Path("/proc/self/clear_refs").write_text("5")
    return _peak_mb()


def _peak_mb() -> float:
    status = Path("/proc/self/status").read_text().splitlines()
    return int(next(line for line in status if line.startswith("VmHWM")).split()[1]) / 1024


EMBED = "/orchestrator.v1.GenerationService/Embed"
MESSAGES = gen.GenerationInput.DESCRIPTOR.fields_by_name["messages"].number
TEXTS = embed_pb2.EmbedRequest.DESCRIPTOR.fields_by_name["texts"].number
ESCALATIONS = "/orchestrator.v1.EscalationService/ListEscalations"
STATES = escalation_pb2.ListEscalationsRequest.DESCRIPTOR.fields_by_name["states"].number


@pytest.mark.parametrize(
    "path,stream,raw,field",
    [
        (GENERATE, False, _field(1, bytes([MESSAGES << 3 | 2, 0]) * 3_500_000), "input.messages"),
        (STREAM, True, _field(1, bytes([MESSAGES << 3 | 2, 0]) * 3_500_000), "input.messages"),
        (EMBED, False, bytes([TEXTS << 3 | 2, 0]) * 3_500_000, "texts"),
        (ESCALATIONS, False, _field(STATES, bytes([1]) * 7_000_000), "states"),  # packed: a byte a value
    ],
    ids=["generate", "stream", "embed", "packed-enums"],
)
async def test_a_request_of_millions_of_tiny_elements_is_refused_before_it_is_parsed(
    serve: Callable[..., Any], path: str, stream: bool, raw: bytes, field: str
) -> None:
    """7 MB of empty messages (or strings) parse into about 250 MB of arena, enough for one request
    to get a sidecar with the chart's 256 MiB limit killed: refused unparsed, naming the field."""
    running = await serve({"policy": echo_policy()})
    warm = generate_request(messages=[user("warm")]).SerializeToString()
    await call_raw(running.channel, GENERATE, warm, False)
    before = _reset_peak_mb()
    err = await call_raw(running.channel, path, raw, stream)
    assert _peak_mb() - before < 60  # the request's bytes (twice, in gRPC and here), never its parse
    assert err is not None and err.code() == grpc.StatusCode.INVALID_ARGUMENT
    detail = await rich(err)
    assert detail.reason == "REQUEST_TOO_COMPLEX" and detail.fields == [field]


HEALTH_CHECK = "/grpc.health.v1.Health/Check"
HEALTH_WATCH = "/grpc.health.v1.Health/Watch"
REFLECTION = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"


async def test_health_and_reflection_refuse_undecodable_requests_like_every_other_service(
    serve: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    """They need no token, so anyone reaching the port could send garbage: grpc's own decoding
    answered UNKNOWN and logged an ERROR with its traceback for each one."""
    from grpc_health.v1 import health_pb2
    from grpc_reflection.v1alpha import reflection_pb2

    running = await serve({"policy": echo_policy()})
    channel = running.channel
    garbage = b"\x0a\x03\xff\xfe\xfd"  # a string field that is not UTF-8
    with caplog.at_level(logging.DEBUG):
        errors = [
            await call_raw(channel, HEALTH_CHECK, garbage, False),
            await call_raw(channel, HEALTH_WATCH, garbage, True),
        ]
        bidi = channel.stream_stream(REFLECTION, request_serializer=None, response_deserializer=None)(
            timeout=5
        )
        await bidi.write(garbage)
        await bidi.done_writing()
        try:
            async for _ in bidi:
                pass
        except grpc.aio.AioRpcError as err:
            errors.append(err)
    assert len(errors) == 3
    for err in errors:
        assert err is not None and err.code() == grpc.StatusCode.INVALID_ARGUMENT, err
        assert (await rich(err)).reason == "MALFORMED_REQUEST"
    assert "Traceback" not in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    # and they still serve what they serve
    check = channel.unary_unary(
        HEALTH_CHECK,
        request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
        response_deserializer=health_pb2.HealthCheckResponse.FromString,
    )
    assert (await check(health_pb2.HealthCheckRequest())).status == health_pb2.HealthCheckResponse.SERVING
    watch = channel.unary_stream(
        HEALTH_WATCH,
        request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
        response_deserializer=health_pb2.HealthCheckResponse.FromString,
    )(health_pb2.HealthCheckRequest(), timeout=5)
    first = await watch.read()
    assert first.status == health_pb2.HealthCheckResponse.SERVING
    watch.cancel()
    reflect = channel.stream_stream(
        REFLECTION,
        request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
        response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
    )(timeout=5)
    await reflect.write(reflection_pb2.ServerReflectionRequest(list_services=""))
    await reflect.done_writing()
    names = [s.name for r in [m async for m in reflect] for s in r.list_services_response.service]
    assert "orchestrator.v1.GenerationService" in names and "grpc.health.v1.Health" in names
