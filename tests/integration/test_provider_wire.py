"""Provider wire formats as the providers document them, replayed by a loopback upstream and seen
through a real server and gRPC client."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import grpc
import pytest

from sidecar._gen.orchestrator.v1 import generate_pb2 as gen
from tests.conftest import user
from tests.integration.helpers import rich
from tests.integration.test_schema_retry import ask, config
from tests.integration.test_structured import KEYS
from tests.support.api import Stubs, generate_request, stream_request, text_of
from tests.support.upstream import Reply, Upstream

pytestmark = pytest.mark.integration

REFUSAL = "I'm sorry, I cannot help with that."


def refusal_answer() -> Reply:
    """OpenAI's answer when a model declines a structured-output request: `refusal`, content null."""
    message = {"role": "assistant", "content": None, "refusal": REFUSAL}
    body = {
        "id": "chatcmpl-r1",
        "object": "chat.completion",
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 40, "completion_tokens": 9, "total_tokens": 49},
    }
    return Reply(body=json.dumps(body).encode())


def refusal_stream() -> Reply:
    def event(delta: dict[str, Any], finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        data = {"id": "chatcmpl-r2", "object": "chat.completion.chunk", "choices": [choice], "usage": None}
        return b"data: " + json.dumps(data).encode() + b"\n\n"

    usage = {"prompt_tokens": 40, "completion_tokens": 9, "total_tokens": 49}
    last = {"id": "chatcmpl-r2", "object": "chat.completion.chunk", "choices": [], "usage": usage}
    return Reply(
        chunks=[
            event({"role": "assistant", "content": None, "refusal": ""}),
            event({"refusal": "I'm sorry, "}),
            event({"refusal": "I cannot help with that."}),
            event({}, "stop"),
            b"data: " + json.dumps(last).encode() + b"\n\n",
            b"data: [DONE]\n\n",
        ]
    )


@pytest.mark.parametrize("stream", [False, True], ids=["unary", "stream"])
async def test_an_openai_refusal_reaches_the_caller_as_text_finished_by_the_content_filter(
    serve: Any, upstream: Upstream, upstream2: Upstream, stream: bool
) -> None:
    """The refusal was dropped: the caller got an empty answer finished STOP."""
    upstream.push(refusal_stream() if stream else refusal_answer())
    s = await serve(config(upstream, upstream2), KEYS)
    fields = {"messages": [user("Paris?")], "tenant_id": "acme", "user_id": "bob"}
    if stream:
        events = [e async for e in s.stub.StreamGenerate(stream_request(**fields))]
        assert "".join(e.delta.text for e in events if e.HasField("delta")) == REFUSAL
        reply = events[-1].result
    else:
        reply = await s.stub.Generate(generate_request(**fields))
    assert text_of(reply) == REFUSAL
    assert reply.summary.finish_reason == gen.FINISH_REASON_CONTENT_FILTER


async def test_a_refused_structured_answer_is_not_retried_on_another_deployment(
    serve: Any, upstream: Upstream, upstream2: Upstream
) -> None:
    """schema_retry retries an answer that finished normally and failed the schema; a refusal looked
    like one (empty, finished STOP), so a second provider was asked, and paid, for the same request.
    A refused answer would be refused again: it is not retried (docs/generation-features.md). It
    reaches the caller as the refusal it is, finished CONTENT_FILTER, as OpenAI's structured outputs
    deliver one; it failed as SCHEMA_VALIDATION_FAILED ("not JSON, retrying may succeed")."""
    upstream.push(refusal_answer())
    upstream2.push(Reply.json("openai/json_schema.json"))
    s = await serve(config(upstream, upstream2), KEYS)
    reply = await s.stub.Generate(generate_request(**ask()))
    assert reply.summary.finish_reason == gen.FINISH_REASON_CONTENT_FILTER
    assert text_of(reply) == REFUSAL
    assert len(upstream.seen) == 1 and upstream2.seen == []


def embedding_policy(first: Upstream, second: Upstream, dimensions: int | None = 4) -> dict[str, Any]:
    def deployment(upstream: Upstream) -> dict[str, Any]:
        d = {"kind": "openai", "model": "e", "base_url": f"{upstream.url}/v1", "api_key": {"env": "OAI_KEY"}}
        return {**d, "dimensions": dimensions} if dimensions else d

    limit = {"name": "tokens", "metric": "tokens", "window": "day", "limit": 100000}
    return {
        "default_route": "echo",
        "deployments": {"echo": {"provider": "echo", "model": "echo-1"}},
        "routes": {"echo": {"deployments": ["echo"]}},
        "quota": {"limits": [limit]},
        "embeddings": {
            "default_route": "r",
            "deployments": {"first": deployment(first), "second": deployment(second)},
            "routes": {"r": {"deployments": ["first", "second"]}},
        },
    }


def embeddings_answer(*vectors: list[float], usage: bool = True) -> Reply:
    data = [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)]
    body: dict[str, Any] = {"object": "list", "data": data, "model": "e"}
    if usage:
        body["usage"] = {"prompt_tokens": 9, "total_tokens": 9}
    return Reply(body=json.dumps(body).encode())


def embed_request(*texts: str) -> Any:
    from sidecar._gen.orchestrator.v1 import embed_pb2

    return embed_pb2.EmbedRequest(tenant_id="acme", user_id="bob", texts=texts)


async def test_embeddings_of_another_size_than_the_deployment_asked_for_are_a_bad_answer(
    serve: Any, upstream: Upstream, upstream2: Upstream
) -> None:
    """A deployment configured `dimensions: 4` on a server that ignores `dimensions` (llama.cpp,
    Ollama) answered 6-float vectors, and the caller got them as that deployment's 4-dimension
    model: a vector store sized for the route fails on them. They are the upstream's bad answer;
    the next deployment answers."""
    upstream.push(embeddings_answer([0.1, 0.2, 0.3, 0.4, 0.5, 0.6]))
    upstream2.push(embeddings_answer([0.5, 0.5, 0.5, 0.5]))
    s = await serve({"policy": embedding_policy(upstream, upstream2)}, KEYS)
    reply = await s.stub.Embed(embed_request("hello"))
    assert (reply.deployment, reply.dimensions, len(reply.embeddings[0].values)) == ("second", 4, 4)


async def test_embeddings_longer_than_any_model_makes_are_a_bad_answer(
    serve: Any, upstream: Upstream, upstream2: Upstream
) -> None:
    """Without `dimensions`, a vector's length was whatever the upstream sent (up to the 32 MiB
    body): longer than the 65536 a deployment may ask for, it is garbage."""
    upstream.push(embeddings_answer([0.001] * 70_000))
    upstream2.push(embeddings_answer([0.5, 0.5, 0.5, 0.5]))
    s = await serve({"policy": embedding_policy(upstream, upstream2, dimensions=None)}, KEYS)
    reply = await s.stub.Embed(embed_request("hello"))
    assert (reply.deployment, reply.dimensions) == ("second", 4)


async def test_a_failed_titan_request_falls_over_to_the_next_deployment_not_internal(
    serve: Any, upstream: Upstream, upstream2: Upstream
) -> None:
    """Titan embeds one text per request, run in an asyncio.TaskGroup: its 429 came out as an
    ExceptionGroup, which nothing classifies, so the caller got INTERNAL, the next deployment was
    never asked and the breaker was not told."""

    def titan(upstream: Upstream) -> dict[str, Any]:
        model = "amazon.titan-embed-text-v2:0"
        return {"kind": "bedrock", "model": model, "base_url": upstream.url, "api_key": {"env": "OAI_KEY"}}

    policy = embedding_policy(upstream, upstream2)
    policy["embeddings"]["deployments"] = {"first": titan(upstream), "second": titan(upstream2)}
    upstream.push(Reply.json("bedrock/error_throttling.json", 429))
    upstream.default = Reply(hang=True)  # the other text's request: cancelled, not left running
    upstream2.default = Reply.json("bedrock/titan_embedding.json")
    s = await serve({"policy": policy}, KEYS)
    reply = await s.stub.Embed(embed_request("hello", "world"), timeout=10)
    assert (reply.deployment, reply.dimensions, len(reply.embeddings)) == ("second", 4, 2)
    assert len(upstream.seen) == 2
    for _ in range(100):  # the hanging request's connection is closed by the sidecar
        if upstream.disconnects == 1:
            break
        await asyncio.sleep(0.01)
    assert upstream.disconnects == 1


async def test_embeddings_without_usage_are_charged_the_sidecars_count_not_nothing(
    serve: Any, upstream: Upstream, upstream2: Upstream
) -> None:
    """An OpenAI-compatible embeddings server that reports no `usage` (as generation may not): the
    call was charged and recorded 0 tokens. It is charged the sidecar's estimate, as for Gemini."""
    from sidecar._gen.orchestrator.v1 import quota_pb2

    upstream.push(embeddings_answer([0.5, 0.5, 0.5, 0.5], [0.5, 0.5, 0.5, 0.5], usage=False))
    s = await serve({"policy": embedding_policy(upstream, upstream2)}, KEYS)
    reply = await s.stub.Embed(embed_request("some words to embed", "and more of them"))
    assert reply.deployment == "first"
    got = await s.stub.GetQuota(quota_pb2.GetQuotaRequest(tenant_id="acme", user_id="bob"))
    assert next(limit.used for limit in got.limits if limit.name == "tokens") >= 8


def chat_answer(content: str) -> Reply:
    message = {"role": "assistant", "content": content, "refusal": None}
    body = {
        "id": "chatcmpl-n1",
        "object": "chat.completion",
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 40, "completion_tokens": 12, "total_tokens": 52},
    }
    return Reply(body=json.dumps(body).encode())


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
async def test_a_structured_answer_with_a_non_json_number_fails_the_check(
    serve: Any, upstream: Upstream, constant: str
) -> None:
    """`{"n": NaN}` passed the check (Python's json module reads NaN and Infinity) and reached the
    caller as valid JSON; no JSON parser a caller uses (Go, JavaScript, Java) reads it."""
    from tests.integration.test_structured import policy

    upstream.push(chat_answer('{"n": ' + constant + "}"))
    s = await serve({"policy": policy(upstream)}, KEYS)
    fmt = gen.ResponseFormat(json_object=gen.JsonObjectFormat())
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await s.stub.Generate(generate_request(messages=[user("n?")], response_format=fmt))
    err = await rich(info.value)
    assert (err.code, err.reason) == (grpc.StatusCode.UNAVAILABLE, "SCHEMA_VALIDATION_FAILED")
    assert err.info.metadata["violation"] == "the answer is not JSON"


async def test_a_stream_opening_with_a_byte_order_mark_keeps_its_first_event(
    serve: Any, upstream: Upstream, upstream2: Upstream
) -> None:
    """A proxy that writes a UTF-8 byte order mark first (WHATWG: to be ignored): the first line's
    field became `\ufeffdata`, and Gemini's first event, the answer's first words, was dropped."""
    from tests.integration.test_failures import ENV, two_deployments
    from tests.support.upstream import fixture, sse_events

    upstream.push(Reply(chunks=[b"\xef\xbb\xbf", *sse_events(fixture("gemini/stream.sse"))]))
    s = await serve({"policy": two_deployments(upstream.url, upstream2.url, provider="gemini")}, ENV)
    events = [e async for e in s.stub.StreamGenerate(stream_request(messages=[user("Hi")]))]
    assert "".join(e.delta.text for e in events if e.HasField("delta")) == "Hello! How can I help you today?"
    assert text_of(events[-1].result) == "Hello! How can I help you today?"


@pytest.mark.parametrize(
    "ref",
    ["#/$defs/missing", "https://schemas.example.com/city.json", "#nowhere"],
    ids=["pointer", "remote", "anchor"],
)
async def test_a_response_schema_whose_ref_resolves_nowhere_is_refused_before_anything_is_sent(
    serve: Any, upstream: Upstream, ref: str
) -> None:
    """The schema passed the edge's check (the library checks a schema's shape, not its references),
    the provider was asked and paid, and checking its answer raised: INTERNAL for the caller."""
    from tests.integration.test_structured import policy, schema_format

    upstream.push(chat_answer('{"city": "Paris"}'))
    schema = {"type": "object", "properties": {"city": {"$ref": ref}}, "$defs": {"name": {"type": "string"}}}
    s = await serve({"policy": policy(upstream)}, KEYS)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        ask = generate_request(messages=[user("Paris?")], response_format=schema_format(schema))
        await s.stub.Generate(ask)
    err = await rich(info.value)
    assert err.code == grpc.StatusCode.INVALID_ARGUMENT
    assert err.fields == ["input.response_format.json_schema.schema"]
    assert upstream.seen == []


async def test_a_response_schema_with_local_references_is_used(serve: Any, upstream: Upstream) -> None:
    from tests.integration.test_structured import policy, schema_format

    upstream.push(chat_answer('{"city": "Paris"}'))
    schema = {
        "$id": "https://schemas.example.com/weather.json",
        "type": "object",
        "properties": {
            "city": {"$ref": "#/$defs/name"},
            "again": {"$ref": "https://schemas.example.com/weather.json#/$defs/name"},
            "anchored": {"$ref": "#label"},
        },
        "$defs": {"name": {"type": "string"}, "label": {"$anchor": "label", "type": "string"}},
    }
    s = await serve({"policy": policy(upstream)}, KEYS)
    ask = generate_request(messages=[user("Paris?")], response_format=schema_format(schema))
    assert json.loads(text_of(await s.stub.Generate(ask))) == {"city": "Paris"}


async def test_a_pattern_that_backtracks_without_end_does_not_stall_the_sidecar(
    serve: Any, upstream: Upstream
) -> None:
    """A caller's schema with `"pattern": "^(a|aa)+$"` and an answer of 45 a's and a `!`: Python's
    re backtracks through about 10^9 paths, on the event loop, and every call of every tenant on
    the sidecar waited minutes. One answer's check gets a quarter of a second in all."""
    from tests.integration.test_structured import policy, schema_format

    upstream.push(chat_answer('{"code": "' + "a" * 45 + '!"}'))
    schema = {"type": "object", "properties": {"code": {"type": "string", "pattern": "^(a|aa)+$"}}}
    s = await serve({"policy": policy(upstream)}, KEYS)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        ask = generate_request(messages=[user("code?")], response_format=schema_format(schema))
        await s.stub.Generate(ask, timeout=10)
    err = await rich(info.value)
    assert (err.code, err.reason) == (grpc.StatusCode.UNAVAILABLE, "SCHEMA_VALIDATION_FAILED")
    assert "took too long to check" in err.info.metadata["violation"]


async def test_patterns_still_check_answers(serve: Any, upstream: Upstream) -> None:
    from tests.integration.test_structured import policy, schema_format

    schema = {
        "type": "object",
        "properties": {"code": {"type": "string", "pattern": "^[A-Z]{3}$"}},
        "patternProperties": {"^x-": {"type": "integer"}},
    }
    upstream.push(chat_answer('{"code": "PAR", "x-n": 1}'), chat_answer('{"code": "PAR", "x-n": "one"}'))
    s = await serve({"policy": policy(upstream)}, KEYS)
    ask = generate_request(messages=[user("code?")], response_format=schema_format(schema))
    assert json.loads(text_of(await s.stub.Generate(ask))) == {"code": "PAR", "x-n": 1}
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await s.stub.Generate(ask)
    assert (await rich(info.value)).info.metadata["violation"] == "at x-n: 'one' is not of type 'integer'"


async def test_an_answer_nested_deeper_than_its_check_can_follow_fails_the_check_not_internal(
    serve: Any, upstream: Upstream
) -> None:
    """A recursive schema (a tree) and an answer 900 arrays deep: json.loads reads it, the validator
    following it ran out of Python's stack, and the RecursionError was INTERNAL for the caller."""
    from tests.integration.test_structured import policy, schema_format

    upstream.push(chat_answer('{"tree": ' + "[" * 900 + "]" * 900 + "}"))
    schema = {
        "type": "object",
        "properties": {"tree": {"$ref": "#/$defs/node"}},
        "$defs": {"node": {"type": "array", "items": {"$ref": "#/$defs/node"}}},
    }
    s = await serve({"policy": policy(upstream)}, KEYS)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        ask = generate_request(messages=[user("tree?")], response_format=schema_format(schema))
        await s.stub.Generate(ask)
    err = await rich(info.value)
    assert (err.code, err.reason) == (grpc.StatusCode.UNAVAILABLE, "SCHEMA_VALIDATION_FAILED")
    assert err.info.metadata["violation"] == "the answer is JSON nested too deeply to check"


async def test_unique_items_of_a_long_answer_are_checked_in_linear_time(
    serve: Any, upstream: Upstream
) -> None:
    """`uniqueItems` over 6000 objects: jsonschema compares every pair of objects it cannot sort
    (about 18 million comparisons, half a minute on the event loop, every other call waiting)."""
    import time

    from tests.integration.test_structured import policy, schema_format

    items = [{"id": i} for i in range(6000)]
    upstream.push(chat_answer(json.dumps({"items": items})))
    schema = {"type": "object", "properties": {"items": {"type": "array", "uniqueItems": True}}}
    s = await serve({"policy": policy(upstream)}, KEYS)
    ask = generate_request(messages=[user("items?")], response_format=schema_format(schema))
    started = time.monotonic()
    reply = await s.stub.Generate(ask, timeout=20)
    assert len(json.loads(text_of(reply))["items"]) == 6000
    assert time.monotonic() - started < 5


async def test_a_schema_whose_check_branches_without_end_does_not_stall_the_sidecar(
    serve: Any, upstream: Upstream
) -> None:
    """A 40-byte answer, 30 arrays deep, against a schema whose node is `anyOf` two node arrays: a
    failing leaf makes the validator try both branches at every level, 2^30 paths, on the event
    loop. One answer's check gets a quarter of a second in all."""
    import time

    from tests.integration.test_structured import policy, schema_format

    upstream.push(chat_answer('{"t": ' + "[" * 30 + "1" + "]" * 30 + "}"))
    node = {"type": "array", "items": {"$ref": "#/$defs/node"}}
    schema = {
        "type": "object",
        "properties": {"t": {"$ref": "#/$defs/node"}},
        "$defs": {"node": {"anyOf": [node, node]}},
    }
    s = await serve({"policy": policy(upstream)}, KEYS)
    started = time.monotonic()
    with pytest.raises(grpc.aio.AioRpcError) as info:
        ask = generate_request(messages=[user("tree?")], response_format=schema_format(schema))
        await s.stub.Generate(ask, timeout=20)
    err = await rich(info.value)
    assert (err.code, err.reason) == (grpc.StatusCode.UNAVAILABLE, "SCHEMA_VALIDATION_FAILED")
    assert "took too long to check" in err.info.metadata["violation"]
    assert time.monotonic() - started < 5


class BatchLimitedEmbedder:
    """A loopback embeddings API that refuses batches over its limit as the real one does: Gemini's
    batchEmbedContents (100 requests) or Cohere on Bedrock (96 texts); each vector says which text
    it is for (its first value is the text's number)."""

    def __init__(self, limit: int, refusal: bytes, max_chars: int = 1 << 20) -> None:
        self.limit, self.refusal, self.batches = limit, refusal, []
        self.max_chars, self.longest = max_chars, 0
        self._runner: Any = None
        self.url = ""

    async def start(self) -> BatchLimitedEmbedder:
        from aiohttp import web

        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        return self

    async def close(self) -> None:
        await self._runner.cleanup()

    async def _handle(self, request: Any) -> Any:
        from aiohttp import web

        body = await request.json()
        texts = (
            [r["content"]["parts"][0]["text"] for r in body["requests"]] if "requests" in body
            else [body["content"]["parts"][0]["text"]] if "content" in body
            else body["texts"]
        )  # fmt: skip
        self.batches.append(len(texts))
        self.longest = max(self.longest, *(len(t) for t in texts))
        if len(texts) > self.limit or self.longest > self.max_chars:
            return web.Response(status=400, body=self.refusal, content_type="application/json")
        numbers = [t.split()[-1] for t in texts]
        vectors = [[float(n) if n.isdigit() else -1.0, 1.0, 0.0, 0.0] for n in numbers]
        if "requests" in body:
            answer: dict[str, Any] = {"embeddings": [{"values": v} for v in vectors]}
        elif "content" in body:
            answer = {"embedding": {"values": vectors[0]}}
        else:
            kind = "embeddings_by_type"
            answer = {"id": "e", "embeddings": {"float": vectors}, "texts": texts, "response_type": kind}
        return web.json_response(answer)


@pytest.mark.parametrize("kind", ["gemini", "cohere"])
async def test_a_batch_larger_than_the_providers_limit_is_sent_in_batches_it_takes(
    serve: Any, kind: str
) -> None:
    """Embed takes up to 256 texts a call; Gemini's batchEmbedContents takes 100 (more is HTTP 400,
    "at most 100 requests can be in one batch") and Cohere on Bedrock 96: a valid call of 150 texts
    was INVALID_ARGUMENT / PROVIDER_REJECTED, the caller's fault as it told them."""
    gemini_refusal = (
        b'{"error":{"code":400,"message":"* BatchEmbedContentsRequest.requests: at most 100 requests'
        b' can be in one batch\\n","status":"INVALID_ARGUMENT"}}'
    )
    cohere_refusal = b'{"message":"Malformed input request: #/texts: expected maxItems: 96, actual: 150"}'
    fake = await BatchLimitedEmbedder(
        100 if kind == "gemini" else 96, gemini_refusal if kind == "gemini" else cohere_refusal
    ).start()
    try:
        if kind == "gemini":
            d = {"kind": "gemini", "model": "gemini-embedding-001", "base_url": f"{fake.url}/v1beta"}
        else:
            d = {"kind": "bedrock", "model": "cohere.embed-english-v3", "base_url": fake.url}
        policy = embedding_policy(Upstream(), Upstream())
        policy["embeddings"]["deployments"] = {"first": {**d, "api_key": {"env": "OAI_KEY"}}}
        policy["embeddings"]["routes"] = {"r": {"deployments": ["first"]}}
        s = await serve({"policy": policy}, KEYS)
        texts = [f"text number {i}" for i in range(150)]
        reply = await s.stub.Embed(embed_request(*texts), timeout=20)
        assert [e.values[0] for e in reply.embeddings] == list(range(150))  # in order
        assert max(fake.batches) <= fake.limit and sum(fake.batches) == 150
    finally:
        await fake.close()


async def test_a_text_longer_than_cohere_takes_is_cut_as_truncate_end_asks_not_refused(serve: Any) -> None:
    """Cohere on Bedrock refuses a text over 2048 characters ("expected maxLength: 2048") whatever
    `truncate` says; a text the sidecar accepts (256 of its 512 tokens, 2295 characters) was
    INVALID_ARGUMENT / PROVIDER_REJECTED. It is cut to 2048 characters, the end dropped, as the
    request's `truncate: END` asks of Cohere."""
    refusal = b'{"message":"Malformed input request: #/texts/0: expected maxLength: 2048, actual: 2295"}'
    fake = await BatchLimitedEmbedder(96, refusal, max_chars=2048).start()
    try:
        d = {"kind": "bedrock", "model": "cohere.embed-english-v3", "base_url": fake.url}
        policy = embedding_policy(Upstream(), Upstream())
        policy["embeddings"]["deployments"] = {"first": {**d, "api_key": {"env": "OAI_KEY"}}}
        policy["embeddings"]["routes"] = {"r": {"deployments": ["first"]}}
        s = await serve({"policy": policy}, KEYS)
        reply = await s.stub.Embed(embed_request("abcdefgh " * 255 + "7", "short 8"), timeout=20)
        assert [e.values[1] for e in reply.embeddings] == [1.0, 1.0]
        assert fake.longest == 2048
    finally:
        await fake.close()


async def test_a_batch_larger_than_openai_takes_is_sent_in_batches_it_takes(serve: Any) -> None:
    """OpenAI's /embeddings takes at most 2048 inputs; `max_texts` may be set up to 10000, and a
    valid call of 2100 texts was INVALID_ARGUMENT / PROVIDER_REJECTED. (The sidecar sends 256 a
    request, whose answer stays within the 32 MiB an answer may be.)"""
    from aiohttp import web

    sizes: list[int] = []

    async def handle(request: web.Request) -> web.Response:
        texts = (await request.json())["input"]
        sizes.append(len(texts))
        if len(texts) > 2048:
            error = {
                "error": {"message": "'$.input' is invalid: too many inputs", "type": "invalid_request_error"}
            }
            return web.json_response(error, status=400)
        data = [{"index": i, "embedding": [float(t.split()[-1]), 1.0]} for i, t in enumerate(texts)]
        return web.json_response({"data": data, "usage": {"prompt_tokens": 3 * len(texts)}})

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/v1/embeddings", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        url = f"http://127.0.0.1:{runner.addresses[0][1]}/v1"
        policy = embedding_policy(Upstream(), Upstream(), dimensions=None)
        policy["embeddings"]["deployments"]["first"]["base_url"] = url
        policy["embeddings"]["routes"] = {"r": {"deployments": ["first"]}}
        policy["embeddings"]["max_texts"] = 2100
        s = await serve({"policy": policy}, KEYS)
        reply = await s.stub.Embed(embed_request(*(f"text {i}" for i in range(2100))), timeout=30)
        assert [e.values[0] for e in reply.embeddings] == list(range(2100))
        assert max(sizes) <= 256 and sum(sizes) == 2100
    finally:
        await runner.cleanup()


async def test_a_dynamic_ref_to_another_document_is_refused_and_never_fetched(
    serve: Any, upstream: Upstream, upstream2: Upstream
) -> None:
    """jsonschema fetches a reference it does not hold with urllib (deprecated, still on), with no
    timeout, on the event loop: a caller's `$dynamicRef` to a URL made the sidecar GET it (any
    address it can reach) while checking the answer. Refused at the edge; nothing is fetched."""
    from tests.integration.test_structured import policy, schema_format

    upstream.push(chat_answer('{"a": "x"}'))
    upstream2.default = Reply(body=b'{"type": "string"}')  # what a fetch would get
    schema = {"type": "object", "properties": {"a": {"$dynamicRef": f"{upstream2.url}/s.json"}}}
    s = await serve({"policy": policy(upstream)}, KEYS)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        ask = generate_request(messages=[user("a?")], response_format=schema_format(schema))
        await s.stub.Generate(ask)
    err = await rich(info.value)
    assert err.code == grpc.StatusCode.INVALID_ARGUMENT
    assert err.fields == ["input.response_format.json_schema.schema"]
    assert upstream.seen == [] and upstream2.seen == []


async def test_a_ref_to_a_json_schema_metaschema_is_used_as_the_validator_holds_it(
    serve: Any, upstream: Upstream
) -> None:
    from tests.integration.test_structured import policy, schema_format

    upstream.push(chat_answer('{"a": {"type": "string"}}'))
    meta = "https://json-schema.org/draft/2020-12/schema"
    schema = {"type": "object", "properties": {"a": {"$ref": meta}}}
    s = await serve({"policy": policy(upstream)}, KEYS)
    ask = generate_request(messages=[user("a?")], response_format=schema_format(schema))
    assert json.loads(text_of(await s.stub.Generate(ask))) == {"a": {"type": "string"}}


async def test_a_batch_of_large_vectors_is_asked_for_in_answers_that_fit_the_answer_bound(
    serve: Any,
) -> None:
    """600 texts to a 3072-dimension model, one float a line as OpenAI writes them: one answer of
    about 40 MB, past the 32 MiB an upstream answer may be, was a bad answer for a valid call."""
    from aiohttp import web

    sizes: list[int] = []
    floats = ",\n".join(["        -0.0123456789"] * 3071)

    async def handle(request: web.Request) -> web.Response:
        texts = (await request.json())["input"]
        sizes.append(len(texts))
        rows = [
            f'    {{"object": "embedding", "index": {i}, "embedding": [\n        {float(t.split()[-1])},\n'
            f"{floats}\n      ]}}"
            for i, t in enumerate(texts)
        ]
        body = '{"object": "list", "data": [\n' + ",\n".join(rows) + '\n], "usage": {"prompt_tokens": 9}}'
        return web.Response(body=body.encode(), content_type="application/json")

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/v1/embeddings", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        url = f"http://127.0.0.1:{runner.addresses[0][1]}/v1"
        policy = embedding_policy(Upstream(), Upstream(), dimensions=None)
        policy["embeddings"]["deployments"]["first"]["base_url"] = url
        policy["embeddings"]["routes"] = {"r": {"deployments": ["first"]}}
        policy["embeddings"]["max_texts"] = 600
        policy["embeddings"]["max_reply_bytes"] = 16 * 1024 * 1024  # as the client below accepts
        s = await serve({"policy": policy}, KEYS)
        big = [("grpc.max_receive_message_length", 16 * 1024 * 1024)]  # the reply is 7.4 MB
        async with grpc.aio.insecure_channel(f"127.0.0.1:{s.sidecar.port}", options=big) as channel:
            reply = await Stubs(channel).Embed(embed_request(*(f"text {i}" for i in range(600))), timeout=60)
        assert reply.dimensions == 3072 and [e.values[0] for e in reply.embeddings] == list(range(600))
    finally:
        await runner.cleanup()
