"""The injector's subcommands, registered on the main parser by `sidecar/cli.py`:

    sidecar inject -f deployment.yaml [--settings injector.yaml] [--image ...]   (offline, to stdout)
    sidecar injector serve --settings injector.yaml --tls-cert FILE --tls-key FILE [--address :8443]

Heavy imports (aiohttp, jsonpatch) happen inside the handlers, so other commands do not pay for them.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sidecar import __version__
from sidecar.core.signals import stop_on_signal

if TYPE_CHECKING:
    from sidecar.injector.settings import InjectorSettings

DEFAULT_IMAGE = f"ghcr.io/orchestrator/sidecar:{__version__}"


def register(sub: Any) -> None:
    """Add `inject` and `injector` to the main parser's subcommands."""
    inject = sub.add_parser("inject", help="add the sidecar to the pods of Kubernetes manifests (offline)")
    inject.add_argument("-f", "--filename", required=True, help="YAML manifests; - for standard input")
    inject.add_argument("-o", "--output", type=Path, help="write here instead of standard output")
    _settings_arguments(inject)
    inject.set_defaults(handler=_inject)
    injector = sub.add_parser("injector", help="the sidecar injector (mutating admission webhook)")
    actions = injector.add_subparsers(required=True, metavar="ACTION")
    serve = actions.add_parser("serve", help="serve AdmissionReview v1 on POST /inject over HTTPS")
    serve.add_argument("--settings", type=Path, required=True, help="the injector settings YAML")
    serve.add_argument(
        "--address",
        default=":8443",
        help="host:port; no host (or [::]): every IPv6 and IPv4 address; port 0: any free",
    )
    serve.add_argument("--tls-cert", type=Path, help="PEM certificate chain (omit both for plain HTTP)")
    serve.add_argument("--tls-key", type=Path, help="PEM private key")
    serve.add_argument("--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    serve.add_argument(
        "--shutdown-delay",
        type=_seconds,
        default=5.0,
        help="after SIGTERM: seconds /readyz says 503 while reviews are still answered (default 5)",
    )
    serve.set_defaults(handler=_serve)


def _seconds(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 300:
        raise argparse.ArgumentTypeError(f"{text} is not between 0 and 300 seconds")
    return value


def _settings_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--settings", type=Path, help="injector settings YAML (as the chart renders it)")
    parser.add_argument("--image", help=f"sidecar image (default {DEFAULT_IMAGE})")
    parser.add_argument(
        "--config-map", help="ConfigMap with the sidecar's YAML (default orchestrator-sidecar)"
    )
    parser.add_argument("--mode", choices=("native", "classic"), help="native sidecar (default) or classic")


def _load(args: argparse.Namespace) -> InjectorSettings | None:
    """The settings file (or the defaults) with the command line's overrides; None after an error."""
    from pydantic import ValidationError

    from sidecar.injector.settings import InjectorSettings, SettingsError, load_settings

    base: dict[str, Any] = {"image": DEFAULT_IMAGE, "config_map": "orchestrator-sidecar"}
    overrides = {"image": args.image, "config_map": args.config_map, "mode": args.mode}
    try:
        if args.settings is not None:
            base = load_settings(args.settings).model_dump()
        return InjectorSettings.model_validate({**base, **{k: v for k, v in overrides.items() if v}})
    except SettingsError as exc:
        sys.stderr.write(f"sidecar inject: {exc}\n")
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        sys.stderr.write(f"sidecar inject: {problems}\n")
    return None


def _inject(args: argparse.Namespace) -> int:
    """Exit 2 when a document cannot be read or a pod is rejected (nothing is written then)."""
    from sidecar.injector.workloads import ManifestError, inject_manifests

    settings = _load(args)
    if settings is None:
        return 2
    try:
        text = sys.stdin.read() if args.filename == "-" else Path(args.filename).read_text()
        # Running the command on a manifest asks for the sidecar: templates saying "false" are skipped.
        output, outcomes = inject_manifests(text, settings.model_copy(update={"inject_by_default": True}))
    except (OSError, ManifestError) as exc:
        sys.stderr.write(f"sidecar inject: {exc}\n")
        return 2
    for outcome in outcomes:
        sys.stderr.write(f"{outcome.where}: {outcome.decision.kind} ({outcome.decision.reason})\n")
    if args.output is not None:
        args.output.write_text(output)
    else:
        sys.stdout.write(output)
    return 0


def _serve(args: argparse.Namespace) -> int:
    import uvloop

    from sidecar.injector.metrics import InjectorMetrics
    from sidecar.injector.server import InjectorServer, TlsFiles
    from sidecar.injector.settings import SettingsError, load_settings
    from sidecar.telemetry.logging import setup_logging

    if (args.tls_cert is None) != (args.tls_key is None):
        sys.stderr.write("sidecar injector: --tls-cert and --tls-key go together\n")
        return 2
    setup_logging(args.log_level)  # before the settings: what they hold that is ignored is logged
    try:
        settings = load_settings(args.settings)
    except SettingsError as exc:
        sys.stderr.write(f"sidecar injector: {exc}\n")
        return 2
    tls = TlsFiles(args.tls_cert, args.tls_key) if args.tls_cert is not None else None
    server = InjectorServer(settings, address=args.address, tls=tls, metrics=InjectorMetrics())
    try:
        uvloop.run(_until_signalled(server, args.shutdown_delay))
    except OSError as exc:
        sys.stderr.write(f"sidecar injector: cannot serve on {args.address}: {exc}\n")
        return 1
    return 0


async def _until_signalled(server: Any, shutdown_delay: float) -> None:
    await server.start()
    stop = asyncio.Event()
    stop_on_signal(stop, logging.getLogger("sidecar.injector"))  # a second signal exits at once
    await stop.wait()
    await server.drain(shutdown_delay)  # the Service's endpoints drop this pod meanwhile
    await server.stop()
