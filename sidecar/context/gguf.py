"""A local model's own tokenizer, read from its GGUF file: exact text counts for a model served by
llama.cpp (or any server of a GGUF model) without asking the server.

A GGUF file starts with its metadata (key, type, value), which holds the tokenizer: its kind
(`tokenizer.ggml.model`), the pre-tokenizer (`tokenizer.ggml.pre`) and the vocabulary
(`tokenizer.ggml.tokens`, id order) and its token types. Only what a byte-level BPE tokenizer of the
GPT-2 family needs is read, and only the metadata (the tensors after it are never touched). The
vocabulary becomes a tiktoken encoding: each token's bytes (GPT-2's printable stand-ins for bytes
mapped back) ranked by id, which for a BPE vocabulary built merge by merge is the merge order,
with the pre-tokenizer's pattern. Supported pre-tokenizers: `gpt2`/`default` (GPT-2's pattern) and
`smollm` (the same, with each digit a token of its own); anything else is refused, and the
deployment counts with the estimate (a warning says why). Checked against llama-server's own
/tokenize in tests/e2e/test_template_counts.py.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from sidecar.context.encodings import EncodingFileError

if TYPE_CHECKING:
    import tiktoken

MAGIC = b"GGUF"
_SCALARS = {
    0: "<B",
    1: "<b",
    2: "<H",
    3: "<h",
    4: "<I",
    5: "<i",
    6: "<f",
    7: "<?",
    10: "<Q",
    11: "<q",
    12: "<d",
}
STRING, ARRAY = 8, 9
GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
PATTERNS = {
    "gpt2": GPT2_PATTERN,
    "default": GPT2_PATTERN,
    # llama.cpp splits the digits out first and applies GPT-2's pattern to the text between, where
    # whitespace before a digit ends its piece: hence the whole run of it before a digit
    "smollm": r"""\p{N}|'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?[^\s\p{L}\p{N}]+|\s+(?=\p{N})|\s+(?!\S)|\s+""",
}
NORMAL, CONTROL = 1, 3  # token types: control tokens are the chat template's special tokens
WANTED = ("tokenizer.ggml.model", "tokenizer.ggml.pre", "tokenizer.ggml.tokens", "tokenizer.ggml.token_type")


def _read(f: BinaryIO, fmt: str) -> Any:
    size = struct.calcsize(fmt)
    data = f.read(size)
    if len(data) != size:
        raise EncodingFileError("the GGUF file ends inside its metadata")
    return struct.unpack(fmt, data)[0]


def _string(f: BinaryIO) -> str:
    n = _read(f, "<Q")
    return f.read(n).decode("utf-8", errors="surrogateescape")


def _value(f: BinaryIO, kind: int, keep: bool) -> Any:
    if kind == STRING:
        return _string(f)
    if kind == ARRAY:
        inner, n = _read(f, "<I"), _read(f, "<Q")
        if not keep and inner in _SCALARS:  # skipped without reading each item
            f.seek(n * struct.calcsize(_SCALARS[inner]), 1)
            return None
        items = [_value(f, inner, keep) for _ in range(n)]
        return items if keep else None
    if kind not in _SCALARS:
        raise EncodingFileError(f"unknown GGUF value type {kind}")
    return _read(f, _SCALARS[kind])


def read_tokenizer(path: Path) -> dict[str, Any]:
    """The tokenizer's metadata of a GGUF file (version 2 or 3)."""
    try:
        with path.open("rb") as f:
            if f.read(4) != MAGIC or _read(f, "<I") not in (2, 3):
                raise EncodingFileError(f"{path} is not a GGUF file of version 2 or 3")
            _read(f, "<Q")  # tensor count
            out: dict[str, Any] = {}
            for _ in range(_read(f, "<Q")):
                key, kind = _string(f), _read(f, "<I")
                value = _value(f, kind, keep=key in WANTED)
                if key in WANTED:
                    out[key] = value
            return out
    except OSError as exc:
        raise EncodingFileError(f"cannot read {path}: {exc.strerror}") from exc


def _byte_decoder() -> dict[str, int]:
    """GPT-2's map from the printable characters its vocabulary uses back to bytes."""
    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("¡"), ord("¬") + 1),
        *range(ord("®"), ord("ÿ") + 1),
    ]
    chars, n = list(printable), 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(printable, chars, strict=True)}


def gguf_encoding(path: Path) -> tiktoken.Encoding:
    """The GGUF model's tokenizer as a tiktoken encoding (byte-level BPE of the GPT-2 family only)."""
    import tiktoken

    meta = read_tokenizer(path)
    model, pre = meta.get("tokenizer.ggml.model"), meta.get("tokenizer.ggml.pre", "default")
    if model != "gpt2" or pre not in PATTERNS:
        raise EncodingFileError(f"{path}: tokenizer {model}/{pre} is not a supported byte-level BPE")
    tokens, types = meta["tokenizer.ggml.tokens"], meta["tokenizer.ggml.token_type"]
    decode = _byte_decoder()
    ranks: dict[bytes, int] = {}
    special: dict[str, int] = {}
    for i, (token, kind) in enumerate(zip(tokens, types, strict=True)):
        if kind == CONTROL:
            special[token] = i
        elif kind == NORMAL and all(c in decode for c in token):
            ranks.setdefault(bytes(decode[c] for c in token), i)
    # bytes the vocabulary never needed (invalid in UTF-8, or rare control characters) count one
    # token each, ranked after every real token so they never take part in a merge
    for b in range(256):
        ranks.setdefault(bytes([b]), len(tokens) + b)
    return tiktoken.Encoding(path.stem, pat_str=PATTERNS[pre], mergeable_ranks=ranks, special_tokens=special)
