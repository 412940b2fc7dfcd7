"""Structured JSON logs, one object per line, with the request id; secrets and prompt text redacted.

Redaction is on by default and happens in the formatter, so it covers every logger, ours and
libraries': a field whose name says it holds a secret (key, token, secret, password, authorization,
credential) or content (prompt, messages, completion, text, content) is replaced by `[REDACTED]`,
and anything in a message or value that looks like a key or bearer token is masked. With
`capture_content` on (debugging only), content fields are kept; secrets never are.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import re
import sys
from typing import Any, TextIO

# Attributes every LogRecord has; anything else was passed through `extra=` and is a field.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message"}
REDACTED = "[REDACTED]"
_SECRET_FIELD = re.compile(r"(api_?key|token|secret|password|passwd|authorization|credential|bearer)", re.I)
_CONTENT_FIELD = re.compile(r"^(prompt|prompts|messages?|completion|text|content|input|output)$", re.I)
# Provider-key shapes and bearer tokens, and long opaque runs (base64/hex blobs, JWT-ish strings).
_SECRET_VALUE = re.compile(
    r"(?:sk-|sk_|key-|pk-|AKIA|xox[abp]-)[A-Za-z0-9_\-]{8,}"
    r"|(?i:bearer)\s+[A-Za-z0-9_\-\.=+/]{4,}"
    r"|[A-Za-z0-9_\-+=]{40,}"
)
_SAFE_FIELDS = frozenset({"request_id", "trace_id", "span_id"})

REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)


def reset_request_id(token: contextvars.Token[str | None]) -> None:
    """Undo REQUEST_ID.set(); harmless when the call ends in another context (a stream closed elsewhere)."""
    with contextlib.suppress(ValueError):
        REQUEST_ID.reset(token)


def scrub(text: str) -> str:
    """Mask what looks like a key or a bearer token inside free text."""
    return _SECRET_VALUE.sub(REDACTED, text)


class JsonFormatter(logging.Formatter):
    def __init__(self, *, capture_content: bool = False) -> None:
        super().__init__()
        self._capture_content = capture_content

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "message": scrub(record.getMessage()),
        }
        request_id = REQUEST_ID.get()
        if request_id is not None:
            entry["request_id"] = request_id
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = self._field(key, value)
        if record.exc_info:
            entry["exception"] = scrub(self.formatException(record.exc_info))
        return json.dumps(entry, default=str)

    def _field(self, key: str, value: Any) -> Any:
        if key in _SAFE_FIELDS:
            return value
        if _SECRET_FIELD.search(key):
            return REDACTED
        if _CONTENT_FIELD.match(key) and not self._capture_content:
            return REDACTED
        if isinstance(value, str):
            return scrub(value)
        if isinstance(value, bool | int | float) or value is None:
            return value
        return scrub(str(value))


def setup_logging(level: str, stream: TextIO | None = None, *, capture_content: bool = False) -> None:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter(capture_content=capture_content))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
