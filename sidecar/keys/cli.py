"""`sidecar keys encrypt|rotate|new-kek`: user-supplied provider keys from the command line. The key
machinery is imported only when one of them runs; no message here can contain a key."""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import uvloop

from sidecar.config.load import ConfigError, load_config, process_environ
from sidecar.keys.backend import USER_KEY_PROVIDERS, KeyBackendSetupError
from sidecar.telemetry.logging import setup_logging

if TYPE_CHECKING:
    from sidecar.config.schema import Config
    from sidecar.keys.backend import KeyContext


def register(sub: Any) -> None:
    """Add the `keys` command to the CLI's subparsers."""
    keys = sub.add_parser("keys", help="user-supplied provider keys")
    actions = keys.add_subparsers(required=True, metavar="ACTION")
    encrypt = actions.add_parser("encrypt", help="read a provider key on stdin and print its envelope blob")
    encrypt.add_argument("--config", type=Path, required=True, help="YAML file with settings.keys")
    encrypt.add_argument("--tenant", required=True, help="the owner's tenant id (bound into the envelope)")
    encrypt.add_argument("--user", required=True, help="the owner's user id (bound into the envelope)")
    encrypt.add_argument("--provider", required=True, choices=USER_KEY_PROVIDERS)
    encrypt.add_argument("--key-name", default="default", help="(default: default)")
    encrypt.set_defaults(handler=_encrypt_command)
    rotate = actions.add_parser(
        "rotate",
        help="rewrap every stored key to the backend's current key version: a one-off job, once per "
        "cluster (a lock in the key store), paced, resumable",
    )
    rotate.add_argument("--config", type=Path, required=True, help="YAML file with settings.keys")
    rotate.add_argument(
        "--per-second", type=float, default=None, help="backend calls a second (default: settings.keys)"
    )
    rotate.add_argument("--owner", default="", help="name held in the lock (default: host and pid)")
    rotate.set_defaults(handler=_rotate_command)
    new_kek = actions.add_parser("new-kek", help="write a new local key-encryption key (development only)")
    new_kek.add_argument("file", type=Path, help="where to write it (mode 0600; never overwritten)")
    new_kek.set_defaults(handler=_new_kek_command)


_MAX_KEY_INPUT = 8192  # a provider key is at most 4096 characters (RegisterKey's bound), a line end
_FLAGS = {"tenant_id": "--tenant", "user_id": "--user", "key_name": "--key-name", "api_key": "the key"}


def _encrypt_command(args: argparse.Namespace) -> int:
    """Exit 2 for bad input, 1 when the envelope cannot be made. The key never reaches any output."""
    from sidecar._gen.orchestrator.v1 import keys_pb2  # the key machinery loads only for `keys`
    from sidecar.api.keys import register_context
    from sidecar.core.errors import InvalidRequestError

    stdin = sys.stdin
    if stdin is not None and stdin.isatty():
        _err(
            "INVALID_REQUEST",
            "reading the key from standard input, which is a terminal: refusing, as a typed key would echo; "
            "pipe it in, e.g. `printenv OPENAI_API_KEY | sidecar keys encrypt ...`",
        )
        return 2
    raw = stdin.buffer.read(_MAX_KEY_INPUT + 1) if stdin is not None else b""  # bounded: not /dev/zero
    if len(raw) > _MAX_KEY_INPUT:
        _err("INVALID_REQUEST", f"the key on standard input is longer than {_MAX_KEY_INPUT} bytes")
        return 2
    raw = raw[:-2] if raw.endswith(b"\r\n") else raw[:-1] if raw.endswith(b"\n") else raw
    if not raw:
        _err("INVALID_REQUEST", "no key on standard input (pipe the provider key in)")
        return 2
    request = keys_pb2.RegisterKeyRequest(
        tenant_id=args.tenant,
        user_id=args.user,
        provider=args.provider,
        key_name=args.key_name,
        api_key=raw.decode("utf-8", errors="replace"),  # anything not printable ASCII is refused below
    )
    try:
        context, secret = register_context(request)  # the same checks as the RegisterKey RPC
    except InvalidRequestError as exc:
        problems = "; ".join(f"{_FLAGS.get(v.field, v.field)}: {v.description}" for v in exc.violations)
        _err(exc.reason, problems)
        return 2
    cfg = _load(args.config)
    if cfg is None:
        return 1
    setup_logging(cfg.settings.log_level)
    blob = uvloop.run(_encrypt(cfg, context, secret))
    if blob is None:
        return 1
    _out(blob + "\n")
    return 0


async def _encrypt(cfg: Config, context: KeyContext, secret: bytes) -> str | None:
    """The envelope blob, or None after reporting why not. No message here can contain the key."""
    from sidecar.core.clock import SystemClock
    from sidecar.core.errors import SidecarError
    from sidecar.keys.build import build_keys

    try:
        service = build_keys(cfg, SystemClock())
    except KeyBackendSetupError as exc:  # a KEK file or client library problem
        _err("KEY_BACKEND_UNAVAILABLE", f"cannot set up the {cfg.settings.keys.backend} key backend: {exc}")
        return None
    if service is None:
        _err("KEYS_DISABLED", "no key backend configured (settings.keys.backend)")
        return None
    try:
        return await service.encrypt(context, secret)
    except SidecarError as exc:
        _err(exc.reason, exc.message)
        return None
    finally:
        await service.aclose()


ROTATION_BUSY = 3  # exit code: another run holds the lock


def _rotate_command(args: argparse.Namespace) -> int:
    """Exit 0 when every record was rewrapped, 1 on failures, 3 while another run holds the lock."""
    cfg = _load(args.config)
    if cfg is None:
        return 1
    if args.per_second is not None:
        if not 0 < args.per_second <= 10_000:
            _err("INVALID_REQUEST", "--per-second: greater than 0, at most 10000")
            return 2
        keys = cfg.settings.keys.model_copy(update={"rotation_per_second": args.per_second})
        cfg = cfg.model_copy(update={"settings": cfg.settings.model_copy(update={"keys": keys})})
    setup_logging(cfg.settings.log_level)
    owner = args.owner or f"{socket.gethostname()}:{os.getpid()}"
    return uvloop.run(_rotate(cfg, owner))


async def _rotate(cfg: Config, owner: str) -> int:
    from sidecar.core.clock import SystemClock
    from sidecar.core.errors import SidecarError
    from sidecar.keys.build import build_keys

    try:
        service = build_keys(cfg, SystemClock())
    except KeyBackendSetupError as exc:
        _err("KEY_BACKEND_UNAVAILABLE", f"cannot set up the {cfg.settings.keys.backend} key backend: {exc}")
        return 1
    if service is None:
        _err("KEYS_DISABLED", "no key backend configured (settings.keys.backend)")
        return 1
    try:
        rotated, failed = await service.rotate(owner)
    except SidecarError as exc:
        _err(exc.reason, exc.message)
        return ROTATION_BUSY if exc.reason == "ROTATION_IN_PROGRESS" else 1
    finally:
        await service.aclose()
    _out(json.dumps({"rotated": rotated, "failed": failed}) + "\n")
    return 1 if failed else 0


def _new_kek_command(args: argparse.Namespace) -> int:
    from sidecar.keys.local import LocalKekBackend

    try:
        LocalKekBackend.generate_file(args.file)
    except FileExistsError:
        _err("ALREADY_EXISTS", f"{args.file} already exists; refusing to overwrite a key-encryption key")
        return 1
    except OSError as exc:
        _err("IO_ERROR", f"cannot write {args.file}: {exc.strerror}")
        return 1
    _out(f"{args.file}\n")
    sys.stderr.write(
        "reminder: the local key backend keeps its key on disk and is for development only; "
        "production uses aws-kms or vault\n"
    )
    return 0


def _load(path: Path) -> Config | None:
    try:
        return load_config(path, process_environ())
    except ConfigError as exc:
        sys.stderr.write(f"{exc}\n")
        return None


def _err(reason: str, message: str) -> None:
    sys.stderr.write(f"error: {reason}: {message}\n")


def _out(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()
