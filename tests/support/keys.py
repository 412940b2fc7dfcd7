"""User keys in integration tests: a local KEK on disk, an in-process KeyService, and secret look-alikes.

`local_keys(tmp)` is a `settings.keys` section for the local backend (KEK and SQLite store in `tmp`);
`key_service(kek_file)` builds a KeyService on the same KEK as the server, the way `app.build_keys`
does (the store is in memory: only `encrypt` is meant to be used); `forms(secret)` lists the byte
strings that would betray a secret: itself, its tail, and its base64 at every alignment.
"""

from __future__ import annotations

import base64
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from sidecar.core.clock import SystemClock
from sidecar.keys.cache import KeyCache, KeyCachePolicy
from sidecar.keys.local import LocalKekBackend
from sidecar.keys.service import KeyService
from sidecar.keys.store import MEMORY, SqliteKeyStore

TAIL_CHARS = 12


def local_keys(tmp: Path, **extra: Any) -> dict[str, Any]:
    """`settings.keys` for the local backend; the KEK file is written on first use."""
    kek = tmp / "kek.b64"
    if not kek.exists():
        LocalKekBackend.generate_file(kek)
    return {"backend": "local", "local": {"kek_file": str(kek)}, "store_path": str(tmp / "keys.db"), **extra}


@contextlib.asynccontextmanager
async def key_service(kek_file: Path) -> AsyncIterator[KeyService]:
    """A KeyService on `kek_file`, as the server builds its own, closed on exit."""
    clock = SystemClock()
    service = KeyService(
        LocalKekBackend.from_file(kek_file),
        SqliteKeyStore(MEMORY, clock),
        KeyCache(KeyCachePolicy(), clock),
        clock,
    )
    try:
        yield service
    finally:
        await service.aclose()


def forms(secret: str) -> dict[str, bytes]:
    """What to search for: the secret, its last 12 characters, and its base64 (standard and URL-safe)
    at each of the three alignments it can have inside a longer encoded string."""
    raw = secret.encode()
    found = {"plain": raw, f"last {TAIL_CHARS}": raw[-TAIL_CHARS:]}
    for shift in range(3):
        encoded = base64.b64encode(b"\0" * shift + raw)
        # drop the characters that also encode the padding bytes, and the last, partial group
        core = encoded[(4 * shift + 2) // 3 : 4 * ((shift + len(raw)) // 3)]
        found[f"base64+{shift}"] = core
        found[f"base64url+{shift}"] = core.replace(b"+", b"-").replace(b"/", b"_")
    return found
