"""The health port's answers as bytes: a WSGI app's (wsgiref's handler on in-memory streams, run on
a worker thread) and the server's own short plain-text ones. Every answer is HTTP/1.0 and ends its
connection."""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.handlers import SimpleHandler

_log = logging.getLogger("sidecar.telemetry")
StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


class _Handler(SimpleHandler):
    """wsgiref's handler on in-memory streams; a failing app's traceback goes to the log."""

    server_software = "sidecar"
    os_environ: dict[str, str] = {}  # noqa: RUF012 (else wsgiref copies the process's environment in)

    def log_exception(self, exc_info: Any) -> None:
        _log.warning("health port answer failed", exc_info=exc_info)


def app_answer(app: WSGIApp, environ: dict[str, Any]) -> bytes:
    """The app's answer to `environ`; to HEAD without its body (its Content-Length is the GET's)."""
    out = io.BytesIO()
    _Handler(io.BytesIO(), out, io.StringIO(), environ, multithread=True, multiprocess=False).run(app)
    answer = out.getvalue()
    if environ["REQUEST_METHOD"] == "HEAD":
        return answer[: answer.find(b"\r\n\r\n") + 4]
    return answer


def plain_answer(status: str, text: str) -> bytes:
    body = text.encode()
    head = f"HTTP/1.0 {status}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {len(body)}\r\n"
    return (head + "Connection: close\r\n\r\n").encode() + body
