"""Gemini's GenerateContentRequest: contents, tools and their calls, images, structured output.

Tool schemas go out as `parametersJsonSchema` and response schemas as `responseJsonSchema`: both
take the caller's JSON Schema as it is. The older `parameters` / `responseSchema` fields take an
OpenAPI 3.0 subset that refuses what the sidecar's edge accepts and callers write (type arrays,
`const`, `$ref`/`$defs`, `additionalProperties` on some models), so every schema the edge admitted
would need rewriting and some could not be.

Gemini signs parts of an answer (`thoughtSignature`, on the first functionCall of a step and on
text) and wants each signature back on the same part: Gemini 3 refuses a function-call turn
without it. The sidecar keeps a signature as an opaque thinking block (a ThinkingBlock's
`redacted` data, returned to the caller and kept by conversation memory as Anthropic's signed
blocks are) that says which part it belongs to: the text, or the call with a given id. A turn of
calls Gemini did not sign gets Gemini's documented stand-in (UNSIGNED) on its first call.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import re
from typing import Any
from urllib.parse import unquote_to_bytes, urlsplit

from sidecar.config.schema import DeploymentConfig
from sidecar.core.types import GenerationParams, Image, Message, Role, ThinkingBlock, ToolChoice
from sidecar.providers import tool_arguments
from sidecar.providers.base import Capabilities, ProviderRequest, max_tokens_sent, thinking_budget

_ROLES = {Role.USER: "user", Role.ASSISTANT: "model", Role.TOOL: "user"}
# The user turn put before a prompt that starts with an assistant message (a trimmed or summarized
# conversation): Gemini reads `contents` by position, user first, and refuses a history that starts
# with a model turn or does not alternate (as Bedrock's Converse does).
CONTINUED = "(The conversation continues.)"
# A call id the sidecar made up for a functionCall Gemini sent without one (the domain, memory and
# the caller's tool results need one); never sent back to Gemini, which did not issue it.
SYNTHETIC_ID_PREFIX = "gemini-call-"
_MODES = {"auto": "AUTO", "none": "NONE", "required": "ANY"}
_IMAGE_SUFFIXES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".webp": "image/webp",
    ".gif": "image/gif",
    ".heic": "image/heic",
    ".heif": "image/heif",
}
# The image formats Gemini reads (no GIF: Gemini refuses it); routing sends a GIF elsewhere.
IMAGE_FORMATS = frozenset({"image/png", "image/jpeg", "image/webp", "image/heic", "image/heif"})
SUPPORTS = frozenset({"tools", "json_schema", "images"})
# The request Gemini takes at most, its inline data (base64) included: 100 MB since January 2026
# (20 MB before: an endpoint still there sets `capabilities.max_request_bytes: 20971520`).
MAX_REQUEST_BYTES = 100_000_000
_BEFORE_GEMINI_3 = re.compile(r"(^|/)gemini-[12][.-]")  # gemini-2.5-flash, models/gemini-1.5-pro
_SIGNED = '{"gemini":'  # how a Gemini signature block's data starts (see signed_block)
# What Gemini documents to put on a function call it did not sign (a turn another provider served,
# calls the application wrote itself): Gemini 3 refuses a function-call turn of the current
# exchange whose first call has no signature, and skips checking this one.
UNSIGNED = "skip_thought_signature_validator"


def capabilities(deployment: DeploymentConfig) -> Capabilities:
    """Tools, structured output and images (Gemini's formats, within its request size), overridable
    per deployment. Models
    before Gemini 3 refuse function declarations together with a JSON response type ("Function
    calling with a response mime type: 'application/json' is unsupported"): routing sends a call
    asking for both to another deployment, or refuses it before anything is sent."""
    caps = dataclasses.replace(
        Capabilities.of(deployment, SUPPORTS),
        image_formats=IMAGE_FORMATS,
        json_with_tools=not before_gemini_3(deployment.model),
    )
    return caps.limited(deployment, request_bytes=MAX_REQUEST_BYTES)


def before_gemini_3(model: str) -> bool:
    """A model before Gemini 3 by its name (gemini-2.5-flash, models/gemini-1.5-pro); an alias the
    name does not date (gemini-flash-latest) is taken for a current one."""
    return _BEFORE_GEMINI_3.search(model) is not None


def signed_block(signature: str, call_id: str = "") -> ThinkingBlock:
    """A part's thoughtSignature as the opaque block the caller sends back: on the call with this
    id, or (no id) on the answer's text."""
    where: dict[str, str] = {"gemini": "call", "id": call_id} if call_id else {"gemini": "text"}
    data = json.dumps({**where, "thoughtSignature": signature}, separators=(",", ":"))
    return ThinkingBlock(redacted=data)


def is_gemini_block(block: ThinkingBlock) -> bool:
    """Whether a thinking block holds a Gemini signature (other providers refuse it as their own)."""
    return block.redacted.startswith(_SIGNED)


def _signatures(blocks: tuple[ThinkingBlock, ...]) -> dict[str, str]:
    """The signatures of a message's Gemini blocks by their part ("text", or "call:" + id); blocks of
    other providers (Anthropic's thinking) mean nothing to Gemini and are left out."""
    out: dict[str, str] = {}
    for block in blocks:
        if not is_gemini_block(block):
            continue
        try:
            data = json.loads(block.redacted)
        except ValueError:
            continue
        sig, kind, call_id = data.get("thoughtSignature"), data.get("gemini"), data.get("id", "")
        if not (isinstance(sig, str) and isinstance(call_id, str)):
            continue
        if kind == "text":
            out.setdefault("text", sig)
        elif kind == "call" and call_id:
            out.setdefault(f"call:{call_id}", sig)
    return out


def to_wire(req: ProviderRequest, deployment: DeploymentConfig) -> dict[str, Any]:
    """The GenerateContentRequest body. System messages become `systemInstruction`; consecutive
    messages of one role become one content with a part each; a prompt that starts with an
    assistant message gets the user turn CONTINUED before it."""
    system = [m.text for m in req.messages if m.role is Role.SYSTEM]
    body: dict[str, Any] = {"contents": _contents(req.messages)}
    if system:
        body["systemInstruction"] = {"parts": [{"text": "\n\n".join(system)}]}
    _tools(req.params, body)
    config = _generation_config(req.params, deployment)
    if config:
        body["generationConfig"] = config
    return body


def _generation_config(p: GenerationParams, deployment: DeploymentConfig) -> dict[str, Any]:
    """The parameters the call set. Gemini counts thinking within maxOutputTokens: the call's
    max_tokens goes raised by a thinking budget that would leave no room for the answer, as for
    Anthropic; a call that sets none leaves the model's own limit, which holds both."""
    config: dict[str, Any] = {}
    if p.max_tokens is not None:
        config["maxOutputTokens"] = max_tokens_sent(p, deployment)
    if p.temperature is not None:
        config["temperature"] = p.temperature
    if p.top_p is not None:
        config["topP"] = p.top_p
    if p.stop:
        config["stopSequences"] = list(p.stop)
    if p.seed is not None:  # Gemini's seed is an int32: a wider one wraps, the same seed each time
        config["seed"] = (p.seed + 2**31) % 2**32 - 2**31
    if (budget := thinking_budget(p)) is not None:  # Gemini 2.5's field, which Gemini 3 still takes
        config["thinkingConfig"] = {"thinkingBudget": budget}
        if p.reasoning is not None and p.reasoning.include_thinking:
            config["thinkingConfig"]["includeThoughts"] = True
    fmt = p.response_format
    if fmt is not None and fmt.kind in ("json_object", "json_schema"):
        config["responseMimeType"] = "application/json"
        if fmt.kind == "json_schema" and fmt.schema_json:
            config["responseJsonSchema"] = json.loads(fmt.schema_json)
    return config


def _tools(p: GenerationParams, body: dict[str, Any]) -> None:
    """`tools` (one Tool of functionDeclarations) and, when the call chose, `toolConfig`.
    `parallel_tool_calls` has no Gemini equivalent and is not sent."""
    if not p.tools:
        return
    declarations = []
    for t in p.tools:
        declaration: dict[str, Any] = {"name": t.name}
        if t.description:
            declaration["description"] = t.description
        if t.parameters_json:
            declaration["parametersJsonSchema"] = json.loads(t.parameters_json)
        declarations.append(declaration)
    body["tools"] = [{"functionDeclarations": declarations}]
    if p.tool_choice is not None:
        body["toolConfig"] = {"functionCallingConfig": _calling_config(p.tool_choice)}


def _calling_config(choice: ToolChoice) -> dict[str, Any]:
    if choice.name:  # the one tool the model must call
        return {"mode": "ANY", "allowedFunctionNames": [choice.name]}
    return {"mode": _MODES.get(choice.mode, "AUTO")}


def _contents(messages: tuple[Message, ...]) -> list[dict[str, Any]]:
    """`contents`, alternating user and model turns, user first. A tool result is a user turn's
    functionResponse part (consecutive results, and the question after them, are one turn). An
    answer with nothing to send (no text, no calls: its signature alone) is left out, as Gemini
    refuses an empty part; the turns around it become one."""
    names = {c.id: c.name for m in messages for c in m.tool_calls}
    contents: list[dict[str, Any]] = []
    for m in messages:
        if m.role is Role.SYSTEM or not (parts := _parts(m, names)):
            continue
        role = _ROLES[m.role]
        if contents and contents[-1]["role"] == role:
            contents[-1]["parts"] += parts
        else:
            contents.append({"role": role, "parts": parts})
    if not contents or contents[0]["role"] == "model":
        contents.insert(0, {"role": "user", "parts": [{"text": CONTINUED}]})
    return contents


def _parts(m: Message, names: dict[str, str]) -> list[dict[str, Any]]:
    if m.role is Role.TOOL:
        return [_result(m, names)]
    if m.role is Role.USER:
        parts = [image_part(i) for i in m.images]  # before the text, as Gemini advises
        return [*parts, {"text": m.text}] if m.text or not parts else parts
    signatures = _signatures(m.thinking)
    out: list[dict[str, Any]] = []
    if m.text:  # Gemini refuses an empty text part ("required oneof field 'data'")
        out.append(_signed({"text": m.text}, signatures.get("text")))
    for i, c in enumerate(m.tool_calls):
        call: dict[str, Any] = {"name": c.name, "args": tool_arguments.as_object(c.arguments)}
        if c.id and not c.id.startswith(SYNTHETIC_ID_PREFIX):
            call["id"] = c.id
        signature = signatures.get(f"call:{c.id}") or (UNSIGNED if i == 0 else None)
        out.append(_signed({"functionCall": call}, signature))
    return out


def _signed(part: dict[str, Any], signature: str | None) -> dict[str, Any]:
    return {**part, "thoughtSignature": signature} if signature else part


def _result(m: Message, names: dict[str, str]) -> dict[str, Any]:
    """A tool result as a functionResponse: `response` is the result when it is a JSON object, else
    `{"output": <the text>}` (Gemini reads an `output` key as the function's output). A result
    whose call is not in the prompt (trimmed away) has no function name to go with: it goes as text."""
    name = names.get(m.tool_call_id) or m.name
    if not name:
        return {"text": m.text}
    response: dict[str, Any] = {"name": name, "response": _result_object(m.text)}
    if m.tool_call_id and not m.tool_call_id.startswith(SYNTHETIC_ID_PREFIX):
        response["id"] = m.tool_call_id
    return {"functionResponse": response}


def _result_object(text: str) -> dict[str, Any]:
    try:
        value = tool_arguments.loads(text)
    except ValueError:  # RecursionError goes on: the request is refused, nothing sent (wire_body)
        value = None
    return value if isinstance(value, dict) else {"output": text}


def image_part(image: Image) -> dict[str, Any]:
    """Bytes and data: URLs as `inlineData` (base64); an https URL as `fileData`, which Gemini
    fetches itself as OpenAI and Anthropic do, with the MIME type its file name tells (Gemini takes
    it from the answer otherwise)."""
    if image.data:
        return {"inlineData": {"mimeType": image.mime_type, "data": base64.b64encode(image.data).decode()}}
    if image.url.startswith("data:"):
        head, _, payload = image.url.partition(",")
        mime, *flags = head[5:].split(";")
        data = payload if "base64" in flags else base64.b64encode(unquote_to_bytes(payload)).decode()
        return {"inlineData": {"mimeType": mime, "data": data}}
    path = urlsplit(image.url).path.lower()
    mime = next((m for suffix, m in _IMAGE_SUFFIXES.items() if path.endswith(suffix)), "")
    return {"fileData": {"fileUri": image.url, **({"mimeType": mime} if mime else {})}}
