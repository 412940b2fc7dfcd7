"""A GGUF model's own tokenizer: the metadata reader and the encoding built from it, on a small
GGUF file written here (the real model's counts are checked in tests/e2e/test_template_counts.py)."""

from __future__ import annotations

import logging
import struct
from pathlib import Path

import pytest

from sidecar.config.schema import DeploymentConfig
from sidecar.context.encodings import EncodingFileError
from sidecar.context.gguf import CONTROL, NORMAL, _byte_decoder, gguf_encoding, read_tokenizer
from sidecar.context.tokenizer import TokenCounter, Tokenizers
from sidecar.core.types import Message, Role


def _str(s: str) -> bytes:
    data = s.encode()
    return struct.pack("<Q", len(data)) + data


def write_gguf(path: Path, tokens: list[str], types: list[int], pre: str = "smollm") -> None:
    kv = [
        _str("general.architecture") + struct.pack("<I", 8) + _str("llama"),
        _str("general.file_type") + struct.pack("<I", 4) + struct.pack("<I", 3),  # a scalar, skipped
        _str("tokenizer.ggml.model") + struct.pack("<I", 8) + _str("gpt2"),
        _str("tokenizer.ggml.pre") + struct.pack("<I", 8) + _str(pre),
        _str("tokenizer.ggml.tokens") + struct.pack("<IIQ", 9, 8, len(tokens)) + b"".join(map(_str, tokens)),
        _str("tokenizer.ggml.token_type")
        + struct.pack("<IIQ", 9, 5, len(types))
        + struct.pack(f"<{len(types)}i", *types),
        _str("tokenizer.ggml.scores")
        + struct.pack("<IIQ", 9, 6, 2)
        + struct.pack("<2f", 0.5, 0.25),  # skipped
    ]
    path.write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 0, len(kv)) + b"".join(kv) + b"\x00" * 64)


def vocabulary() -> tuple[list[str], list[int]]:
    to_char = {b: c for c, b in _byte_decoder().items()}
    tokens = ["<|im_start|>", *(to_char[b] for b in range(256)), "he", "Ġt", "Ġthe"]
    return tokens, [CONTROL, *[NORMAL] * (len(tokens) - 1)]


def test_reads_the_tokenizer_and_counts_with_it(tmp_path: Path) -> None:
    tokens, types = vocabulary()
    write_gguf(tmp_path / "m.gguf", tokens, types)
    meta = read_tokenizer(tmp_path / "m.gguf")
    assert meta["tokenizer.ggml.pre"] == "smollm" and len(meta["tokenizer.ggml.tokens"]) == 260
    enc = gguf_encoding(tmp_path / "m.gguf")
    assert enc.encode_ordinary(" the") == [259]  # "Ġt" + "he" -> "Ġthe"
    assert len(enc.encode_ordinary("the")) == 2  # "t" + "he"
    assert len(enc.encode_ordinary(" 12")) == 3  # each digit a token of its own; the space alone
    assert enc.encode("<|im_start|>", allowed_special="all") == [0]


def test_an_unsupported_tokenizer_or_a_broken_file_is_refused(tmp_path: Path) -> None:
    tokens, types = vocabulary()
    write_gguf(tmp_path / "llama3.gguf", tokens, types, pre="llama-bpe")
    with pytest.raises(EncodingFileError, match="not a supported"):
        gguf_encoding(tmp_path / "llama3.gguf")
    (tmp_path / "short.gguf").write_bytes((tmp_path / "llama3.gguf").read_bytes()[:40])
    with pytest.raises(EncodingFileError, match="ends inside"):
        read_tokenizer(tmp_path / "short.gguf")
    (tmp_path / "other.bin").write_bytes(b"GGML" + b"\x00" * 20)
    with pytest.raises(EncodingFileError, match="not a GGUF"):
        read_tokenizer(tmp_path / "other.bin")
    with pytest.raises(EncodingFileError, match="cannot read"):
        read_tokenizer(tmp_path / "missing.gguf")


def test_a_deployment_counts_with_its_gguf_tokenizer_or_says_why_not(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    tokens, types = vocabulary()
    write_gguf(tmp_path / "m.gguf", tokens, types)
    template = {"per_message": 5, "priming": 4, "role_tokens": {"assistant": 1}}

    def counter(gguf: Path) -> TokenCounter:
        raw = {"provider": "openai", "model": "m", "chat_template": {**template, "tokenizer_gguf": str(gguf)}}
        return Tokenizers.build({"d": DeploymentConfig.model_validate(raw)}, None).for_deployment("d")

    own = counter(tmp_path / "m.gguf")
    assert own.count_text(" the") == 1 and own.name.startswith("m+template(5,4,0,assistant+1)")
    assert own.count_prompt([Message(Role.USER, " the"), Message(Role.ASSISTANT, " the")]) == 4 + (1 + 5) + (
        1 + 6
    )
    with caplog.at_level(logging.WARNING, logger="sidecar.context"):
        fallback = counter(tmp_path / "missing.gguf")
    assert fallback.name.startswith("estimate+template") and "token counts fall back" in caplog.text
