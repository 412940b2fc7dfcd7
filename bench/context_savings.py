"""Token savings of context management on a long conversation, measured with the sidecar's counters.

A deterministic conversation (an application system prompt, a persona prompt, then TURNS rounds of
a user question and a long assistant answer, written from the docstrings of the Python standard
library so the text is real English prose) is counted before and after the sidecar's trimming,
for three kinds of deployment: an OpenAI o200k_base model (gpt-4o, 128K window), a cl100k_base
one (gpt-4, 8K window) and an Anthropic one (its documented upper bound, 200K window), each with
max_tokens 1024 and the default policy (keep at most 10 recent messages). "with summary" adds a
summary of the dropped messages at its full 256-token allowance (an upper bound: a real summary
is what the cheap route writes). The CPU time is the context layer's work for one call on this
machine (the trim plus counting the whole prompt to report what was removed), the first time and
again (as on the next turn, when the long messages' counts are remembered by digest).

Usage: .venv/bin/python bench/context_savings.py [--turns 100] [--encodings .cache/tiktoken]
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import sys
import time
from pathlib import Path

from sidecar.config.schema import DeploymentConfig
from sidecar.context.summary import summary_message
from sidecar.context.tokenizer import Tokenizers
from sidecar.context.trim import Budget, fit
from sidecar.core.types import Message, Role

MODULES = [
    "collections",
    "asyncio",
    "json",
    "pathlib",
    "functools",
    "itertools",
    "statistics",
    "textwrap",
    "argparse",
    "logging",
    "decimal",
    "fractions",
    "datetime",
    "re",
    "inspect",
    "typing",
    "string",
]
DEPLOYMENTS = {
    "gpt-4o (o200k_base)": {"provider": "openai", "model": "gpt-4o", "context_window": 128_000},
    "gpt-4 (cl100k_base)": {"provider": "openai", "model": "gpt-4", "context_window": 8_192},
    "claude (bound)": {"provider": "anthropic", "model": "claude-sonnet-4-5", "context_window": 200_000},
}
MAX_TOKENS, SUMMARY_TOKENS, RECENT = 1024, 256, 10


def paragraphs() -> list[str]:
    out: list[str] = []
    for name in MODULES:
        module = importlib.import_module(name)
        for attr in sorted(dir(module)):
            doc = inspect.getdoc(getattr(module, attr, None))
            if doc and len(doc) > 200:
                out.extend(p.replace("\n", " ") for p in doc.split("\n\n") if len(p) > 120)
    return out


def conversation(turns: int) -> list[Message]:
    texts = paragraphs()
    system = "You are the assistant of a dashboard product. Answer precisely. " + texts[0]
    persona = "Persona: Dashboard Architect. " + " ".join(texts[1:6])
    messages = [Message(Role.SYSTEM, system), Message(Role.SYSTEM, persona)]
    for i in range(turns):
        question = texts[(7 * i + 10) % len(texts)]
        answer = " ".join(texts[(7 * i + 11 + k) % len(texts)] for k in range(4))
        messages += [Message(Role.USER, f"Question {i}: {question[:300]}?"), Message(Role.ASSISTANT, answer)]
    messages.append(Message(Role.USER, "Given all that, which chart should the revenue page use?"))
    return messages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=100)
    parser.add_argument("--encodings", type=Path, default=Path(".cache/tiktoken"))
    args = parser.parse_args()
    messages = conversation(args.turns)
    configs = {name: DeploymentConfig.model_validate(raw) for name, raw in DEPLOYMENTS.items()}
    tokenizers = Tokenizers.build(configs, args.encodings)
    w = sys.stdout.write
    w(f"conversation: {len(messages)} messages ({args.turns} turns), 2 system prompts\n\n")
    w("| deployment | window | messages sent | tokens before | tokens after | after, with summary ")
    w("| saved | CPU ms first / next turn |\n")
    w("|---|---|---|---|---|---|---|---|\n")
    for name, cfg in configs.items():
        counter = tokenizers.for_deployment(name)
        budget = Budget(name, counter, cfg.context_window, MAX_TOKENS)
        started = time.process_time()
        result = fit(messages, [budget], RECENT)
        before = counter.count_prompt(messages)  # the context layer counts both, to report the removal
        first = (time.process_time() - started) * 1000
        started = time.process_time()
        fit(messages, [budget], RECENT)
        counter.count_prompt(messages)
        again = (time.process_time() - started) * 1000  # the next turn: counts of long texts are known
        sent = [*result.pinned, *result.kept]
        after = counter.count_prompt(sent)
        summary = summary_message(" ".join(["word"] * SUMMARY_TOKENS), len(result.dropped))
        with_summary = after + max(counter.count_message(summary), SUMMARY_TOKENS + counter.per_message)
        saved = 100 * (1 - after / before)
        w(f"| {name} | {cfg.context_window:,} | {len(sent)} of {len(messages)} | {before:,} | {after:,} "
          f"| {with_summary:,} | {saved:.1f} % | {first:.1f} / {again:.1f} |\n")  # fmt: skip


if __name__ == "__main__":
    main()
