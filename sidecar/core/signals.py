"""SIGTERM and SIGINT for a serving process (`sidecar serve`, `sidecar injector serve`): the first
stops it gracefully; a second one exits at once, as operators and supervisors expect of a second
Ctrl-C or a repeated kill."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys


def stop_on_signal(stop: asyncio.Event, log: logging.Logger) -> None:
    """Install the handlers on the running loop: the first signal sets `stop`; a second exits with
    the shell's code for death by that signal (128 + its number), leaving what is in flight."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, _signalled, stop, sig, log)


def _signalled(stop: asyncio.Event, sig: signal.Signals, log: logging.Logger) -> None:
    if not stop.is_set():
        stop.set()
        return
    log.warning(
        "second signal during shutdown: exiting at once, without waiting for what is in flight",
        extra={"signal": sig.name},
    )
    for handler in logging.getLogger().handlers:
        handler.flush()
    sys.stderr.flush()
    os._exit(128 + sig)
