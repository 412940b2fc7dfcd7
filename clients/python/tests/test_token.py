"""The token as an application gets it: from a file or a Kubernetes secret, often with a newline."""

from __future__ import annotations

from typing import Any

import pytest

import orchestrator_client as oc
from orchestrator_client._connection import resolve


def test_a_token_with_a_trailing_newline_is_sent_without_it(sidecar: str, contract: dict[str, Any]) -> None:
    """gRPC refused the header and the call died with grpc's own ExecuteBatchError, no typed error;
    the TypeScript client sent the trimmed token, Java none, Go failed INTERNAL: now all four trim it."""
    padded = f"  {contract['token']}\n"
    with oc.Client(sidecar, token=padded) as client:
        answer = client.generate(oc.generation_input("hi", tenant_id="acme", user_id="t"), timeout=10)
    assert oc.text_of(answer) == "hi"


@pytest.mark.parametrize("bad", ["a\nb", "tok\x00", "t\u00e9"])
def test_a_token_no_header_can_carry_is_refused_without_showing_it(bad: str) -> None:
    with pytest.raises(ValueError, match="token") as refused:
        resolve("127.0.0.1:1", bad, environ={})
    assert bad not in str(refused.value)


def test_a_blank_token_sends_none() -> None:
    assert resolve("127.0.0.1:1", " \n", environ={}).token is None
