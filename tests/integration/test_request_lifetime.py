"""A refused request is freed when its RPC ends, not at the next full garbage collection.

The collector runs by counts of Python objects, but a decoded request's memory is mostly protobuf's
arena: 8 MiB of tiny repeated messages is about 300 MB of arena and only a handful of objects. A
reference cycle around an aborted RPC (the abort re-raised from a helper whose frame keeps it)
held the request until a full collection, which such requests alone never trigger: each one added
about 300 MB of RSS. So: with the collector off, every request object must already be gone."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator
from typing import Any

import grpc
import pytest

from sidecar._gen.orchestrator.v1 import embed_pb2, quota_pb2
from sidecar._gen.orchestrator.v1 import generate_pb2 as gen
from tests.conftest import echo_policy, user
from tests.support.api import generate_request

pytestmark = pytest.mark.integration

TOKEN = "lifetime-token-0123"
REQUEST_TYPES = (
    gen.GenerateRequest,
    gen.StreamGenerateRequest,
    gen.GenerationInput,
    embed_pb2.EmbedRequest,
    quota_pb2.GetQuotaRequest,
)


@pytest.fixture
def no_collector() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        gc.collect()


def alive() -> int:
    return sum(1 for o in gc.get_objects() if isinstance(o, REQUEST_TYPES))


async def call(channel: grpc.aio.Channel, path: str, data: bytes, metadata: Any, stream: bool) -> None:
    try:
        if stream:
            async for _ in channel.unary_stream(path)(data, metadata=metadata):
                pass
        else:
            await channel.unary_unary(path)(data, metadata=metadata)
    except grpc.aio.AioRpcError as err:
        assert err.code() not in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN), err


async def test_refused_requests_are_freed_at_once(serve: Any, no_collector: None) -> None:
    s = await serve({"policy": echo_policy(), "settings": {"auth": {"token": {"env": "T"}}}}, {"T": TOKEN})
    auth = [("authorization", f"Bearer {TOKEN}")]
    no_messages = gen.GenerateRequest(input=gen.GenerationInput(tenant_id="acme")).SerializeToString()
    ok = generate_request(messages=[user("hi")], tenant_id="acme").SerializeToString()
    unknown_route = generate_request(messages=[user("hi")], model="nope").SerializeToString()
    bad_quota = quota_pb2.GetQuotaRequest(tenant_id="../x").SerializeToString()
    bad_embed = embed_pb2.EmbedRequest(tenant_id="acme", texts=[]).SerializeToString()
    cases = [
        ("/orchestrator.v1.GenerationService/Generate", no_messages, auth, False),  # a refused field
        ("/orchestrator.v1.GenerationService/StreamGenerate", no_messages, auth, True),
        ("/orchestrator.v1.GenerationService/Generate", ok, [], False),  # refused by the gate
        ("/orchestrator.v1.GenerationService/StreamGenerate", ok, [], True),
        ("/orchestrator.v1.GenerationService/Generate", unknown_route, auth, False),  # in the pipeline
        ("/orchestrator.v1.GenerationService/StreamGenerate", unknown_route, auth, True),
        ("/orchestrator.v1.QuotaService/GetQuota", bad_quota, auth, False),
        ("/orchestrator.v1.GenerationService/Embed", bad_embed, auth, False),
        ("/orchestrator.v1.GenerationService/Generate", ok, auth, False),  # an answer
    ]
    await call(s.channel, *cases[-1])  # warm up: lazily built state is not a request
    before = alive()
    for _ in range(3):
        for case in cases:
            await call(s.channel, *case)
    await asyncio.sleep(0.05)  # the server's side of the last call ends after the client's
    assert alive() == before
