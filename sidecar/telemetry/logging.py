"""Structured JSON logs, one object per line, with the request id; secrets and prompt text redacted.

Redaction is on by default and happens in the formatter, so it covers every logger, ours and
libraries': a field whose name says it holds a secret (key, token, secret, password, authorization,
credential) or content (prompt, messages, completion, text, content) is replaced by `[REDACTED]`,
and anything in a message or value that looks like a key or bearer token is masked: provider-key
shapes, Vault tokens, bearer tokens, the value after a secret-named key in JSON, headers or forms
(`"Plaintext": "..."`, `X-Vault-Token: ...`, `token=...`), and any long base64/hex run (standard
and URL-safe alphabets, `/+=` included). With `capture_content` on (debugging only), content fields
are kept; secrets never are.

Libraries that see secrets in the clear (botocore logs KMS response bodies with `Plaintext` data
keys at DEBUG; urllib3, hvac, aiohttp, asyncpg and redis can log bodies, headers or URLs with
passwords; google-auth, azure-identity and msal handle provider tokens) never log below WARNING,
whatever the sidecar's level: their loggers are set to WARNING
and the handler drops their records below WARNING in case a library lowers its own level again.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from functools import partial
from types import MappingProxyType
from typing import Any, TextIO

from sidecar.core.clock import Clock
from sidecar.core.types import Message

# Attributes every LogRecord has; anything else was passed through `extra=` and is a field.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message"}
REDACTED = "[REDACTED]"
_SECRET_FIELD = re.compile(r"(api_?key|token|secret|password|passwd|authorization|credential|bearer)", re.I)
_CONTENT_FIELD = re.compile(r"^(prompt|prompts|messages?|completion|text|content|input|output)$", re.I)
# Provider-key shapes, Vault tokens and bearer tokens.
_SECRET_VALUE = re.compile(
    r"(?:sk-|sk_|pk-|AKIA|xox[abp]-)[A-Za-z0-9_\-]{8,}"
    r"|\bkey-[a-z0-9]{32}\b"  # Mailgun's shape; not any hyphenated word (key-encryption, key-value)
    r"|\bhv[sbr]\.[A-Za-z0-9_\-]{8,}"
    r"|(?i:bearer)\s+[A-Za-z0-9_\-\.=+/]{4,}"
)
# The value after a secret-named key: JSON ("Plaintext": "..."), Python reprs ('X-Vault-Token': '...'),
# headers (Authorization: ...) and forms (token=...). Numbers and booleans are left (token counts), and
# `await` (a traceback's source line: `secret = await unseal(...)`).
_SECRET_NAMED = re.compile(
    r"""(?ix)
    (?P<key>["']?[\w\-]*(?:plaintext|ciphertext|api[_\-]?key|token|secret|passw(?:or)?d|authorization
        |credential|private[_\-]?key|data[_\-]?key)[\w\-]*["']?)
    (?P<sep>\s*[:=]\s*)
    (?!(?:\d+(?:\.\d+)?|true|false|null|none|await)\b|\[REDACTED\])
    (?P<value>b?"(?:[^"\\]|\\.)*"|b?'(?:[^'\\]|\\.)*'|[^\s,;&}\]\)]+)
    """
)
# Long opaque runs: base64 (standard and URL-safe, with padding), hex, JWT-ish parts. An absolute
# path of lowercase segments (a file in a traceback) is not one.
_OPAQUE_RUN = re.compile(r"[A-Za-z0-9_\-+/]{40,}={0,2}")
_PATH_LIKE = re.compile(r"(?:/[a-z0-9_\-]*)+/?")
# Libraries that handle secrets in the clear; they log at WARNING and above only.
QUIET_LOGGERS = (
    "botocore", "boto3", "s3transfer", "urllib3", "requests", "hvac", "aiohttp", "asyncpg", "redis",
    "aiocache", "google", "azure", "msal",
)  # fmt: skip
_SAFE_FIELDS = frozenset({"request_id", "trace_id", "span_id"})

MIN_MASKED_CHARS = 8  # shorter prompt fragments are not masked (they would mask ordinary words)
MIN_QUOTED_CHARS = 16  # a prompt's start this long is masked even when the rest of it was cut off

# The call being served, set by the outermost layer (pipeline/observe.py) in the RPC's own task
# context, which ends with the RPC: so lines logged after the pipeline (the servicer's failure
# line) still carry the request id and mask the prompt, e.g. when an upstream error quotes it.
REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
CALL_TEXTS: contextvars.ContextVar[tuple[str, ...]] = contextvars.ContextVar("call_texts", default=())
# The request's `metadata` labels (bounded at the edge: count and size), on every line of the call.
CALL_METADATA: contextvars.ContextVar[Mapping[str, str]] = contextvars.ContextVar(
    "call_metadata", default=MappingProxyType({})
)


def bind_call(
    request_id: str, texts: Iterable[str], metadata: Mapping[str, str] | None = None
) -> Callable[[], None]:
    """Name the call (its prompt text to mask, its metadata labels) for every line logged from here
    on in this task; returns what ends a nested binding. The outermost call of a task stays bound
    after it ends (the servicer's failure line); a call made inside it (a rolling summary, before or
    after the answer) also masks the outer call's texts, and gives the outer call its id, texts and
    labels back when it ends."""
    mine = tuple(t for t in texts if len(t) >= MIN_MASKED_CHARS)
    outer = REQUEST_ID.get() is not None
    tokens = (
        REQUEST_ID.set(request_id),
        CALL_TEXTS.set(CALL_TEXTS.get() + mine if outer else mine),
        CALL_METADATA.set(MappingProxyType(dict(metadata or {}))),
    )
    return partial(_unbind, tokens) if outer else _stay_bound


def _unbind(
    tokens: tuple[
        contextvars.Token[str | None],
        contextvars.Token[tuple[str, ...]],
        contextvars.Token[Mapping[str, str]],
    ],
) -> None:
    try:
        REQUEST_ID.reset(tokens[0])
        CALL_TEXTS.reset(tokens[1])
        CALL_METADATA.reset(tokens[2])
    except ValueError:  # ended in another context (a generator finalized elsewhere): nothing to undo
        return


def _stay_bound() -> None:
    """The outermost call's binding outlives it, until the task (the RPC) ends."""


def message_texts(messages: Iterable[Message]) -> Iterator[str]:
    """The content of messages to mask: their text and the arguments of their tool calls."""
    for message in messages:
        yield message.text
        for call in message.tool_calls:
            yield call.arguments


def mask_texts(texts: Iterable[str]) -> None:
    """Mask these texts too on every line logged from here on in this call: prompt text the sidecar
    adds to the call's own messages (the conversation's stored history)."""
    added = tuple(t for t in texts if len(t) >= MIN_MASKED_CHARS)
    if added:
        CALL_TEXTS.set(CALL_TEXTS.get() + added)


def scrub(text: str, prompts: tuple[str, ...] = ()) -> str:
    """Mask what looks like a key or a bearer token inside free text, and the given prompt texts,
    as they are and as JSON quotes them (an upstream error quoting the request back)."""
    for prompt in prompts:
        for form in _quoted_forms(prompt):
            text = _mask_quoted(text, form)
    text = _OPAQUE_RUN.sub(_mask_run, text)  # first: a key shape inside a run must not split it
    text = _SECRET_VALUE.sub(REDACTED, text)
    return _SECRET_NAMED.sub(lambda m: f"{m['key']}{m['sep']}{REDACTED}", text)


def _mask_quoted(text: str, form: str) -> str:
    """`form` masked wherever it is in `text`, and so is any part of it from its start that is at
    least MIN_QUOTED_CHARS long (a quote cut short: upstream text is cut, upstreams cut quotes)."""
    if len(form) < MIN_QUOTED_CHARS:
        return text.replace(form, REDACTED) if form in text else text
    head = form[:MIN_QUOTED_CHARS]
    start = text.find(head)
    while start != -1:
        end, n = start + len(head), len(head)
        while n < len(form) and end < len(text) and text[end] == form[n]:
            end, n = end + 1, n + 1
        text = text[:start] + REDACTED + text[end:]
        start = text.find(head, start + len(REDACTED))
    return text


def _quoted_forms(prompt: str) -> tuple[str, ...]:
    """The prompt, and its JSON string escapes (ASCII-only and not) when they differ from it."""
    if prompt.isascii() and prompt.isprintable() and '"' not in prompt and "\\" not in prompt:
        return (prompt,)
    forms = dict.fromkeys(
        (prompt, json.dumps(prompt, ensure_ascii=False)[1:-1], json.dumps(prompt)[1:-1])
    )  # ordered, without repeats
    return tuple(forms)


def _mask_run(match: re.Match[str]) -> str:
    run = match.group(0)
    return run if _PATH_LIKE.fullmatch(run) else REDACTED


class QuietLibraries(logging.Filter):
    """Drops records below WARNING from the libraries that see secrets (`QUIET_LOGGERS`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.WARNING:
            return True
        top = record.name.partition(".")[0]
        return top not in QUIET_LOGGERS


GRPC_CORE_LOGGER = "grpc._cython.cygrpc"


class UndeliveredAnswers(logging.Filter):
    """grpc logs an ERROR with a traceback when a servicer's answer cannot be sent because the caller
    has gone (its deadline passed or it cancelled): `ExecuteBatchError raised in core`. That is the
    caller's doing, and any caller could flood the log with it: it becomes one DEBUG line."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if type(exc).__name__ == "ExecuteBatchError":
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            record.msg, record.args = "answer not delivered: the caller had gone", ()
            record.exc_info, record.exc_text = None, None
        return True


def quiet_undelivered_answers() -> None:
    """Install `UndeliveredAnswers` on grpc's core logger (once)."""
    core = logging.getLogger(GRPC_CORE_LOGGER)
    if not any(isinstance(f, UndeliveredAnswers) for f in core.filters):
        core.addFilter(UndeliveredAnswers())


class RateLimitedLog:
    """Logs one line per `interval` seconds at most, for events a caller can trigger at will (bad
    requests); the next line that gets through says how many were suppressed in between."""

    def __init__(self, log: logging.Logger, clock: Clock, *, interval: float) -> None:
        self._log, self._clock, self._interval = log, clock, interval
        self._next_at: float | None = None
        self._suppressed = 0

    def warning(self, message: str, *, extra: dict[str, object] | None = None) -> bool:
        """Log `message` unless a line was logged less than `interval` ago; True if it was logged."""
        return self.log(logging.WARNING, message, extra=extra)

    def info(self, message: str, *, extra: dict[str, object] | None = None) -> bool:
        return self.log(logging.INFO, message, extra=extra)

    def log(self, level: int, message: str, *, extra: dict[str, object] | None = None) -> bool:
        now = self._clock.monotonic()
        if self._next_at is not None and now < self._next_at:
            self._suppressed += 1
            return False
        self._next_at = now + self._interval
        fields = {**(extra or {}), "suppressed": self._suppressed}
        self._suppressed = 0
        self._log.log(level, message, extra=fields)
        return True


class JsonFormatter(logging.Formatter):
    def __init__(self, *, capture_content: bool = False) -> None:
        super().__init__()
        self._capture_content = capture_content

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "message": self._scrub(record.getMessage()),
        }
        request_id = REQUEST_ID.get()
        if request_id is not None:
            entry["request_id"] = request_id
        if metadata := CALL_METADATA.get():  # each label redacted like a field of its name
            entry["metadata"] = {k: self._field(k, v) for k, v in metadata.items()}
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = self._field(key, value)
        if record.exc_info:
            entry["exception"] = self._scrub(self.formatException(record.exc_info))
        return json.dumps(entry, default=str)

    def _field(self, key: str, value: Any) -> Any:
        if key in _SAFE_FIELDS:
            return value
        if _SECRET_FIELD.search(key):
            return REDACTED
        if _CONTENT_FIELD.match(key) and not self._capture_content:
            return REDACTED
        if isinstance(value, bool | int | float) or value is None:
            return value
        return self._scrub(value if isinstance(value, str) else str(value))

    def _scrub(self, text: str) -> str:
        return scrub(text, () if self._capture_content else CALL_TEXTS.get())


def setup_logging(level: str, stream: TextIO | None = None, *, capture_content: bool = False) -> None:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter(capture_content=capture_content))
    handler.addFilter(QuietLibraries())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    quiet_libraries()
    quiet_undelivered_answers()


def quiet_libraries() -> None:
    """Set the secret-seeing libraries' loggers to WARNING, whatever the root level."""
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
