"""The tolerant decoder: every byte string either parses or names what is wrong; nothing else escapes."""

from __future__ import annotations

import logging

import pytest
from google.protobuf.descriptor import Descriptor
from hypothesis import given, settings
from hypothesis import strategies as st

from sidecar._gen.orchestrator.v1 import generate_pb2 as gen
from sidecar._gen.orchestrator.v1 import keys_pb2
from sidecar.api.decode import MalformedRequestError, RequestDecoder, bad_utf8_field
from sidecar.telemetry.logging import RateLimitedLog
from tests.conftest import FakeClock, user
from tests.support.api import generate_request

DESCRIPTOR = gen.GenerateRequest.DESCRIPTOR
VALID = generate_request(
    messages=[user("hello"), user("world")], model="echo", metadata={"k": "v"}
).SerializeToString()


def decoder(clock: FakeClock | None = None, descriptor: Descriptor = DESCRIPTOR) -> RequestDecoder:
    return RequestDecoder(
        descriptor, RateLimitedLog(logging.getLogger("test.decode"), clock or FakeClock(), interval=60)
    )


@pytest.mark.parametrize(
    "raw", [b"\x00\x01", b"\x02\x00", b"\x08\x01\x00\x00", b"\x0a\x05ab", b"\x08", b"\x0b"]
)
def test_a_request_type_without_fields_still_refuses_what_is_not_protobuf(raw: bytes) -> None:
    """upb alone accepts a field numbered 0 for a message type without fields (RotateKeysRequest):
    an admin action must not run on such bytes."""
    with pytest.raises(MalformedRequestError):
        decoder(descriptor=keys_pb2.RotateKeysRequest.DESCRIPTOR)(raw)


@pytest.mark.parametrize("raw", [b"", b"\x08\x01", b"\x12\x02hi", b"\x1d\x00\x00\x00\x00"])
def test_a_request_type_without_fields_keeps_unknown_fields_of_newer_clients(raw: bytes) -> None:
    assert decoder(descriptor=keys_pb2.RotateKeysRequest.DESCRIPTOR)(raw).ByteSize() == len(raw)


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_parse_or_are_malformed(raw: bytes) -> None:
    try:
        decoder()(raw)
    except MalformedRequestError as err:
        assert err.reason == "MALFORMED_REQUEST" and len(err.violations) == 1


@settings(max_examples=400, deadline=None)
@given(st.integers(0, len(VALID) - 1), st.integers(0, 255))
def test_mutated_valid_requests_parse_or_are_malformed(pos: int, byte: int) -> None:
    data = bytearray(VALID)
    data[pos] = byte
    try:
        decoder()(bytes(data))
    except MalformedRequestError as err:
        assert err.violations[0].field in {"", "input", "input.model", "input.metadata"} or err.violations[
            0
        ].field.startswith("input.messages[")


def test_the_bad_string_is_named_by_its_path() -> None:
    raw = VALID.replace(b"world", b"w\xffrld")
    assert bad_utf8_field(DESCRIPTOR, raw) == "input.messages[1].content[0].text"
    assert bad_utf8_field(DESCRIPTOR, VALID.replace(b"echo", b"ech\xc0")) == "input.model"
    assert bad_utf8_field(DESCRIPTOR, VALID.replace(b"\x01v", b"\x01\xff")) == "input.metadata"
    assert bad_utf8_field(DESCRIPTOR, VALID) is None
    assert bad_utf8_field(DESCRIPTOR, b"\x0a\x7f") is None  # truncated before any string


def test_a_message_sent_twice_is_merged_and_its_lists_go_on_counting() -> None:
    """protobuf merges a singular message that occurs twice: the bad text is the third message."""
    again = generate_request(messages=[user("wXrld")]).SerializeToString().replace(b"wXrld", b"w\xffrld")
    assert bad_utf8_field(DESCRIPTOR, VALID + again) == "input.messages[2].content[0].text"


def test_the_log_line_is_rate_limited() -> None:
    clock = FakeClock()
    log = RateLimitedLog(logging.getLogger("test.limited"), clock, interval=60)
    assert log.warning("bad") and not log.warning("bad") and not log.warning("bad")
    clock.advance(61)
    assert log.warning("bad")
