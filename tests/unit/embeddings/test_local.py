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


class _Recording:
    """The model's tokenizer, recording the length of every text it is given."""

    def __init__(self, tokenizer: Any) -> None:
        self._tokenizer, self.lengths = tokenizer, []  # type: list[int]

    def encode(self, text: str) -> Any:
        self.lengths.append(len(text))
        return self._tokenizer.encode(text)

    def encode_batch(self, texts: list[str]) -> Any:
        self.lengths.extend(len(t) for t in texts)
        return self._tokenizer.encode_batch(texts)


WORDS = "The quick brown fox jumps over the lazy dog near the riverbank today "
COSTLY = [  # measured whole: 0.37 s, 2.4 s, 1.3 s (ms for a short text)
    WORDS * 4000,  # 276,000 characters of ordinary words
    ("y" * 99 + " ") * 2000,  # words just under WordPiece's 100 characters, many pieces each
    "国際的な料理の技術について" * 15_000,  # CJK: each character a word
    "nai\u0308ve cafe\u0301 " * 20_000,  # combining marks
]
CHEAP = [  # nothing a cut can end on early, and cheap to read whole (0.1 to 0.2 s)
    "x" * 200_000,  # one word far past 100 characters: one [UNK]
    " " * 150_000 + WORDS * 10,  # a run of spaces before the words
]
EDGES = [WORDS * 60 + "z" * 5000 + WORDS, WORDS * 58 + "w" * 99 + " " + WORDS * 3, "short text"]


async def test_a_long_text_is_not_tokenized_past_what_the_model_reads(embedder: LocalEmbedder) -> None:
    """The model reads the first 256 tokens, but the tokenizer read every text whole before cutting
    it: 0.5 s of the one embedding thread for a 200,000-character message (25 ms for a short one),
    and the answer policy embeds each message to an agent, which costs its user nothing."""
    recording = _Recording(embedder._tokenizer)
    cut = LocalEmbedder(embedder._encoder, recording, max_tokens=embedder._max_tokens)
    got = await cut.embed(COSTLY, deadline=NO_DEADLINE)
    assert max(recording.lengths) <= 16_384
    texts = COSTLY + CHEAP + EDGES  # every one cut where its tokens stay the whole text's
    got = await cut.embed(texts, deadline=NO_DEADLINE)
    whole = [embedder._tokenizer.encode(t).ids for t in texts]
    assert [cut._tokenizer.encode(cut._head(t)).ids for t in texts] == whole  # the same tokens
    reference = await embedder.embed(texts[-1:], deadline=NO_DEADLINE)
    assert np.allclose(got.vectors[-1], reference.vectors[0], atol=1e-6)
    assert got.usage.prompt_tokens == sum(len(ids) for ids in whole)
