"""The rotation lock and cursor on a real Redis: one holder, renewal by the holder only, cursor kept."""

from __future__ import annotations

import pytest

from sidecar.keys.rotation import RedisRotationLock
from sidecar.stores.redis import RedisEndpoint, connect

pytestmark = pytest.mark.integration


async def test_one_holder_at_a_time_and_only_the_holder_moves_the_cursor(redis_url: str) -> None:
    client = connect(RedisEndpoint(url=redis_url), decode_responses=True)
    lock = RedisRotationLock(client, prefix=f"test:rot:{id(redis_url)}")
    try:
        assert await lock.acquire("a", 60) and not await lock.acquire("b", 60)
        assert await lock.renew("a", 60) and not await lock.renew("b", 60)
        await lock.save_cursor("b", "key_x")  # not the holder: ignored
        assert await lock.cursor() is None
        await lock.save_cursor("a", "key_y")
        assert await lock.cursor() == "key_y"
        await lock.release("b")  # not the holder: still held
        assert not await lock.acquire("b", 60)
        await lock.release("a")
        assert await lock.acquire("b", 60) and await lock.cursor() == "key_y"  # b resumes after key_y
        await lock.save_cursor("b", None)
        assert await lock.cursor() is None
        await lock.release("b")
    finally:
        await lock.aclose()
