"""The local model, loaded from the installed package with the network cut off."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from sidecar.core.clock import Deadline
from sidecar.core.errors import DeadlineExceededError
from sidecar.embeddings.local import LocalEmbedder
from tests.conftest import FakeClock

NO_DEADLINE = Deadline(None, FakeClock())


@pytest.fixture(scope="module")
def embedder() -> Iterator[LocalEmbedder]:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the local model tried to reach the network")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(socket.socket, "connect", refuse)
        patch.setattr(socket, "create_connection", refuse)
        model = LocalEmbedder.load()
    yield model
    asyncio.run(model.aclose())


async def test_similarities_match_the_reference_model(embedder: LocalEmbedder) -> None:
    """The values sentence-transformers publishes for all-MiniLM-L6-v2 on these sentences."""
    texts = [
        "That is a happy person",
        "That is a happy dog",
        "That is a very happy person",
        "Today is a sunny day",
    ]
    result = await embedder.embed(texts, deadline=NO_DEADLINE)
    v = np.array(result.vectors)
    assert v[0] @ v[1:].T == pytest.approx([0.6946, 0.9429, 0.2569], abs=1e-3)
    assert result.dimensions == 384 and result.normalized
    assert np.linalg.norm(v, axis=1) == pytest.approx([1.0] * 4, abs=1e-5)
    assert result.usage.prompt_tokens == sum(embedder.count_tokens(texts)) == 29


async def test_batching_keeps_input_order(embedder: LocalEmbedder) -> None:
    texts = [
        f"{'very ' * (i % 7)}long question number {i}" for i in range(40)
    ]  # sorted into batches by length
    together = np.array((await embedder.embed(texts, deadline=NO_DEADLINE)).vectors)
    alone = np.array([(await embedder.embed([t], deadline=NO_DEADLINE)).vectors[0] for t in texts[:5]])
    assert together[:5] == pytest.approx(alone, abs=1e-5)


async def test_long_texts_are_truncated_to_the_models_window(embedder: LocalEmbedder) -> None:
    result = await embedder.embed(["word " * 5000], deadline=NO_DEADLINE)
    assert result.usage.prompt_tokens == 256


async def test_empty_batch(embedder: LocalEmbedder) -> None:
    result = await embedder.embed([], deadline=NO_DEADLINE)
    assert (result.vectors, result.dimensions, result.usage.prompt_tokens) == ((), 384, 0)


async def test_a_passed_deadline_stops_the_call(embedder: LocalEmbedder, clock: FakeClock) -> None:
    with pytest.raises(DeadlineExceededError):
        await embedder.embed(["late"] * 64, deadline=Deadline(clock.monotonic(), clock))


async def test_a_caller_that_gave_up_leaves_no_unretrieved_exception(
    embedder: LocalEmbedder, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """The worker stops with _Stopped once its caller has gone: that ending is collected, not left
    for asyncio to log as 'Future exception was never retrieved' (one ERROR per abandoned call)."""
    import gc

    with caplog.at_level(logging.DEBUG, logger="asyncio"):
        for _ in range(3):
            with pytest.raises(DeadlineExceededError):
                await embedder.embed(["late"] * 64, deadline=Deadline(clock.monotonic(), clock))
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(embedder._executor, lambda: None)  # the abandoned work is done
        await asyncio.sleep(0)  # its done callbacks ran
        gc.collect()
    assert not [r for r in caplog.records if "never retrieved" in r.getMessage()], caplog.text
