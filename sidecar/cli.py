"""Command line: serve, check-config, chat and embed (small clients over the real gRPC API), version;
keys, experiments, answers and the injector register their own subcommands."""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
import uvloop
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from sidecar import __version__
from sidecar._gen.orchestrator.v1 import embed_pb2, generation_service_pb2_grpc
from sidecar._gen.orchestrator.v1 import generate_pb2 as gen
from sidecar.answers import cli as answers_cli
from sidecar.config.load import ConfigError, load_config, process_environ
from sidecar.config.schema import Config
from sidecar.core.signals import stop_on_signal
from sidecar.experiments import cli as experiments_cli
from sidecar.injector.cli import register as register_injector
from sidecar.keys import cli as keys_cli
from sidecar.keys.backend import KeyBackendSetupError
from sidecar.personas.registry import PersonaLoadError
from sidecar.telemetry.logging import setup_logging
from sidecar.telemetry.memory import limit_arenas
from sidecar.unix_socket import SocketPathError

if TYPE_CHECKING:
    from sidecar.server import Sidecar


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    code: int = args.handler(args)
    return code


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sidecar", description="The orchestrator LLM sidecar.")
    sub = parser.add_subparsers(required=True, metavar="COMMAND")
    serve = sub.add_parser("serve", help="run the gRPC server")
    serve.add_argument("--config", type=Path, help="YAML file (default: the embedded default)")
    serve.set_defaults(handler=_serve)
    check = sub.add_parser("check-config", help="validate a config file and list every problem")
    check.add_argument("file", type=Path)
    check.set_defaults(handler=_check_config)
    chat = sub.add_parser("chat", help="send one prompt to a running sidecar")
    chat.add_argument("prompt")
    chat.add_argument("--model", default="", help="route alias (default: the default route)")
    chat.add_argument("--stream", action="store_true", help="print the answer as it is generated")
    chat.add_argument("--target", default="127.0.0.1:50051", help="host:port or unix:PATH")
    chat.add_argument("--system", default="", help="a system prompt")
    chat.add_argument("--max-tokens", type=int, default=None)
    chat.add_argument("--timeout", type=float, default=60.0, help="deadline in seconds")
    chat.add_argument("--token-env", default="SIDECAR_TOKEN", help="env var holding the shared token, if any")
    chat.add_argument("--persona", default="", help="persona (agent) id for this call")
    chat.add_argument("--tenant", default="", help="tenant_id")
    chat.add_argument("--user", default="", help="user_id")
    chat.add_argument("--conversation", default="", help="conversation_id")
    chat.add_argument("--layer", default="", help="audience layer with the agent: public, friends, intimate")
    chat.add_argument("--accept", action="store_true", help="accept an escalation offer without asking")
    chat.set_defaults(handler=_chat)
    embed = sub.add_parser("embed", help="embed texts with a running sidecar (one JSON vector a line)")
    embed.add_argument("texts", nargs="+", metavar="TEXT")
    embed.add_argument("--tenant", required=True, help="tenant_id the call is charged to")
    embed.add_argument("--user", default="", help="user_id")
    embed.add_argument("--route", default="", help="embedding route alias (default: the default route)")
    embed.add_argument("--target", default="127.0.0.1:50051", help="host:port or unix:PATH")
    embed.add_argument("--timeout", type=float, default=60.0, help="deadline in seconds")
    embed.add_argument(
        "--token-env", default="SIDECAR_TOKEN", help="env var holding the shared token, if any"
    )
    embed.set_defaults(handler=_embed)
    keys_cli.register(sub)  # `keys encrypt|rotate|new-kek` (sidecar/keys/cli.py)
    experiments_cli.register(sub)
    answers_cli.register(sub)  # `answers report|list|accept|answer|decline` (sidecar/answers/cli.py)
    register_injector(sub)  # `inject` and `injector serve` (sidecar/injector/cli.py)
    version = sub.add_parser("version", help="print the version")
    version.set_defaults(handler=_version)
    return parser


def _version(args: argparse.Namespace) -> int:
    _out(f"sidecar {__version__}\n")
    return 0


def _load(path: Path | None) -> Config | None:
    try:
        return load_config(path, process_environ())
    except ConfigError as exc:
        sys.stderr.write(f"{exc}\n")
        return None


def _check_config(args: argparse.Namespace) -> int:
    cfg = _load(args.file)
    if cfg is None:
        return 1
    _out(
        f"{args.file}: OK ({len(cfg.policy.routes)} routes, "
        f"{len(cfg.policy.deployments)} deployments, default route {cfg.policy.default_route!r})\n"
    )
    return 0


def _serve(args: argparse.Namespace) -> int:
    # A SIGHUP from here on never kills the process (its default action): one that comes before the
    # event loop's handler is kept, and the file reread once the sidecar exists (it may have changed
    # after it was read below). Before this line only the interpreter's start and imports remain.
    hangups: list[int] = []
    signal.signal(signal.SIGHUP, lambda signum, _frame: hangups.append(signum))
    cfg = _load(args.config)
    if cfg is None:
        return 1
    setup_logging(cfg.settings.log_level, capture_content=cfg.settings.telemetry.capture_content.logs)
    limit_arenas(cfg.settings.memory.malloc_arena_max)  # before gRPC's threads allocate
    try:
        uvloop.run(_run_until_signalled(cfg, args.config, hangups))
    except SocketPathError as exc:  # the Unix socket's path is another process's, or not a socket
        sys.stderr.write(f"sidecar: cannot serve: {exc}\n")
        return 1
    except RuntimeError as exc:  # a listener it cannot bind (the message names which), a missing extra
        sys.stderr.write(f"sidecar: cannot serve: {exc}\n")
        return 1
    except PersonaLoadError as exc:  # the exact tokenizer found a prompt the config check's estimate let by
        sys.stderr.write(f"sidecar: personas: {exc}\n")
        return 1
    except KeyBackendSetupError as exc:  # a KEK file it cannot read, a client library not installed
        sys.stderr.write(f"sidecar: cannot serve: {exc}\n")
        return 1
    return 0


async def _run_until_signalled(cfg: Config, path: Path | None, hangups: list[int]) -> None:
    from sidecar.app import build_server  # the server stack loads only for `serve`

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    # First thing: a SIGTERM during start-up (a pod deleted while it starts) is kept for when the
    # server has started. Without a handler the default action kills the process uncleanly (its
    # socket left behind), and as a container's PID 1 the kernel drops the signal altogether: the
    # sidecar then served on until the kubelet's SIGKILL at the end of the grace period.
    # A second one, while the first is being served (the drain waits up to the shutdown grace),
    # stops the process at once: an operator's second Ctrl-C, a supervisor that signals again.
    stop_on_signal(stop, logging.getLogger("sidecar"))
    reloads: set[asyncio.Task[None]] = set()
    built: list[Sidecar] = []
    # SIGHUP: reload the policy's experiments from the same file (no restart); installed before the
    # server is built, and without a file too: a SIGHUP must never kill the process
    loop.add_signal_handler(signal.SIGHUP, lambda: _hangup(built, hangups, path, reloads))
    sidecar = build_server(cfg)
    built.append(sidecar)
    if hangups:  # signalled while it started: the file may have changed since it was read
        _start_reload(sidecar, path, reloads)
    await sidecar.start()
    # What start-up built lives as long as the process: the collector stops walking it. Without this a
    # full collection under load walked every module, config and stub object (one measured 159 ms
    # pause in a 10 s saturation run; none with it, bench/analysis.md).
    gc.freeze()
    await stop.wait()
    await sidecar.stop()


def _hangup(
    built: list[Sidecar], hangups: list[int], path: Path | None, running: set[asyncio.Task[None]]
) -> None:
    """A SIGHUP: reload the sidecar, or, while it is being built, keep the signal for when it is."""
    if built:
        _start_reload(built[0], path, running)
    else:
        hangups.append(signal.SIGHUP)


def _start_reload(sidecar: Sidecar, path: Path | None, running: set[asyncio.Task[None]]) -> None:
    if path is None:
        logging.getLogger("sidecar").warning(
            "SIGHUP: nothing to reload, the sidecar serves the embedded default"
        )
        return
    task = asyncio.get_running_loop().create_task(_reload(sidecar, path))
    running.add(task)
    task.add_done_callback(running.discard)


async def _reload(sidecar: Sidecar, path: Path) -> None:
    try:
        cfg = load_config(path, process_environ())
    except ConfigError as exc:  # a file that no longer passes the check keeps the policy in force
        logging.getLogger("sidecar").error(  # a log line, as all of serve's stderr is: one JSON object
            "policy not reloaded: the file does not pass the check",
            extra={"source": f"SIGHUP {path}", "problems": "; ".join(exc.problems)},
        )
        return
    await sidecar.reload(cfg, source=f"SIGHUP {path}")


def _err(reason: str, message: str) -> None:
    sys.stderr.write(f"error: {reason}: {message}\n")


def _chat(args: argparse.Namespace) -> int:
    env = process_environ()
    token = env.get(args.token_env, "")
    metadata = (("authorization", f"Bearer {token}"),) if token else ()
    messages = []
    if args.system:
        messages.append(_message(gen.ROLE_SYSTEM, args.system))
    messages.append(_message(gen.ROLE_USER, args.prompt))
    config = gen.GenerationConfig()
    if args.max_tokens is not None:
        config.max_tokens = args.max_tokens
    what = gen.GenerationInput(
        model=args.model, messages=messages, config=config, persona_id=args.persona, tenant_id=args.tenant,
        user_id=args.user, conversation_id=args.conversation, audience_layer=args.layer,
    )  # fmt: skip
    with grpc.insecure_channel(args.target) as channel:
        stub = generation_service_pb2_grpc.GenerationServiceStub(channel)
        try:
            if args.stream:
                stream_request = gen.StreamGenerateRequest(input=what)
                summary = gen.GenerationSummary()
                events = stub.StreamGenerate(stream_request, timeout=args.timeout, metadata=metadata)
                for event in events:
                    if event.HasField("delta"):
                        _out(event.delta.text)
                    else:
                        summary = event.result.summary
                _out("\n")
            else:
                request = gen.GenerateRequest(input=what)
                reply = stub.Generate(request, timeout=args.timeout, metadata=metadata)
                _out("".join(part.text for part in reply.message.content) + "\n")
                summary = reply.summary
        except grpc.RpcError as exc:
            sys.stderr.write(_describe_error(exc) + "\n")
            return 1
        sys.stderr.write(_describe_summary(summary) + "\n")
        if summary.HasField("answer_decision"):
            answers_cli.show_decision(args, channel, summary.answer_decision, metadata)
    return 0


def _embed(args: argparse.Namespace) -> int:
    token = process_environ().get(args.token_env, "")
    metadata = (("authorization", f"Bearer {token}"),) if token else ()
    request = embed_pb2.EmbedRequest(
        tenant_id=args.tenant, user_id=args.user, route=args.route, texts=args.texts
    )
    with grpc.insecure_channel(args.target) as channel:
        stub = generation_service_pb2_grpc.GenerationServiceStub(channel)
        try:
            reply = stub.Embed(request, timeout=args.timeout, metadata=metadata)
        except grpc.RpcError as exc:
            sys.stderr.write(_describe_error(exc) + "\n")
            return 1
    for embedding in reply.embeddings:
        _out(json.dumps(list(embedding.values)) + "\n")
    sys.stderr.write(
        f"[{reply.model} via {reply.route}:{reply.deployment}] dimensions={reply.dimensions} "
        f"normalized={str(reply.normalized).lower()} tokens={reply.usage.prompt_tokens} "
        f"cached_texts={reply.cached_texts} cost=${reply.cost_micros / 1e6:.6f} "
        f"request_id={reply.request_id}\n"
    )
    return 0


def _message(role: int, text: str) -> gen.Message:
    return gen.Message(
        role=role,  # type: ignore[arg-type]
        content=[gen.ContentPart(text=text)],
    )


def _describe_summary(s: gen.GenerationSummary) -> str:
    served = s.served_by
    return (
        f"[{served.provider}/{served.model} via {served.route}:{served.deployment}] "
        f"tokens in={s.usage.prompt_tokens} out={s.usage.completion_tokens} "
        f"cost=${s.cost_micros / 1e6:.6f} upstream={s.upstream_latency.ToMilliseconds()}ms "
        f"overhead={s.overhead.ToMicroseconds() / 1000:.2f}ms "
        f"finish={gen.FinishReason.Name(s.finish_reason)} request_id={s.request_id}"
    )


def _describe_error(exc: grpc.RpcError) -> str:
    status = rpc_status.from_call(exc)  # type: ignore[arg-type]
    code = exc.code().name if isinstance(exc, grpc.Call) else "UNKNOWN"
    reason = ""
    for detail in status.details if status else ():
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info):
            reason = f" {info.reason}"
    message = exc.details() if isinstance(exc, grpc.Call) else str(exc)
    return f"error: {code}{reason}: {message}"


def _out(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()
