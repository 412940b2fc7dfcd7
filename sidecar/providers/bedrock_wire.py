"""The Converse request body (the same for ConverseStream): turns, system, inference config, tools
and images, as AWS documents them (bedrock-runtime API reference, Converse).

Tools go in `toolConfig` (`toolSpec` with `inputSchema.json`; `toolChoice` auto / any / tool), a
model's earlier calls back as `toolUse` blocks and the application's results as `toolResult` blocks
of the next user turn. Converse has no "none" tool choice, and a request holding `toolUse` or
`toolResult` blocks must carry a `toolConfig` (ValidationException otherwise): so a call that offers
no tools, or forbids them, sends no `toolConfig` and the history's calls and results as text: the
model sees what happened and cannot call a tool. Images go as bytes (`source.bytes`, base64 in
JSON): Converse does not fetch URLs, so routing keeps a call with an https:// image away from
Bedrock (the `image_urls` need, providers/base.py `needs`).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import json
import re
from typing import Any

from sidecar.config.schema import DeploymentConfig
from sidecar.core.errors import FieldViolation, ProviderRejectedError
from sidecar.core.types import GenerationParams, Image, Message, Role
from sidecar.providers.base import Capabilities, ProviderRequest
from sidecar.providers.tool_arguments import as_object, as_text

SUPPORTS = frozenset({"tools", "images"})  # json_schema: see docs/providers.md (Bedrock)
IMAGE_FORMATS = {"image/png": "png", "image/jpeg": "jpeg", "image/gif": "gif", "image/webp": "webp"}
MAX_IMAGE_BYTES = 3_932_160  # 3.75 MB: Converse's limit for one image
EMPTY_SCHEMA = '{"type": "object", "properties": {}}'  # a tool without parameters
_TOOL_USE_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")  # Converse's toolUseId pattern

# The user turn put before a prompt that starts with an assistant message (a trimmed or summarized
# conversation): Converse refuses a conversation that does not start with a user message.
CONTINUED = "(The conversation continues.)"


def capabilities(deployment: DeploymentConfig) -> Capabilities:
    """Tools and images (as bytes only: never an https:// URL), overridable per deployment."""
    return dataclasses.replace(Capabilities.of(deployment, SUPPORTS), image_urls=False)


def to_wire(req: ProviderRequest, deployment: DeploymentConfig) -> dict[str, Any]:
    """The Converse request body. System messages become `system`; consecutive messages of one role
    become one message with a content block each; a prompt that starts with an assistant message
    gets the user turn CONTINUED before it."""
    p = req.params
    native = native_tools(p)
    body: dict[str, Any] = {"messages": _turns(req.messages, native)}
    system = [{"text": m.text} for m in req.messages if m.role is Role.SYSTEM]
    if system:
        body["system"] = system
    config: dict[str, Any] = {
        "maxTokens": p.max_tokens if p.max_tokens is not None else deployment.default_max_tokens
    }
    if p.temperature is not None:
        config["temperature"] = min(p.temperature, 1.0)  # Converse's range is 0..1
    if p.top_p is not None:
        config["topP"] = p.top_p
    if p.stop:
        config["stopSequences"] = list(p.stop)
    body["inferenceConfig"] = config
    if native:
        body["toolConfig"] = _tool_config(p)
    return body  # `seed` and `parallel_tool_calls` have no Converse equivalent and are not sent


def native_tools(p: GenerationParams) -> bool:
    """Does the request carry a toolConfig (tools offered, and not forbidden by tool choice none)?"""
    return bool(p.tools) and (p.tool_choice is None or p.tool_choice.mode != "none")


def _tool_config(p: GenerationParams) -> dict[str, Any]:
    tools = [
        {
            "toolSpec": {
                "name": t.name,
                **({"description": t.description} if t.description else {}),
                "inputSchema": {"json": json.loads(t.parameters_json or EMPTY_SCHEMA)},
            }
        }
        for t in p.tools
    ]
    config: dict[str, Any] = {"tools": tools}
    choice = p.tool_choice
    if choice is not None:
        if choice.name:
            config["toolChoice"] = {"tool": {"name": choice.name}}
        elif choice.mode == "required":
            config["toolChoice"] = {"any": {}}
        else:
            config["toolChoice"] = {"auto": {}}
    return config


def _turns(messages: tuple[Message, ...], native: bool) -> list[dict[str, Any]]:
    """Converse wants the roles to alternate, starting with the user, and a user turn's toolResult
    blocks before its other blocks (Claude refuses text before them)."""
    turns: list[dict[str, Any]] = []
    images = 0
    for m in messages:
        if m.role is Role.SYSTEM:
            continue
        role = "assistant" if m.role is Role.ASSISTANT else "user"
        blocks = _blocks(m, native, images)
        images += len(m.images)
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"] += blocks
        else:
            turns.append({"role": role, "content": blocks})
    for turn in turns:
        if turn["role"] == "user":
            turn["content"].sort(key=lambda block: "toolResult" not in block)  # stable: order kept
    if turns and turns[0]["role"] == "assistant":
        turns.insert(0, {"role": "user", "content": [{"text": CONTINUED}]})
    return turns


def _blocks(m: Message, native: bool, images_before: int) -> list[dict[str, Any]]:
    """One message's content blocks: images first, then text, then tool uses (thinking is not sent:
    this adapter does not ask Bedrock for reasoning, and a model without it takes none back)."""
    if m.role is Role.TOOL:
        if not native:
            return [{"text": f"[result of tool call {m.tool_call_id}]: {m.text}"}]
        result = {"toolUseId": tool_use_id(m.tool_call_id), "content": [{"text": m.text}]}
        return [{"toolResult": result}]
    blocks = [_image(image, images_before + n + 1) for n, image in enumerate(m.images)]
    if m.text or not (blocks or m.tool_calls):
        blocks.append({"text": m.text})
    for c in m.tool_calls:
        if native:
            use = {"toolUseId": tool_use_id(c.id), "name": c.name, "input": as_object(c.arguments)}
            blocks.append({"toolUse": use})
        else:
            blocks.append({"text": f"[tool call {c.id}: {c.name}({as_text(c.arguments)})]"})
    return blocks


def tool_use_id(call_id: str) -> str:
    """A call's id as Converse takes it (`[A-Za-z0-9_-]{1,64}`): as it is when it fits (Bedrock's
    own `tooluse_...`, OpenAI's and Anthropic's ids), else a digest of it, the same for the call and
    its result, so a conversation begun on another provider goes on here."""
    if _TOOL_USE_ID.fullmatch(call_id):
        return call_id
    return "id_" + hashlib.sha256(call_id.encode()).hexdigest()[:48]


def _image(image: Image, ordinal: int) -> dict[str, Any]:
    """An image as Converse's bytes source; a format or size Converse refuses is refused here,
    before anything is sent, naming the image."""
    if image.data:
        mime, data = image.mime_type, image.data
        encoded = base64.b64encode(data).decode()
    elif image.url.startswith("data:"):
        head, _, encoded = image.url.partition(",")
        mime, _, encoding = head[5:].partition(";")
        if encoding != "base64":
            raise _refused(ordinal, "a data: URL must be base64 (data:image/png;base64,...)")
        try:
            data = base64.b64decode(encoded, validate=True)
        except binascii.Error as exc:
            raise _refused(ordinal, "the data: URL's payload is not valid base64") from exc
    else:  # routing keeps these away (the image_urls need); a deployment claiming otherwise is wrong
        raise _refused(ordinal, "Converse takes image bytes or a data: URL, never an https:// URL")
    image_format = IMAGE_FORMATS.get(mime)
    if image_format is None:
        raise _refused(ordinal, f"format {mime[:40]!r}: Converse takes png, jpeg, gif or webp")
    if len(data) > MAX_IMAGE_BYTES:
        raise _refused(ordinal, f"{len(data)} bytes: Converse takes at most {MAX_IMAGE_BYTES}")
    return {"image": {"format": image_format, "source": {"bytes": encoded}}}


def _refused(ordinal: int, why: str) -> ProviderRejectedError:
    description = f"image {ordinal} of the prompt: {why}"
    return ProviderRejectedError(
        f"bedrock cannot take {description}; nothing was sent",
        metadata={"field": "messages"},
        violations=[FieldViolation("messages", description)],
    )
