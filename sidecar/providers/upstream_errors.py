"""What an upstream's failure says: its status classified into a ProviderError, its body's message
read within bounds and stripped of the request's credentials, and its Retry-After, trusted within a
cap. Used by the HTTP client (_http.py), the one place HTTP failures are classified."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

import orjson

from sidecar.core.clock import Clock
from sidecar.core.errors import (
    ProviderAuthError,
    ProviderError,
    ProviderRateLimitedError,
    ProviderRejectedError,
    ProviderUnavailableError,
)
from sidecar.providers import http1

_SECRETISH = re.compile(r"(sk-|key-|Bearer\s+)[A-Za-z0-9_\-\.]{4,}|[A-Za-z0-9_\-]{32,}")
_MAX_ERROR_BODY = 64 * 1024
MIN_SECRET_CHARS = 6  # shorter values are not credentials worth masking (they would mask words)
REDACTED = "[redacted]"
_CREDENTIAL_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "x-api-key", "api-key", "x-goog-api-key", "x-amz-security-token"}
)
_DECIMAL = re.compile(r"[0-9]+\.[0-9]+")


async def error_body(resp: http1.Response, clock: Clock, seconds: float) -> bytes:
    """What arrives of an error body within `seconds`, at most _MAX_ERROR_BODY bytes of it (b"" for
    one larger than that: its message is not read). A connection that breaks ends it early."""
    parts: list[bytes] = []
    size = 0
    try:
        async with clock.timeout(seconds):
            while data := await resp.read_chunk():
                parts.append(data)
                size += len(data)
                if size > _MAX_ERROR_BODY:
                    return b""
    except (TimeoutError, http1.ConnectionBroke, http1.ProtocolError, OSError):
        pass  # the status says what happened; the message is only its detail
    return b"".join(parts)


def status_error(
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    retry_after: RetryAfterPolicy,
    secrets: Sequence[str],
) -> ProviderError:
    """The error of a failure status; its text (the upstream's own message, which may quote the
    request back) without the request's credentials, whatever their shape."""
    detail = redact(_error_message(body), secrets)
    text = f"upstream HTTP {status}: {detail}" if detail else f"upstream HTTP {status}"
    if status in (401, 403) or (status == 404 and _error_code(body) == "model_not_found"):
        # OpenAI's 404 model_not_found: "does not exist or you do not have access to it", the key's
        # refusal (a user's own key is the user's matter; the platform key's, our misconfiguration)
        return ProviderAuthError(f"upstream HTTP {status}: credentials refused")
    if status == 429:
        return ProviderRateLimitedError(text, retry_after=retry_after.seconds(headers))
    if status == 400 and _error_code(body) == "content_filter":
        return PromptFilteredError(text)
    if status in (400, 413, 422):
        return ProviderRejectedError(text)
    return ProviderUnavailableError(text, retry_after=retry_after.seconds(headers))


class PromptFilteredError(ProviderRejectedError):
    """The provider's content filter refused the prompt (Azure OpenAI's 400 `content_filter`): an
    answer the provider filtered, as Gemini's blocked prompt is, not a malformed request (the
    adapter turns it into a CONTENT_FILTER finish)."""


@dataclass(frozen=True, slots=True)
class RetryAfterPolicy:
    """How far an upstream's Retry-After is trusted: at most `max_seconds` (it opens the breaker of a
    deployment shared by every tenant, and becomes the RetryInfo clients wait for)."""

    max_seconds: float
    clock: Clock

    def seconds(self, headers: Mapping[str, str]) -> float | None:
        """The upstream's wait, capped; None when it gave none or none that parses."""
        wait = retry_after_seconds(headers, now=self.clock.wall())
        return None if wait is None else min(wait, self.max_seconds)


def retry_after_seconds(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """Retry-After (delay-seconds or HTTP-date) or retry-after-ms, as seconds; None for garbage,
    negative or non-finite values, except an integer too long for a float: infinity (capped by the
    policy, as a very long wait should be, not ignored). An HTTP-date is measured from the
    upstream's own Date header when it sent one (its clock, not ours), else from `now` (Unix
    seconds)."""
    if ms := headers.get("retry-after-ms"):
        wait = _finite(ms)
        if wait is not None:
            return wait / 1000
    value = (headers.get("retry-after") or "").strip()
    if not value:
        return None
    if value.isascii() and value.isdigit():  # delay-seconds (isdigit alone takes Latin-1's ² and ³)
        return float(value)  # too many digits for a float is infinity, which the policy caps
    if _DECIMAL.fullmatch(value):
        return _finite(value)
    try:
        when = parsedate_to_datetime(value)
        date = headers.get("date")
        base = parsedate_to_datetime(date).timestamp() if date else now
    except (TypeError, ValueError, IndexError):
        return None
    if base is None or when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - base)


def _finite(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) and value >= 0 else None


def redact(text: str, secrets: Sequence[str] = ()) -> str:
    """Strip anything that looks like a credential from upstream text before it goes anywhere: the
    given `secrets` exactly (before the text is cut), then whatever has a key's shape."""
    for secret in sorted(secrets, key=len, reverse=True):  # a whole header value before its token
        if len(secret) >= MIN_SECRET_CHARS:
            text = text.replace(secret, REDACTED)
    return _SECRETISH.sub(REDACTED, text)[:300]


def secret_forms(value: str) -> list[str]:
    """A credential header's value and, after a `Bearer` or `Basic` scheme, its token alone."""
    scheme, _, token = value.partition(" ")
    return [value, token.strip()] if token and scheme.lower() in ("bearer", "basic") else [value]


def credentials_of(headers: Mapping[str, str]) -> list[str]:
    """The credentials in a request's headers, by the names credentials go under."""
    return [
        f
        for name, value in headers.items()
        if name.lower() in _CREDENTIAL_HEADERS
        for f in secret_forms(value)
    ]


def _error_message(body: bytes) -> str:
    try:
        data = orjson.loads(body)  # unlike json.loads, nesting past its depth limit is a ValueError too
    except ValueError:
        return ""
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return str(error["message"])
    if isinstance(data, dict) and isinstance(data.get("message"), str):
        return str(data["message"])
    return ""


def _error_code(body: bytes) -> str:
    """The `error.code` of an OpenAI-shaped error body, or ""."""
    try:
        error = orjson.loads(body).get("error")
    except (ValueError, AttributeError):
        return ""
    code = error.get("code") if isinstance(error, dict) else None
    return code if isinstance(code, str) else ""
