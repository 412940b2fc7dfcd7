"""AIP-158 pagination: page_size / page_token, with opaque, tamper-checked tokens.

A token is the offset of the next item plus an HMAC over the offset and the rest of the request
(every field but page_size and page_token), keyed by a secret of this process: a token that was
altered, that another process issued, or that belongs to another query is INVALID_ARGUMENT naming
`page_token`. Lists here are small and computed whole, so an offset is an honest cursor.

A list whose items leave it as the caller works through it (a creator answering the pending
escalations of one page before asking for the next) is paged by key instead (`request(keyed=True)`,
`page_after`): the token carries the sort key of the page's last item, and the next page starts
after it, so nothing is skipped however many items before it left meanwhile.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

from google.protobuf.message import Message

from sidecar.core.errors import FieldViolation, InvalidRequestError

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
MAX_OFFSET = 1_000_000
MAX_KEYED_TOKEN = 256  # characters: a key of up to ~170 bytes and its MAC
_MAC_BYTES = 16
T = TypeVar("T")


class Paged(Protocol):
    """A List request: AIP-158's two fields."""

    @property
    def page_size(self) -> int: ...
    @property
    def page_token(self) -> str: ...


@dataclass(frozen=True)
class PageRequest:
    """Where a page starts, how long it is, and the query it belongs to."""

    offset: int
    size: int
    query: bytes
    after: bytes = b""  # a keyed list: the sort key of the last item given already (b"": none yet)


class PageTokens:
    """Issues and checks page tokens with one secret (made per process by the composition root)."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def request(self, req: Message, *, keyed: bool = False) -> PageRequest:
        """The page a request asks for, or InvalidRequestError naming page_size / page_token.
        `keyed`: the list is paged by key (`page_after`), not by offset (`page`)."""
        paged: Paged = req  # type: ignore[assignment]
        query = _query(req)
        bad: list[FieldViolation] = []
        if not 0 <= paged.page_size <= MAX_PAGE_SIZE:
            bad.append(FieldViolation("page_size", f"0 to {MAX_PAGE_SIZE} (0 means {DEFAULT_PAGE_SIZE})"))
        after: bytes | None = b""
        offset: int | None = 0
        if paged.page_token and keyed:
            after = self._key(paged.page_token, query)
        elif paged.page_token:
            offset = self._offset(paged.page_token, query)
        if offset is None or after is None:
            bad.append(FieldViolation("page_token", "a next_page_token this sidecar issued for this query"))
        if bad:
            raise InvalidRequestError(bad)
        assert offset is not None and after is not None
        return PageRequest(offset, paged.page_size or DEFAULT_PAGE_SIZE, query, after)

    def page_after(
        self, items: Sequence[T], at: PageRequest, key: Callable[[T], bytes]
    ) -> tuple[list[T], str]:
        """A keyed list's page: the items whose `key` sorts after the token's, and the token of the
        next page ("" on the last). `items` are in the order of their keys (compared as bytes)."""
        rest = [item for item in items if key(item) > at.after] if at.after else list(items)
        chunk = rest[: at.size]
        if len(rest) <= at.size:
            return chunk, ""
        body = key(chunk[-1])
        return chunk, _encode(body + self._mac(body, at.query))

    def page(self, items: Sequence[T], at: PageRequest) -> tuple[list[T], str]:
        """The items of the page and the token of the next one ("" on the last page)."""
        end = at.offset + at.size
        chunk = list(items[at.offset : end])
        more = len(items) > end and end <= MAX_OFFSET
        return chunk, self._token(end, at.query) if more else ""

    def _token(self, offset: int, query: bytes) -> str:
        body = struct.pack(">Q", offset)
        return _encode(body + self._mac(body, query))

    def _offset(self, token: str, query: bytes) -> int | None:
        raw = _decode(token, 64)
        if raw is None:
            return None
        body, mac = raw[:8], raw[8:]
        if len(body) != 8 or not hmac.compare_digest(mac, self._mac(body, query)):
            return None
        offset: int = struct.unpack(">Q", body)[0]
        return offset if offset <= MAX_OFFSET else None

    def _key(self, token: str, query: bytes) -> bytes | None:
        raw = _decode(token, MAX_KEYED_TOKEN)
        if raw is None or len(raw) <= _MAC_BYTES:
            return None
        body, mac = raw[:-_MAC_BYTES], raw[-_MAC_BYTES:]
        return body if hmac.compare_digest(mac, self._mac(body, query)) else None

    def _mac(self, body: bytes, query: bytes) -> bytes:
        return hmac.new(self._secret, body + query, hashlib.sha256).digest()[:_MAC_BYTES]


def _encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(token: str, longest: int) -> bytes | None:
    if len(token) > longest:
        return None
    try:
        return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except ValueError:
        return None


def _query(req: Message) -> bytes:
    """The request without its paging fields: what a token is bound to."""
    bare = type(req)()
    bare.CopyFrom(req)
    bare.ClearField("page_size")
    bare.ClearField("page_token")
    return type(req).__name__.encode() + b"\0" + bare.SerializeToString(deterministic=True)
