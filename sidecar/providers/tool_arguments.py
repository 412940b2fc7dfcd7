"""A tool call's arguments as a wire sends them back to a provider.

Conversation memory keeps a model's calls as the provider sent them, and the edge takes a caller's
own the same way (sidecar/api/content.py, bounded in length and nesting): arguments that are
malformed JSON, cut by max_tokens, or JSON but not an object, so that the application can answer
such a call with an error result and the tool loop goes on. Upstreams refuse them back as they
are (Anthropic's `input` is an object; OpenAI-compatible servers such as vLLM and llama-server
parse `arguments`), so such text is sent as an object holding it,
`{"unparsed_arguments": "<the text>"}`: the model still sees what it wrote. Arguments that are a
JSON object go out unchanged; no arguments at all are `{}`. JSON nested deeper than the parser's
stack (the edge refuses it; memory may hold a model's) is not taken for malformed: Anthropic's wire
raises RecursionError (the request refused, nothing sent: providers/base.py `wire_body`), OpenAI's
sends the text as it is, as before.
"""

from __future__ import annotations

import json
import math
from typing import Any

UNPARSED = "unparsed_arguments"


def as_object(arguments: str) -> dict[str, Any]:
    """The arguments as a JSON object (Anthropic's `input`)."""
    if not arguments:
        return {}
    parsed = _object(arguments)
    return parsed if parsed is not None else {UNPARSED: arguments}


def as_text(arguments: str) -> str:
    """The arguments as the text of a JSON object (OpenAI's `arguments`): as the model wrote them
    when they are one."""
    if not arguments:
        return "{}"
    try:
        if _object(arguments) is not None:
            return arguments
    except RecursionError:  # JSON too deep to read back here: sent as written
        return arguments
    return json.dumps({UNPARSED: arguments}, ensure_ascii=False)


def _object(text: str) -> dict[str, Any] | None:
    try:
        value = loads(text)
    except ValueError:  # RecursionError (nested deeper than the parser's stack) goes to the caller
        return None
    return value if isinstance(value, dict) else None


def loads(text: str) -> Any:
    """JSON text as values that write back as the same JSON: NaN and Infinity (which Python's json
    reads and JSON has not) and numbers past a double (1e400, read as infinity, which json.dumps
    writes as `Infinity`, not JSON, and orjson as `null`) are a ValueError."""
    return json.loads(text, parse_constant=_not_json, parse_float=_finite)


def _not_json(constant: str) -> object:
    raise ValueError(f"{constant} is not JSON")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is past a double")
    return value
