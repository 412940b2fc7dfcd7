"""Token sources: one refresh at a time, early renewal, failures classified (no network, no sleeps)."""

from __future__ import annotations

import asyncio

import pytest
from azure.core.credentials import AccessToken
from azure.core.exceptions import ClientAuthenticationError, ServiceRequestError

from sidecar.core.clock import Deadline
from sidecar.core.errors import DeadlineExceededError, ProviderAuthError, ProviderUnavailableError
from sidecar.providers.tokens import AzureEntraTokens
from tests.conftest import FakeClock

SCOPE = "https://cognitiveservices.azure.com/.default"


class Credential:
    """What azure-identity's async credentials offer: get_token(*scopes) -> AccessToken."""

    def __init__(self, clock: FakeClock, lifetime: float = 3600) -> None:
        self.clock, self.lifetime = clock, lifetime
        self.calls: list[tuple[str, ...]] = []
        self.fail: Exception | None = None
        self.gate: asyncio.Event | None = None

    async def get_token(self, *scopes: str) -> AccessToken:
        self.calls.append(scopes)
        if self.gate is not None:
            await self.gate.wait()
        if self.fail is not None:
            raise self.fail
        return AccessToken(f"token-{len(self.calls)}", int(self.clock.wall() + self.lifetime))


async def test_token_is_reused_until_five_minutes_before_expiry(clock: FakeClock) -> None:
    credential = Credential(clock)
    tokens = AzureEntraTokens(SCOPE, credential=credential, clock=clock)
    deadline = Deadline(None, clock)
    assert await tokens.token(deadline) == "token-1"
    clock.advance(3600 - 301)
    assert await tokens.token(deadline) == "token-1"
    clock.advance(2)
    assert await tokens.token(deadline) == "token-2"
    assert credential.calls == [(SCOPE,), (SCOPE,)]


async def test_concurrent_callers_share_one_refresh(clock: FakeClock) -> None:
    credential = Credential(clock)
    credential.gate = asyncio.Event()
    tokens = AzureEntraTokens(SCOPE, credential=credential, clock=clock)
    waiters = [asyncio.create_task(tokens.token(Deadline(None, clock))) for _ in range(5)]
    await asyncio.sleep(0)
    credential.gate.set()
    assert set(await asyncio.gather(*waiters)) == {"token-1"}
    assert len(credential.calls) == 1


@pytest.mark.parametrize(
    ("failure", "expected"),
    [
        (ClientAuthenticationError("no"), ProviderAuthError),
        (ServiceRequestError("down"), ProviderUnavailableError),
    ],
)
async def test_failures_are_classified(
    clock: FakeClock, failure: Exception, expected: type[Exception]
) -> None:
    credential = Credential(clock)
    credential.fail = failure
    tokens = AzureEntraTokens(SCOPE, credential=credential, clock=clock)
    with pytest.raises(expected):
        await tokens.token(Deadline(None, clock))


async def test_an_expired_deadline_does_not_wait(clock: FakeClock) -> None:
    credential = Credential(clock)
    credential.gate = asyncio.Event()  # never set: the identity provider hangs
    tokens = AzureEntraTokens(SCOPE, credential=credential, clock=clock)
    with pytest.raises(DeadlineExceededError):
        await tokens.token(Deadline(clock.monotonic(), clock))
    credential.gate.set()
