"""Masking a credential that an upstream quotes in part.

Upstreams quote a refused key masked in its middle ("Incorrect API key provided: sk-proj-abcd****wxyz"):
neither the whole key nor a key-shaped pattern is in that text, yet its first characters are. Every run
of at least `MIN_FRAGMENT_CHARS` characters of the text that is also a run of a credential is masked.
A credential's last four characters are shown to its owner anyway (ListKeys), so shorter runs are left.
"""

from __future__ import annotations

from collections.abc import Sequence

MIN_FRAGMENT_CHARS = 8
MASK = "[redacted]"


def mask_fragments(text: str, secrets: Sequence[str]) -> str:
    """`text` with every run of MIN_FRAGMENT_CHARS or more characters that a secret also holds masked."""
    n = MIN_FRAGMENT_CHARS
    words = [word for secret in secrets for word in secret.split()]  # "Bearer KEY": the key alone
    pieces = {w[i : i + n] for w in words for i in range(len(w) - n + 1)}
    if not pieces:
        return text
    spans: list[list[int]] = []  # [start, end) of the masked runs, overlapping windows merged
    for i in range(len(text) - n + 1):
        if text[i : i + n] in pieces:
            if spans and i <= spans[-1][1]:
                spans[-1][1] = i + n
            else:
                spans.append([i, i + n])
    if not spans:
        return text
    out, last = [], 0
    for start, end in spans:
        out += [text[last:start], MASK]
        last = end
    out.append(text[last:])
    return "".join(out)
