"""The command line reference, rendered from the `sidecar` argument parser (never hand-copied)."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

from sidecar.cli import _parser

INTRO = """# Command line reference

Generated from the `sidecar` command's argument parser each time the site is built: every command
and option `sidecar --help` knows, as it prints them.
"""


def commands(parser: argparse.ArgumentParser, name: str) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    """The command and its subcommands, depth first, in the order the parser lists them."""
    yield name, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub, subparser in action.choices.items():
                yield from commands(subparser, f"{name} {sub}")


def render() -> str:
    out = [INTRO]
    for name, parser in commands(_parser(), "sidecar"):
        parser.prog = name
        out += [f"## `{name}`", "", "```text", parser.format_help().rstrip(), "```", ""]
    return "\n".join(out)
