"""The rotation lock and cursor on a real Redis: one holder, renewal by the holder only, cursor kept;
Redis unreachable is classified as for the key store."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from sidecar.core.errors import KeyBackendUnavailableError
from sidecar.keys.local import LocalKekBackend
from sidecar.keys.rotation import RedisRotationLock
from sidecar.stores.redis import RedisEndpoint, RedisOps
from tests.conftest import echo_policy, free_port
from tests.integration.test_cli import SIDECAR

pytestmark = pytest.mark.integration


async def test_one_holder_at_a_time_and_only_the_holder_moves_the_cursor(redis_url: str) -> None:
    ops = RedisOps(RedisEndpoint(url=redis_url), decode_responses=True)
    lock = RedisRotationLock(ops, prefix=f"test:rot:{id(redis_url)}")
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


async def test_an_unreachable_redis_is_key_backend_unavailable_for_the_lock_too() -> None:
    """The lock ran on a raw client: Redis down made `sidecar keys rotate` die with a redis
    ConnectionError traceback, and the RotateKeys RPC an INTERNAL crash, where the key store's own
    calls report KEY_BACKEND_UNAVAILABLE."""
    ops = RedisOps(RedisEndpoint(url=f"redis://127.0.0.1:{free_port()}/0"), decode_responses=True)
    lock = RedisRotationLock(ops, prefix="test:rot:down")
    try:
        calls = (
            lambda: lock.acquire("a", 60),
            lambda: lock.renew("a", 60),
            lock.cursor,
            lambda: lock.save_cursor("a", "key_x"),
            lambda: lock.release("a"),
        )
        for call in calls:
            with pytest.raises(KeyBackendUnavailableError) as caught:
                await call()
            assert caught.value.metadata["storeError"] == "unavailable" and caught.value.retry_after == 1.0
    finally:
        await lock.aclose()


def test_keys_rotate_with_redis_unreachable_exits_1_with_the_reason(tmp_path: Path) -> None:
    kek = tmp_path / "kek"
    LocalKekBackend.generate_file(kek)
    keys = {
        "backend": "local",
        "local": {"kek_file": str(kek)},
        "store": "redis",
        "redis_url": f"redis://127.0.0.1:{free_port()}/0",
    }
    config = tmp_path / "sidecar.yaml"
    config.write_text(yaml.safe_dump({"settings": {"keys": keys}, "policy": echo_policy()}))
    result = subprocess.run(
        [*SIDECAR, "keys", "rotate", "--config", str(config)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr, result.stderr
    assert "error: KEY_BACKEND_UNAVAILABLE: the key store (Redis) failed (unavailable)" in result.stderr
