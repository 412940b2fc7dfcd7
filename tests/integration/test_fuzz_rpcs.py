"""Every RPC of orchestrator.v1 fuzzed through a real sidecar, as an attacker would from outside.

For each method: bytes that are not its request (garbage, truncated, wrong wire types, unknown
fields), strings that are not UTF-8 at every string field reachable in the request, ids with path
characters, NUL or enormous, page sizes and tokens out of range, hostile metadata headers, and
hypothesis' random requests built from the descriptors on a fixed budget. For every case: never
INTERNAL or UNKNOWN; a refusal is INVALID_ARGUMENT (or the method's documented code) naming the
field; the server serves the next valid call; nothing is charged (GetQuota before and after); no log
record at ERROR or above, no traceback and no canary (tokens, the API key, prompt text) in any
record at DEBUG (tests/support/fuzz_api.py). Hostile values per field: test_fuzz_values.py.
"""

from __future__ import annotations

import concurrent.futures
import gc
import random
from collections.abc import Iterator, Sequence
from typing import Any

import grpc
import pytest
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from hypothesis import HealthCheck, given, settings

from sidecar._gen.orchestrator.v1 import generate_pb2 as gen
from tests.support.fuzz import (
    BAD_UTF8,
    WIRE_I32,
    WIRE_I64,
    WIRE_SGROUP,
    WIRE_VARINT,
    length_delimited,
    string_paths,
    tag,
    varint,
)
from tests.support.fuzz_api import (
    ANSWERS,
    APP,
    BASELINES,
    METHODS,
    NEVER,
    WRONG_TOKEN,
    Fuzzed,
    assert_quiet,
    expect,
    fuzzed_sidecar,
    still_serving,
    with_fields,
)
from tests.support.fuzz_strategies import message_strategy

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzzed]:
    with fuzzed_sidecar(tmp_path_factory.mktemp("fuzz")) as served:
        yield served


def test_every_method_of_the_protos_is_fuzzed() -> None:
    from sidecar._gen.orchestrator.v1 import (
        admin_service_pb2,
        conversation_service_pb2,
        escalation_service_pb2,
        experiment_service_pb2,
        generation_service_pb2,
        key_service_pb2,
        quota_service_pb2,
    )

    modules = (
        admin_service_pb2,
        conversation_service_pb2,
        escalation_service_pb2,
        experiment_service_pb2,
        generation_service_pb2,
        key_service_pb2,
        quota_service_pb2,
    )
    declared = {
        m.name for mod in modules for s in mod.DESCRIPTOR.services_by_name.values() for m in s.methods
    }
    assert declared == set(BASELINES) == set(METHODS)
    for name, request in BASELINES.items():
        assert request.DESCRIPTOR is METHODS[name].input_type, name


ALL = sorted(BASELINES)


@pytest.mark.parametrize("name", ALL)
def test_bytes_that_are_not_the_request_are_invalid_argument(fuzzed: Fuzzed, name: str) -> None:
    valid = BASELINES[name].SerializeToString()
    broken = {
        "garbage": b"\xff\xff\xff\xff\xff\xff",
        "length past the end": length_delimited(1, b"abc")[:-2],
        "valid then truncated mid-field": valid + length_delimited(2, b"x" * 40)[:10],
        "field number zero": tag(0, WIRE_VARINT) + b"\x01",
        "group never ended": tag(1, WIRE_SGROUP),
        "varint of eleven bytes": tag(1, WIRE_VARINT) + b"\xff" * 10 + b"\x01",
        "fixed64 cut short": tag(1, WIRE_I64) + b"\x01\x02",
    }
    for what, data in broken.items():
        if what == "field number zero" and not METHODS[name].input_type.fields:
            # protobuf's parser skips everything of a message without fields, even this
            expect(fuzzed, name, data, codes=(None, grpc.StatusCode.INVALID_ARGUMENT), what=what)
            continue
        expect(fuzzed, name, data, reason="MALFORMED_REQUEST", field="", what=what)


@pytest.mark.parametrize("name", ALL)
def test_unknown_fields_and_wrong_wire_types_are_tolerated(fuzzed: Fuzzed, name: str) -> None:
    """Unknown fields are skipped (forward compatibility) and a known field sent with another wire
    type is an unknown field to protobuf: the answer is the baseline's, or a named refusal."""
    valid = BASELINES[name].SerializeToString()
    anything = (
        None,
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    unknown = (
        tag(999, WIRE_VARINT)
        + varint(7)
        + length_delimited(1000, b"\x00\xff")
        + tag(1001, WIRE_I32)
        + b"abcd"
    )
    expect(fuzzed, name, valid + unknown, codes=anything, what="unknown fields")
    for field in BASELINES[name].DESCRIPTOR.fields:
        wrong = (
            WIRE_VARINT if field.type in (FieldDescriptor.TYPE_STRING, FieldDescriptor.TYPE_MESSAGE) else 2
        )
        data = valid + (
            tag(field.number, wrong) + varint(1)
            if wrong == WIRE_VARINT
            else length_delimited(field.number, b"z")
        )
        expect(fuzzed, name, data, codes=anything, what=f"{field.name} with wire type {wrong}")


@pytest.mark.parametrize("name", ALL)
def test_strings_that_are_not_utf8_are_named(fuzzed: Fuzzed, name: str) -> None:
    paths = list(string_paths(METHODS[name].input_type))
    for path in paths:
        data = path.encode(BAD_UTF8)
        expect(
            fuzzed,
            name,
            data,
            reason="MALFORMED_REQUEST",
            field=path.expected,
            what=f"{path.expected} not UTF-8",
        )
    if not paths:
        assert not METHODS[name].input_type.fields or name in ("RotateKeys",), name


def set_path(message: Message, dotted: str, value: Any) -> None:
    *parents, last = dotted.split(".")
    for part in parents:
        message = getattr(message, part)
    setattr(message, last, value)


ID_FIELDS = ("tenant_id", "user_id", "conversation_id", "request_id", "escalation_id", "agent_id")
HOSTILE_IDS = ("../../etc/passwd", "a/b", "a\x00b", "\x00", "a b", "x" * 100_000, "tenant\n", "ä")


@pytest.mark.parametrize("name", ALL)
def test_ids_with_path_characters_nul_or_enormous_are_invalid_argument(fuzzed: Fuzzed, name: str) -> None:
    before = fuzzed.used()
    request = BASELINES[name]
    target = (
        request.input if isinstance(request, (gen.GenerateRequest, gen.StreamGenerateRequest)) else request
    )
    prefix = "input." if target is not request else ""
    for field in (f for f in ID_FIELDS if f in target.DESCRIPTOR.fields_by_name):
        for value in HOSTILE_IDS:
            hostile = type(request)()
            hostile.CopyFrom(request)
            set_path(hostile, prefix + field, value)
            expect(
                fuzzed,
                name,
                hostile.SerializeToString(),
                field=prefix + field,
                what=f"{field}={value[:20]!r}",
            )
    assert fuzzed.used() == before


PAGED = (
    "ListModels",
    "ListPersonas",
    "ListSwitchHistory",
    "ListKeys",
    "ListEscalations",
    "ListTenantKeys",
    "GetUsage",
)


@pytest.mark.parametrize("name", PAGED)
def test_page_sizes_and_tokens_out_of_range_are_named(fuzzed: Fuzzed, name: str) -> None:
    for size in (-1, -(2**31), 2**31 - 1, 1_000_001):
        expect(fuzzed, name, with_fields(name, page_size=size), field="page_size", what=f"page_size {size}")
    for token in (
        "garbage",
        "A" * 100_000,
        "\x00",
        "../../",
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    ):
        expect(
            fuzzed,
            name,
            with_fields(name, page_token=token),
            field="page_token",
            what=f"page_token {token[:12]!r}",
        )


HEADERS: list[tuple[str, Sequence[tuple[str, str | bytes]], tuple[grpc.StatusCode, ...]]] = [
    ("no credentials", (), (grpc.StatusCode.UNAUTHENTICATED,)),
    ("a wrong token", (("authorization", f"Bearer {WRONG_TOKEN}"),), (grpc.StatusCode.UNAUTHENTICATED,)),
    (
        "a token with a NUL-free odd scheme",
        (("authorization", f"Basic {WRONG_TOKEN}"),),
        (grpc.StatusCode.UNAUTHENTICATED,),
    ),
    ("an enormous token", (("authorization", "Bearer " + "A" * 7000),), (grpc.StatusCode.UNAUTHENTICATED,)),
    (
        "binary authorization",
        (("authorization-bin", WRONG_TOKEN.encode()),),
        (grpc.StatusCode.UNAUTHENTICATED,),
    ),
    (
        "many headers",
        tuple((f"x-h{i}", "v" * 50) for i in range(60)) + APP,
        (None, grpc.StatusCode.INVALID_ARGUMENT),
    ),
]


@pytest.mark.parametrize("what,metadata,codes", HEADERS, ids=[h[0] for h in HEADERS])
def test_hostile_metadata_headers(
    fuzzed: Fuzzed, what: str, metadata: Sequence[tuple[str, str | bytes]], codes: tuple[grpc.StatusCode, ...]
) -> None:
    before = fuzzed.used()
    for name in ("Generate", "GetQuota", "Embed"):
        expect(fuzzed, name, BASELINES[name].SerializeToString(), metadata=metadata, codes=codes, what=what)
    if None not in codes:
        assert fuzzed.used() == before


def test_headers_past_the_transport_limit_leave_the_server_up(fuzzed: Fuzzed) -> None:
    """Metadata past grpc's header limit is refused by the transport before any RPC code runs."""
    huge = (("x-big", "v" * 64 * 1024), *APP)
    mark = fuzzed.logs.mark()
    err = fuzzed.raw("Generate", BASELINES["Generate"].SerializeToString(), huge)
    assert err is not None and err.code() not in NEVER, err  # type: ignore[attr-defined]
    still_serving(fuzzed, "a 64 KiB header")
    assert_quiet(fuzzed, mark, "a 64 KiB header")


@pytest.mark.parametrize("name", ALL)
def test_random_requests_get_a_classified_answer(fuzzed: Fuzzed, name: str) -> None:
    @settings(
        max_examples=12,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
        ],
    )
    @given(message_strategy(METHODS[name].input_type))
    def check(data: bytes) -> None:
        expect(fuzzed, name, data, codes=ANSWERS, what="random")

    check()


def test_the_log_tap_hears_the_sidecar(fuzzed: Fuzzed) -> None:
    """The log assertions above are live: the sidecar's own records reach the tap."""
    expect(fuzzed, "Generate", b"\xff\xff", reason="MALFORMED_REQUEST", field="")
    assert any(r.name.startswith("sidecar") for r in fuzzed.logs.records)


def test_deadlines_that_end_at_once_leave_no_trace(fuzzed: Fuzzed) -> None:
    """Every method called with deadlines that run out before, during and after the work: whatever
    the client sees, the server logs no error for the caller's own deadline and keeps serving."""
    mark = fuzzed.logs.mark()
    for name in ALL:
        for timeout in (0.0001, 0.002, 0.02):
            err = fuzzed.raw(name, BASELINES[name].SerializeToString(), timeout=timeout)
            assert err is None or err.code() not in NEVER, (name, timeout, err)  # type: ignore[attr-defined]
    for name in ALL:  # the server finished what the callers gave up on
        err = fuzzed.raw(name, BASELINES[name].SerializeToString())
        assert err is None or err.code() not in NEVER, (name, err)  # type: ignore[attr-defined]
    still_serving(fuzzed, "short deadlines")
    assert_quiet(fuzzed, mark, "short deadlines")


def test_a_request_past_the_size_limit_is_refused_by_the_transport(fuzzed: Fuzzed) -> None:
    mark = fuzzed.logs.mark()
    err = fuzzed.raw("Generate", b"\x0a" + varint(9 * 1024 * 1024) + b"x" * (9 * 1024 * 1024))
    assert err is not None and err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED  # type: ignore[attr-defined]
    still_serving(fuzzed, "9 MiB")
    assert_quiet(fuzzed, mark, "9 MiB")


def mutated(rng: random.Random, data: bytes) -> bytes:
    """`data` with a byte changed, inserted or dropped, or cut short."""
    if not data:
        return rng.randbytes(rng.randrange(1, 16))
    out, pos = bytearray(data), rng.randrange(len(data))
    kind = rng.randrange(4)
    if kind == 0:
        out[pos] = rng.randrange(256)
    elif kind == 1:
        out.insert(pos, rng.randrange(256))
    elif kind == 2:
        del out[pos]
    else:
        del out[pos:]
    return bytes(out)


def test_concurrent_callers_with_short_deadlines(fuzzed: Fuzzed) -> None:
    """Eight callers at once, each sending valid and mutated requests of every method with
    deadlines from 10 ms to 5 s: no INTERNAL or UNKNOWN, and nothing at ERROR in the log (an
    abandoned local embedding's ending was logged by asyncio as 'Future exception was never
    retrieved')."""
    mark = fuzzed.logs.mark()

    def caller(seed: int) -> list[tuple[str, str]]:
        rng, bad = random.Random(seed), []
        for _ in range(60):
            name = rng.choice(ALL)
            data = BASELINES[name].SerializeToString()
            if rng.random() < 0.5:
                data = mutated(rng, data)
            err = fuzzed.raw(name, data, timeout=rng.choice((0.01, 0.05, 0.2, 5.0)))
            if err is not None and err.code() in NEVER:  # type: ignore[attr-defined]
                bad.append((name, str(err.details())))  # type: ignore[attr-defined]
        return bad

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        found = [b for one in pool.map(caller, range(8)) for b in one]
    assert not found, found[:5]
    still_serving(fuzzed, "concurrent callers")
    fuzzed.raw("Embed", BASELINES["Embed"].SerializeToString())  # the embedding worker is idle again
    gc.collect()  # an unretrieved exception is reported when its future is collected
    assert_quiet(fuzzed, mark, "concurrent callers")
