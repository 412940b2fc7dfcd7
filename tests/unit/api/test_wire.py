"""The element budget of a request, counted on the wire before anything is parsed."""

from __future__ import annotations

from sidecar._gen.orchestrator.v1 import embed_pb2
from sidecar._gen.orchestrator.v1 import escalation_pb2 as esc
from sidecar._gen.orchestrator.v1 import generate_pb2 as gen
from sidecar.api.wire import MIN_ELEMENT_BYTES, too_many_elements
from tests.conftest import user
from tests.support.api import generate_request

REQUEST = gen.GenerateRequest.DESCRIPTOR


def messages(count: int) -> bytes:
    return generate_request(messages=[user("x") for _ in range(count)]).SerializeToString()


def test_a_request_too_small_to_pass_the_budget_is_not_walked() -> None:
    raw = messages(50)
    assert len(raw) <= MIN_ELEMENT_BYTES * 10_000
    assert too_many_elements(REQUEST, raw, 10_000) is None


def test_every_message_and_repeated_value_counts_until_the_budget_is_passed() -> None:
    raw = messages(40)  # the input; each message and its content part (the part's text is a value)
    elements = 1 + 2 * 40
    assert len(raw) > MIN_ELEMENT_BYTES * elements  # walked at every budget below
    assert too_many_elements(REQUEST, raw, elements) is None
    assert too_many_elements(REQUEST, raw, elements - 1) == "input.messages.content"  # the last part
    assert too_many_elements(REQUEST, raw, elements - 2) == "input.messages"
    assert too_many_elements(REQUEST, raw, 0) == "input"


def test_the_field_where_the_budget_runs_out_is_named() -> None:
    raw = messages(40)
    assert too_many_elements(REQUEST, raw, 10) in ("input.messages", "input.messages.content")
    texts = embed_pb2.EmbedRequest(texts=["a"] * 50).SerializeToString()
    assert too_many_elements(embed_pb2.EmbedRequest.DESCRIPTOR, texts, 20) == "texts"


def test_bytes_that_are_not_whole_fields_are_left_to_the_parser() -> None:
    assert too_many_elements(REQUEST, b"\x0a\xff\xff\xff\x0f" + b"\x00" * 64, 1) is None


def packed_states(count: int, value: int = 1) -> bytes:
    """A ListEscalationsRequest whose repeated enum `states` is packed: one byte per value."""
    head = esc.ListEscalationsRequest(tenant_id="acme", agent_id="creator").SerializeToString()
    body = bytes([value]) * count
    size, prefix = len(body), bytearray([3 << 3 | 2])
    while size > 0x7F:
        prefix.append(size & 0x7F | 0x80)
        size >>= 7
    prefix.append(size)
    return head + bytes(prefix) + body


def test_each_value_of_a_packed_repeated_field_counts() -> None:
    # 8 MB of packed enum values parse into 8 million values, which the servicer then reads one by
    # one (4 s of the event loop); on the wire they are one field of one byte a value
    descriptor = esc.ListEscalationsRequest.DESCRIPTOR
    assert too_many_elements(descriptor, packed_states(1_000), 1_000) is None
    assert too_many_elements(descriptor, packed_states(1_001), 1_000) == "states"
    # values of several bytes count once each: 300 is two bytes on the wire
    two_bytes = esc.ListEscalationsRequest(states=[300] * 600).SerializeToString()  # type: ignore[list-item]
    assert too_many_elements(descriptor, two_bytes, 600) is None
    assert too_many_elements(descriptor, two_bytes, 599) == "states"
