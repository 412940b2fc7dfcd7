from __future__ import annotations

from collections.abc import AsyncGenerator

import pytest
from pydantic import SecretStr

from sidecar.core.errors import InvalidCredentialsError, UnauthenticatedError
from sidecar.core.types import Call, Chunk
from sidecar.pipeline.authn import AuthnLayer, TokenVerifier
from tests.conftest import FakeClock
from tests.support.calls import make_call


async def inner(call: Call) -> AsyncGenerator[Chunk, None]:
    yield Chunk(text="ok")


async def run(token: str | None, presented: str | None, clock: FakeClock) -> list[str]:
    layer = AuthnLayer(inner, verifier=TokenVerifier(SecretStr(token) if token else None))
    return [c.text async for c in layer(make_call(clock, token=presented))]


async def test_no_token_configured_accepts_everyone(clock: FakeClock) -> None:
    assert await run(None, None, clock) == ["ok"]


async def test_right_token(clock: FakeClock) -> None:
    assert await run("s3cret", "s3cret", clock) == ["ok"]


async def test_missing_token(clock: FakeClock) -> None:
    with pytest.raises(UnauthenticatedError) as info:
        await run("s3cret", None, clock)
    assert info.value.reason == "MISSING_CREDENTIALS"


async def test_wrong_token_never_echoes_either_value(clock: FakeClock) -> None:
    with pytest.raises(InvalidCredentialsError) as info:
        await run("s3cret", "guess", clock)
    assert info.value.reason == "INVALID_CREDENTIALS"
    assert "s3cret" not in str(info.value) and "guess" not in str(info.value)
