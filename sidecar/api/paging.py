"""AIP-158 pagination: page_size / page_token, with opaque, tamper-checked tokens.

A token is the offset of the next item plus an HMAC over the offset and the rest of the request
(every field but page_size and page_token), keyed by a secret of this process: a token that was
altered, that another process issued, or that belongs to another query is INVALID_ARGUMENT naming
`page_token`. Lists here are small and computed whole, so an offset is an honest cursor.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

from google.protobuf.message import Message

from sidecar.core.errors import FieldViolation, InvalidRequestError

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
MAX_OFFSET = 1_000_000
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


class PageTokens:
    """Issues and checks page tokens with one secret (made per process by the composition root)."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def request(self, req: Message) -> PageRequest:
        """The page a request asks for, or InvalidRequestError naming page_size / page_token."""
        paged: Paged = req  # type: ignore[assignment]
        query = _query(req)
        bad: list[FieldViolation] = []
        if not 0 <= paged.page_size <= MAX_PAGE_SIZE:
            bad.append(FieldViolation("page_size", f"0 to {MAX_PAGE_SIZE} (0 means {DEFAULT_PAGE_SIZE})"))
        offset = self._offset(paged.page_token, query) if paged.page_token else 0
        if offset is None:
            bad.append(FieldViolation("page_token", "a next_page_token this sidecar issued for this query"))
        if bad:
            raise InvalidRequestError(bad)
        assert offset is not None
        return PageRequest(offset, paged.page_size or DEFAULT_PAGE_SIZE, query)

    def page(self, items: Sequence[T], at: PageRequest) -> tuple[list[T], str]:
        """The items of the page and the token of the next one ("" on the last page)."""
        end = at.offset + at.size
        chunk = list(items[at.offset : end])
        more = len(items) > end and end <= MAX_OFFSET
        return chunk, self._token(end, at.query) if more else ""

    def _token(self, offset: int, query: bytes) -> str:
        body = struct.pack(">Q", offset)
        return base64.urlsafe_b64encode(body + self._mac(body, query)).decode().rstrip("=")

    def _offset(self, token: str, query: bytes) -> int | None:
        if len(token) > 64:
            return None
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except ValueError:
            return None
        body, mac = raw[:8], raw[8:]
        if len(body) != 8 or not hmac.compare_digest(mac, self._mac(body, query)):
            return None
        offset: int = struct.unpack(">Q", body)[0]
        return offset if offset <= MAX_OFFSET else None

    def _mac(self, body: bytes, query: bytes) -> bytes:
        return hmac.new(self._secret, body + query, hashlib.sha256).digest()[:_MAC_BYTES]


def _query(req: Message) -> bytes:
    """The request without its paging fields: what a token is bound to."""
    bare = type(req)()
    bare.CopyFrom(req)
    bare.ClearField("page_size")
    bare.ClearField("page_token")
    return type(req).__name__.encode() + b"\0" + bare.SerializeToString(deterministic=True)
