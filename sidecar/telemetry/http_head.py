"""An HTTP/1.x request head, read strictly (RFC 9112): the health port's one parser of client bytes.

`HeadReader` takes a connection's bytes as they arrive and says, as early as the bytes allow,
whether they are a head: a bare CR or LF (a line not ended by CRLF), a NUL, a request line that is
not `method SP target SP HTTP/x.y`, a head past HEAD_LIMIT are refused at once, so a client never
waits for an answer that cannot come. `environ` turns a whole head into a WSGI environ, refusing a
header line that is not `name: value` (whitespace between the name and its colon, RFC 9112 5.1; a
folded line, 5.2), a control character in a value, more than MAX_HEADERS lines, and framing that
could be read two ways (Content-Length twice or not a number, Content-Length with Transfer-Encoding,
Transfer-Encoding in HTTP/1.0 or not ending in chunked, Host twice), each with the status RFC 9112
gives it. The server never reads a body and ends every connection after one answer, so nothing
after the head can be taken for a second request; refusing ambiguous framing keeps a proxy in
front from reading the same bytes otherwise.
"""

from __future__ import annotations

import re
import urllib.parse
from typing import Any

HEAD_LIMIT = 16 * 1024
MAX_HEADERS = 100  # field lines, the head's closing blank line not among them

_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_TARGET = re.compile(rb"[\x21-\x7e]+")  # visible ASCII: no whitespace, control or non-ASCII byte
_VERSION = re.compile(rb"HTTP/([0-9])\.([0-9])")
_BAD_IN_VALUE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")  # control characters but HTAB
_BARE = re.compile(rb"\x00|\r(?!\n)|(?<!\r)\n")  # a NUL, a CR not before LF, an LF not after CR


class BadRequest(Exception):
    """The head cannot be served: `status` is the answer's status line (400, 414, 431, 501, 505)."""

    def __init__(self, status: str, reason: str) -> None:
        super().__init__(reason)
        self.status, self.reason = status, reason


def _bad(reason: str) -> BadRequest:
    return BadRequest("400 Bad Request", reason)


class HeadReader:
    """A connection's request head as its bytes arrive (each byte examined once)."""

    def __init__(self) -> None:
        self._head = bytearray()
        self._scanned = 0  # bytes already examined for a bare CR or LF, a NUL and the head's end
        self._line_end = -1  # where the request line ends, once it has (and was found well formed)

    def feed(self, data: bytes) -> bytes | None:
        """The whole head (up to its blank line) once it has arrived, else None; BadRequest as soon
        as the bytes so far cannot begin a head that may be served."""
        self._head += data
        head, start = self._head, max(0, self._scanned - 3)
        end = head.find(b"\r\n\r\n", start)
        limit = len(head) if end < 0 else end + 4  # what follows the head (a body) is not examined
        bare = _BARE.search(head, max(0, self._scanned - 1), limit)
        if bare is not None and not (bare.group() == b"\r" and bare.end() == len(head)):  # else: its LF next
            raise _bad("a bare CR or LF, or a NUL, in the request head")
        if self._line_end < 0 and (at := head.find(b"\r\n", max(0, self._scanned - 1))) >= 0:
            request_line(bytes(head[:at]))
            self._line_end = at
        self._scanned = len(head)
        if (self._line_end < 0 and len(head) > HEAD_LIMIT) or self._line_end > HEAD_LIMIT:
            raise BadRequest("414 URI Too Long", "request line too long")
        if (end < 0 and len(head) > HEAD_LIMIT) or end + 4 > HEAD_LIMIT:  # however the head arrived
            raise BadRequest("431 Request Header Fields Too Large", "request head too large")
        return None if end < 0 else bytes(head[: end + 4])


def request_line(line: bytes) -> tuple[str, str, str]:
    """(method, target, version) of `method SP target SP HTTP/1.x`."""
    parts = line.split(b" ")
    if len(parts) != 3 or not _TOKEN.fullmatch(parts[0]) or not _TARGET.fullmatch(parts[1]):
        raise _bad("not an HTTP/1 request line")
    version = _VERSION.fullmatch(parts[2])
    if version is None:
        raise _bad("not an HTTP/1 request line")
    if version.group(1) != b"1":
        raise BadRequest("505 HTTP Version Not Supported", "only HTTP/1.x is served")
    method, target, protocol = (part.decode("ascii") for part in parts)
    return method, target, protocol


def fields(lines: list[bytes]) -> list[tuple[str, str]]:
    """(lower-case name, value) of each `name: value` line."""
    if len(lines) > MAX_HEADERS:
        raise _bad("too many header lines")
    found = []
    for line in lines:
        name, colon, value = line.partition(b":")
        if not colon or not _TOKEN.fullmatch(name):  # `Host : x`, a folded line, ` Host: x`, `: x`
            raise _bad("a header line that is not `name: value`")
        value = value.strip(b" \t")
        if _BAD_IN_VALUE.search(value):
            raise _bad("a control character in a header value")
        found.append((name.decode("ascii").lower(), value.decode("latin-1")))
    return found


def _check_framing(headers: list[tuple[str, str]], version: str) -> None:
    """The body's framing read one way only (RFC 9112 6.1, 6.3); the body itself is never read."""
    lengths = [v for n, v in headers if n == "content-length"]
    codings = [c.strip().lower() for n, v in headers if n == "transfer-encoding" for c in v.split(",")]
    if len(lengths) > 1 or (lengths and not (lengths[0].isdigit() and lengths[0].isascii())):
        raise _bad("Content-Length given twice or not a number")
    if sum(1 for n, _ in headers if n == "host") > 1:
        raise _bad("Host given twice")
    if not codings:
        return
    if lengths:
        raise _bad("both Content-Length and Transfer-Encoding")
    if version == "HTTP/1.0":
        raise _bad("Transfer-Encoding in an HTTP/1.0 request")
    if codings[-1] != "chunked" or "chunked" in codings[:-1]:
        raise _bad("Transfer-Encoding not ending in chunked")
    if len(codings) > 1:
        raise BadRequest("501 Not Implemented", "a transfer coding other than chunked")


def environ(head: bytes, client: str, server: tuple[str, int]) -> dict[str, Any]:
    """The WSGI environ of a whole request head (as HeadReader gave it); BadRequest when it is not
    one to serve."""
    line, *lines = head[:-4].split(b"\r\n")
    method, target, version = request_line(line)
    headers = fields(lines)
    _check_framing(headers, version)
    path, _, query = origin_form(target).partition("?")
    env: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "SCRIPT_NAME": "",
        "PATH_INFO": urllib.parse.unquote(path, "iso-8859-1"),
        "QUERY_STRING": query,
        "SERVER_PROTOCOL": version,
        "SERVER_NAME": server[0],
        "SERVER_PORT": str(server[1]),
        "REMOTE_ADDR": client,
        "CONTENT_LENGTH": "",
    }
    for name, value in headers:
        if "_" in name:  # `X_A` would be taken for `X-A` (HTTP_X_A), which a proxy may have vetted
            continue
        key = name.replace("-", "_").upper()
        if key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            env[key] = value
        elif "HTTP_" + key in env:
            env["HTTP_" + key] += "," + value
        else:
            env["HTTP_" + key] = value
    return env


def origin_form(target: str) -> str:
    """The path and query of a request target: its absolute form (`http://host/path?query`, sent
    through proxies) reduced to them, as a server must accept it (RFC 9112 3.2.2)."""
    scheme, sep, rest = target.partition("://")
    if not sep or scheme.lower() not in ("http", "https"):
        return target
    at = min((i for i in (rest.find("/"), rest.find("?")) if i >= 0), default=len(rest))
    return rest[at:] if rest[at:].startswith("/") else "/" + rest[at:]
