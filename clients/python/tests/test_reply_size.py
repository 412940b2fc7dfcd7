"""The largest reply a call accepts is the same in every client: DEFAULT_MAX_REPLY_BYTES (256 MiB),
`max_reply_bytes=` to change it. Python accepted 16 MiB, Go and Java 4 MiB, TypeScript any size, so
one answer arrived in one language and failed in another; and an `options=` entry naming
grpc.max_receive_message_length never took effect (gRPC keeps the first of two, the client's own).

The sidecar's `xlarge` route echoes the prompt, so a prompt of N characters is a reply of N bytes and
a little (tests/contract/sidecar.yaml)."""

from __future__ import annotations

import grpc
import pytest

import orchestrator_client as oc

LIMIT = 1024 * 1024  # a limit set by the caller
BEYOND_GRPC_DEFAULT = 5 * 1024 * 1024  # past the 4 MiB gRPC clients accept unless told otherwise


def ask(size: int) -> oc.generate_pb2.GenerationInput:
    text = ("word " * (size // 5 + 1))[:size]
    return oc.generation_input(text, model="xlarge", tenant_id="acme", user_id="reply-size")


def test_the_default_is_the_largest_reply_the_sidecar_may_send() -> None:
    assert oc.DEFAULT_MAX_REPLY_BYTES == 256 * 1024 * 1024


def test_a_reply_past_grpcs_own_default_arrives(sidecar: str, contract: dict[str, str]) -> None:
    with oc.Client(sidecar, token=contract["token"]) as client:
        reply = client.generate(ask(BEYOND_GRPC_DEFAULT), timeout=60)
    assert len(oc.text_of(reply)) == BEYOND_GRPC_DEFAULT


def test_a_reply_just_under_the_limit_arrives_and_one_over_it_fails(
    sidecar: str, contract: dict[str, str]
) -> None:
    with oc.Client(sidecar, token=contract["token"], max_reply_bytes=LIMIT) as client:
        under = client.generate(ask(LIMIT - 512), timeout=30)  # the text and ~150 bytes of the rest
        assert under.ByteSize() <= LIMIT
        with pytest.raises(oc.TransportLimitError) as over:
            client.generate(ask(LIMIT + 1), timeout=30)
    assert over.value.code is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert f"vs. {LIMIT}" in str(over.value)  # gRPC's "larger than max (<reply> vs. <limit>)"
    # gRPC's own refusal, not the caller's budget: it was a QuotaExceededError, which an application
    # shows as "you are out of quota"
    assert not isinstance(over.value, oc.QuotaExceededError) and over.value.reason == ""


async def test_the_async_client_takes_the_same_limit(sidecar: str, contract: dict[str, str]) -> None:
    async with oc.AsyncClient(sidecar, token=contract["token"], max_reply_bytes=LIMIT) as client:
        assert len(oc.text_of(await client.generate(ask(LIMIT - 512), timeout=30))) == LIMIT - 512
        with pytest.raises(oc.TransportLimitError, match=f"vs. {LIMIT}"):
            await client.generate(ask(LIMIT + 1), timeout=30)
    async with oc.AsyncClient(sidecar, token=contract["token"]) as client:
        reply = await client.generate(ask(BEYOND_GRPC_DEFAULT), timeout=60)
    assert len(oc.text_of(reply)) == BEYOND_GRPC_DEFAULT


def test_a_channel_option_of_the_caller_replaces_the_clients_own(
    sidecar: str, contract: dict[str, str]
) -> None:
    option = [("grpc.max_receive_message_length", LIMIT)]
    client = oc.Client(sidecar, token=contract["token"], options=option)
    with client, pytest.raises(oc.TransportLimitError, match=f"vs. {LIMIT}"):
        client.generate(ask(LIMIT + 1), timeout=30)


def test_a_request_over_the_sidecars_own_limit_is_a_transport_limit_too(
    sidecar: str, contract: dict[str, str]
) -> None:
    """The sidecar's gRPC refuses a request over settings.max_receive_message_bytes (8 MiB) with a
    RESOURCE_EXHAUSTED of its own, without the sidecar's ErrorInfo: not the caller's quota either."""
    request = oc.generation_input("x" * (9 * 1024 * 1024), model="xlarge", tenant_id="acme", user_id="u")
    with oc.Client(sidecar, token=contract["token"]) as client, pytest.raises(oc.TransportLimitError) as over:
        client.generate(request, timeout=30)
    assert over.value.code is grpc.StatusCode.RESOURCE_EXHAUSTED and over.value.reason == ""


def test_the_sidecars_quota_refusal_stays_a_quota_error(sidecar: str, contract: dict[str, str]) -> None:
    """Its RESOURCE_EXHAUSTED carries the ErrorInfo's reason: the typed quota error, as before."""
    request = oc.generation_input("one too many", tenant_id="scarce-tenant", user_id="u-reply-size")
    with oc.Client(sidecar, token=contract["token"]) as client:
        client.generate(request, timeout=30)
        with pytest.raises(oc.QuotaExceededError) as spent:
            client.generate(request, timeout=30)
    assert spent.value.reason == "RATE_LIMITED" and not isinstance(spent.value, oc.TransportLimitError)


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, 2**31])
def test_a_limit_that_is_no_positive_number_of_bytes_is_refused(bad: object) -> None:
    with pytest.raises(ValueError, match="max_reply_bytes"):
        oc.Client("127.0.0.1:1", token="", max_reply_bytes=bad)  # type: ignore[arg-type]
