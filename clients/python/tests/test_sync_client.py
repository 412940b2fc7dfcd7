"""The blocking client against the contract sidecar: unary, stream, cancel, typed error, retry."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import orchestrator_client as oc


def _input(text: str, **kw: Any) -> Any:
    return oc.generation_input(text, tenant_id="sync", user_id="u", **kw)


def test_sync_generate_stream_and_errors(sidecar: str, contract: dict[str, Any]) -> None:
    with oc.Client(sidecar, token=contract["token"]) as client:
        assert oc.text_of(client.generate(_input("hello sync"), timeout=5)) == "hello sync"
        stream = client.stream(_input("one two three four"), timeout=5)
        kinds = [event.WhichOneof("event") for event in stream]
        assert kinds[-1] == "result" and stream.text == "one two three four"
        with pytest.raises(oc.NotFoundError) as nf:
            client.generate(_input("x", model="missing"), timeout=5)
        assert nf.value.reason == "MODEL_NOT_FOUND" and nf.value.metadata["model"] == "missing"
        stream = client.stream(_input("a b c d e f g h i j k l m n o p"), timeout=5)
        with pytest.raises(oc.CancelledError):
            for _ in stream:
                stream.cancel()
        assert client.get_quota("sync", "u", timeout=5).tier == "contract"


def test_async_retry_policy_waits_the_retry_info_then_gives_up(
    sidecar: str, contract: dict[str, Any]
) -> None:
    with oc.Client(sidecar, token=contract["token"]) as client:
        with pytest.raises(oc.UnavailableError) as err:
            # RetryInfo says 1 s; the deadline of 0.5 s leaves no room for a second attempt
            client.generate(_input("[[fault:rate_limited retry_after=1]] x", model="limited"), timeout=0.5,
                            retry_policy=oc.RetryPolicy())  # fmt: skip
        assert err.value.retry_delay is not None


def test_unix_socket_addresses(sidecar_socket: Path, contract: dict[str, Any]) -> None:
    for address in (f"unix://{sidecar_socket}", str(sidecar_socket)):
        with oc.Client(address, token=contract["token"]) as client:
            assert oc.text_of(client.generate(_input("over a socket"), timeout=5)) == "over a socket"


def test_sync_embed_texts_and_typed_errors(sidecar: str, contract: dict[str, Any]) -> None:
    with oc.Client(sidecar, token=contract["token"]) as client:
        reply = client.embed(["a cat", "a dog"], tenant_id="sync", user_id="u", timeout=5,
                             retry_policy=oc.RetryPolicy())  # fmt: skip
        assert [len(e.values) for e in reply.embeddings] == [reply.dimensions] * 2 and reply.normalized
        one = client.embed("a cat", tenant_id="sync", user_id="u", timeout=5)  # a str is one text
        assert len(one.embeddings) == 1 and one.cached_texts == 1
        with pytest.raises(oc.InvalidRequestError) as bad:
            client.embed([], tenant_id="sync", user_id="u", timeout=5)
        assert [v.field for v in bad.value.field_violations] == ["texts"]
        with pytest.raises(oc.InvalidRequestError) as unknown:
            client.embed(["x"], tenant_id="sync", user_id="u", route="nope", timeout=5)
        assert [v.field for v in unknown.value.field_violations] == ["route"]
