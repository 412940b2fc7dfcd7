"""tiktoken encodings from the local rank files: exact counts, the published hashes, bad files."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
import tiktoken
from tiktoken_ext import openai_public

from scripts.fetch_encodings import rebuild
from sidecar.context.encodings import SPECS, EncodingFileError, load_encoding, parse_ranks, read_rank_file

# Reference token ids, as tiktoken's README and OpenAI's tokenizer page give them.
KNOWN = [
    ("cl100k_base", "hello world", [15339, 1917]),
    ("cl100k_base", "tiktoken is great!", [83, 1609, 5963, 374, 2294, 0]),
    ("o200k_base", "hello world", [24912, 2375]),
    ("o200k_base", "tiktoken is great!", [83, 8251, 2488, 382, 2212, 0]),
]
COUNTS = [
    ("cl100k_base", "Ünïcödé 日本語のテキスト", 15),
    ("o200k_base", "Ünïcödé 日本語のテキスト", 11),
    ("cl100k_base", "<|endoftext|> x", 8),  # special tokens in user text are plain text
    ("o200k_base", "", 0),
]


@pytest.mark.parametrize(("name", "text", "ids"), KNOWN)
def test_known_strings_encode_exactly(
    encodings: dict[str, tiktoken.Encoding], name: str, text: str, ids: list[int]
) -> None:
    assert encodings[name].encode_ordinary(text) == ids
    assert encodings[name].decode(ids) == text


@pytest.mark.parametrize(("name", "text", "count"), COUNTS)
def test_known_counts(encodings: dict[str, tiktoken.Encoding], name: str, text: str, count: int) -> None:
    assert len(encodings[name].encode_ordinary(text)) == count


@pytest.mark.parametrize("name", sorted(SPECS))
def test_pattern_and_special_tokens_are_tiktokens_own(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Our definitions equal tiktoken_ext.openai_public's (its rank loader stubbed: no download)."""

    def no_download(url: str, expected_hash: str | None = None) -> dict[bytes, int]:
        assert expected_hash == SPECS[name].sha256
        return {}

    monkeypatch.setattr(openai_public, "load_tiktoken_bpe", no_download)
    theirs: dict[str, Any] = getattr(openai_public, name)()
    assert theirs["pat_str"] == SPECS[name].pat_str
    assert theirs["special_tokens"] == dict(SPECS[name].special_tokens)


def test_a_file_with_another_hash_is_refused(tmp_path: Path) -> None:
    (tmp_path / "cl100k_base.tiktoken").write_bytes(b"aGVsbG8= 0\n")
    with pytest.raises(EncodingFileError, match="SHA-256"):
        load_encoding(tmp_path, "cl100k_base")


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(EncodingFileError, match=r"o200k_base\.tiktoken"):
        read_rank_file(tmp_path, SPECS["o200k_base"])


def test_malformed_lines_are_reported_with_their_number() -> None:
    assert parse_ranks(b"aGk= 0\n\nIQ== 1\n", "f") == {b"hi": 0, b"!": 1}
    with pytest.raises(EncodingFileError, match="f:2"):
        parse_ranks(b"aGk= 0\nnot base64!! x\n", "f")


def test_rebuild_from_the_npm_ranks_module() -> None:
    """js-tiktoken's compressed lines: `<x> <first rank> <tokens...>`, consecutive ranks."""
    module = "export default " + json.dumps({"bpe_ranks": "! 0 IQ== Ig==\n! 5 aGk=\n", "pat_str": ""}) + ";"
    out = rebuild(module)
    assert out == b"IQ== 0\nIg== 1\naGk= 5\n"
    with pytest.raises(ValueError):
        rebuild("module.exports = {}")


def test_the_files_in_place_have_the_published_hashes(encodings_dir: Path) -> None:
    for spec in SPECS.values():
        assert hashlib.sha256((encodings_dir / spec.filename).read_bytes()).hexdigest() == spec.sha256
