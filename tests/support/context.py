"""Fixtures for token counting and caching: the local tiktoken rank files, a memory byte store.

`encodings_dir` is the directory `make encodings` fills (.cache/tiktoken in the checkout). In CI a
missing file fails the test; on a developer's machine it skips with the command to run.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from sidecar.cache.store import AiocacheStore
from sidecar.context.encodings import SPECS, load_encoding
from tests.support.kms import component_missing

if TYPE_CHECKING:
    import tiktoken

ENCODINGS_DIR = Path(__file__).resolve().parents[2] / ".cache" / "tiktoken"


@pytest.fixture(scope="session")
def encodings_dir() -> Path:
    missing = [s.filename for s in SPECS.values() if not (ENCODINGS_DIR / s.filename).is_file()]
    if missing:
        component_missing(f"{', '.join(missing)} missing in {ENCODINGS_DIR}: run `make encodings`")
    return ENCODINGS_DIR


@pytest.fixture(scope="session")
def encodings(encodings_dir: Path) -> dict[str, tiktoken.Encoding]:
    """Both encodings, loaded once for the session (building o200k_base takes about half a second)."""
    return {name: load_encoding(encodings_dir, name) for name in SPECS}


@pytest.fixture
async def memory_store() -> AsyncIterator[AiocacheStore]:
    store = AiocacheStore.memory("test", timeout=1.0, max_entries=100, max_bytes=1 << 20)
    yield store
    await store.aclose()
