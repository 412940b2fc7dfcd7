"""A loopback HTTP server that speaks the providers' wire formats byte for byte, scripted per test.

Each request takes the next `Reply` from the script (or the default). Replies can replay a
recorded fixture (JSON or SSE, one event per write), fail with a status, hang, reset the
connection, or drop it after some events. Requests and client disconnects are recorded.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "providers"


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def sse_events(raw: bytes) -> list[bytes]:
    """Split an SSE transcript into its events, each with its terminating blank line."""
    parts = raw.split(b"\n\n")
    events = [p + b"\n\n" for p in parts[:-1]]
    if parts[-1]:
        events.append(parts[-1])
    return events


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    chunks: list[bytes] | None = None  # streamed as separate writes (SSE)
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0  # before the status line
    chunk_delay: float = 0.0  # between streamed writes
    hang: bool = False  # accept the request and never answer
    reset: bool = False  # drop the connection without answering
    drop_after: int | None = None  # stream this many chunks, then drop the connection
    byte_delay: float = 0.0  # write the body (or each chunk) one byte at a time, this far apart
    eof_delay: float = 0.0  # wait this long after the last chunk before ending the response

    @classmethod
    def json(cls, name: str, status: int = 200, **kw: Any) -> Reply:
        return cls(status=status, body=fixture(name), **kw)

    @classmethod
    def sse(cls, name: str, **kw: Any) -> Reply:
        return cls(chunks=sse_events(fixture(name)), **kw)


@dataclass
class Seen:
    path: str
    headers: Mapping[str, str]
    body: Any
    method: str = "POST"
    raw_path: str = ""  # path and query exactly as sent (percent-encoding kept)
    raw_body: bytes = b""


class Upstream:
    def __init__(self, default: Reply | None = None) -> None:
        self.default = default or Reply(status=500, body=b'{"error":{"message":"unscripted"}}')
        self.script: deque[Reply] = deque()
        self.seen: list[Seen] = []
        self.disconnects = 0
        self.completed = 0
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def connections(self) -> int:
        """TCP connections open right now, as this server sees them (idle keep-alive ones included)."""
        server = None if self._runner is None else self._runner.server
        return 0 if server is None else len(server.connections)

    def push(self, *replies: Reply) -> None:
        self.script.extend(replies)

    async def start(self) -> Upstream:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, handler_cancellation=True, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        body = _json_or_none(raw)
        self.seen.append(
            Seen(request.path, dict(request.headers), body, request.method, request.raw_path, raw)
        )
        reply = self.script.popleft() if self.script else self.default
        try:
            return await self._answer(request, reply)
        except (asyncio.CancelledError, ConnectionResetError):
            self.disconnects += 1
            raise

    async def _answer(self, request: web.Request, reply: Reply) -> web.StreamResponse:
        if reply.hang:
            await asyncio.Event().wait()
        if reply.delay:
            await asyncio.sleep(reply.delay)
        if reply.reset:
            assert request.transport is not None
            request.transport.abort()
            raise ConnectionResetError("scripted reset")
        if reply.chunks is None and not reply.byte_delay:
            self.completed += 1
            return web.Response(
                status=reply.status,
                body=reply.body,
                headers={"content-type": "application/json", **reply.headers},
            )
        kind = "application/json" if reply.chunks is None else "text/event-stream"
        resp = web.StreamResponse(status=reply.status, headers={"content-type": kind, **reply.headers})
        await resp.prepare(request)
        for i, chunk in enumerate([reply.body] if reply.chunks is None else reply.chunks):
            if reply.drop_after is not None and i >= reply.drop_after:
                assert request.transport is not None
                request.transport.abort()
                return resp
            if i and reply.chunk_delay:
                await asyncio.sleep(reply.chunk_delay)
            await _write(resp, chunk, reply.byte_delay)
        if reply.eof_delay:
            await asyncio.sleep(reply.eof_delay)
        await resp.write_eof()
        self.completed += 1
        return resp


def _json_or_none(raw: bytes) -> Any:
    """The JSON body of a request, or None (no body, or a form like an OAuth2 token request's)."""
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return None


async def _write(resp: web.StreamResponse, data: bytes, byte_delay: float) -> None:
    if not byte_delay:
        await resp.write(data)
        return
    for i in range(len(data)):
        if i:
            await asyncio.sleep(byte_delay)
        await resp.write(data[i : i + 1])
