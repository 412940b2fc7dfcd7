"""tiktoken encodings from local `.tiktoken` rank files, checked against tiktoken's published hashes.

tiktoken normally downloads its rank files at first use and caches them in a temporary directory;
this sidecar must work offline, so `make encodings` (scripts/fetch_encodings.py) writes the files
once, and this module builds each `tiktoken.Encoding` from a file in a configured directory, with
the same pattern and special tokens tiktoken uses (tiktoken_ext/openai_public.py). A file whose
SHA-256 differs from tiktoken's expected hash is refused: a wrong file would count wrongly.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import tiktoken

ENDOFTEXT, ENDOFPROMPT = "<|endoftext|>", "<|endofprompt|>"
FIM_PREFIX, FIM_MIDDLE, FIM_SUFFIX = "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>"


@dataclass(frozen=True, slots=True)
class EncodingSpec:
    """What defines an encoding besides its ranks, and the hash its rank file must have."""

    name: str
    sha256: str
    pat_str: str
    special_tokens: tuple[tuple[str, int], ...]

    @property
    def filename(self) -> str:
        return f"{self.name}.tiktoken"


CL100K_BASE = EncodingSpec(
    name="cl100k_base",
    sha256="223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
    pat_str=(
        r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+"""
        r"""|\s++$|\s*[\r\n]|\s+(?!\S)|\s"""
    ),
    special_tokens=(
        (ENDOFTEXT, 100257),
        (FIM_PREFIX, 100258),
        (FIM_MIDDLE, 100259),
        (FIM_SUFFIX, 100260),
        (ENDOFPROMPT, 100276),
    ),
)
O200K_BASE = EncodingSpec(
    name="o200k_base",
    sha256="446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
    pat_str="|".join(
        [
            r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
            r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
            r"""\p{N}{1,3}""",
            r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
            r"""\s*[\r\n]+""",
            r"""\s+(?!\S)""",
            r"""\s+""",
        ]
    ),
    special_tokens=((ENDOFTEXT, 199999), (ENDOFPROMPT, 200018)),
)
SPECS: dict[str, EncodingSpec] = {s.name: s for s in (CL100K_BASE, O200K_BASE)}


class EncodingFileError(Exception):
    """A rank file is missing, unreadable, not the published one, or malformed."""


def parse_ranks(data: bytes, source: str) -> dict[bytes, int]:
    """`<base64 token> <rank>` per line, tiktoken's .tiktoken format."""
    ranks: dict[bytes, int] = {}
    for number, line in enumerate(data.splitlines(), 1):
        if not line:
            continue
        try:
            token, rank = line.split()
            ranks[base64.b64decode(token, validate=True)] = int(rank)
        except (ValueError, binascii.Error) as exc:
            raise EncodingFileError(f"{source}:{number}: not `<base64> <rank>`") from exc
    return ranks


def read_rank_file(directory: Path, spec: EncodingSpec) -> dict[bytes, int]:
    path = directory / spec.filename
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise EncodingFileError(f"cannot read {path}: {exc.strerror}") from exc
    digest = hashlib.sha256(data).hexdigest()
    if digest != spec.sha256:
        raise EncodingFileError(f"{path} has SHA-256 {digest}, tiktoken publishes {spec.sha256}")
    return parse_ranks(data, str(path))


def load_encoding(directory: Path, name: str) -> tiktoken.Encoding:
    """The named encoding built from its rank file in `directory` (no network, no temp-dir cache)."""
    import tiktoken

    spec = SPECS[name]
    encoding = tiktoken.Encoding(
        spec.name,
        pat_str=spec.pat_str,
        mergeable_ranks=read_rank_file(directory, spec),
        special_tokens=dict(spec.special_tokens),
    )
    # The Rust core keeps its own copy of the ranks; the Python dict (about 26 MB for o200k_base)
    # is kept by tiktoken only to pickle an Encoding, which the sidecar never does.
    encoding._mergeable_ranks = {}
    return encoding
