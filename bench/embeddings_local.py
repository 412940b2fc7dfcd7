"""The local embedding model's costs: import and load time, resident memory, latency per text.

Run: .venv/bin/python bench/embeddings_local.py [--repeat N]. Prints one JSON line. Numbers depend
on how busy the machine is: run it on a quiet one (it uses one core: one BLAS thread).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from typing import Any

TEXTS = [
    "How do I reset my password?",
    "What is the refund policy for annual plans bought through a reseller in the European Union?",
    "Summarize the incident report from last night's outage of the payment gateway in two sentences "
    "for the executive team, leaving out internal host names.",
]


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


async def latency(embedder: Any, batch: int, repeat: int) -> float:
    from sidecar.core.clock import Deadline, SystemClock

    texts = (TEXTS * batch)[:batch]
    deadline = Deadline(None, SystemClock())
    await embedder.embed(texts, deadline=deadline)
    started = time.perf_counter()
    for _ in range(repeat):
        await embedder.embed(texts, deadline=deadline)
    return (time.perf_counter() - started) / repeat / batch * 1000


async def main(repeat: int) -> None:
    base = rss_mb()
    started = time.perf_counter()
    from sidecar.embeddings.local import LocalEmbedder

    imported = time.perf_counter()
    embedder = LocalEmbedder.load()
    loaded = time.perf_counter()
    after_load = rss_mb()
    result = {
        "import_seconds": round(imported - started, 3),
        "load_seconds": round(loaded - imported, 3),
        "rss_mb_before": round(base),
        "rss_mb_added": round(after_load - base),
        "ms_per_text": {str(b): round(await latency(embedder, b, repeat), 1) for b in (1, 8, 32)},
        "rss_mb_after_use": round(rss_mb()),
        "load_average": os.getloadavg()[0],
    }
    await embedder.aclose()
    print(json.dumps(result))  # noqa: T201


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    asyncio.run(main(parser.parse_args().repeat))
