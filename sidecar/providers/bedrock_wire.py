"""The Converse request body (the same for ConverseStream): turns, system, inference config, tools
and images, as AWS documents them (bedrock-runtime API reference, Converse).

Tools go in `toolConfig` (`toolSpec` with `inputSchema.json`; `toolChoice` auto / any / tool), a
model's earlier calls back as `toolUse` blocks and the application's results as `toolResult` blocks
of the next user turn. Converse has no "none" tool choice, and a request holding `toolUse` or
`toolResult` blocks must carry a `toolConfig` (ValidationException otherwise): so a call that offers
no tools, or forbids them, sends no `toolConfig` and the history's calls and results as text: the
model sees what happened and cannot call a tool. Converse has no response format for every model:
a call that asks for JSON (json_object, json_schema) gets a tool whose input schema is the response
schema, forced by `toolChoice.tool` (or `any` beside the call's own tools), and its input is the
answer (bedrock_answer.py). Only some models take a forced tool choice (Claude, Nova, Mistral
Large), so a deployment claims json_schema in its `capabilities`. Images go as bytes
(`source.bytes`, base64 in JSON): Converse does not fetch URLs, so routing keeps a call with an
https:// image away from Bedrock (the `image_urls` need, providers/fit.py `needs`).
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
from sidecar.core.types import GenerationParams, Image, Message, Role, ThinkingBlock
from sidecar.providers.base import Capabilities, ProviderRequest, max_tokens_sent, thinking_budget
from sidecar.providers.gemini_wire import is_gemini_block
from sidecar.providers.tool_arguments import as_object, as_text

SUPPORTS = frozenset({"tools", "images"})  # json_schema by a forced tool, where a deployment claims it
IMAGE_FORMATS = {"image/png": "png", "image/jpeg": "jpeg", "image/gif": "gif", "image/webp": "webp"}
MAX_IMAGE_BYTES = 3_932_160  # 3.75 MB: Converse's limit for one image
MAX_IMAGES = 20  # in one request (Converse's ImageBlock)
MAX_IMAGE_SIDE = 8000  # pixels of width or height (likewise)
EMPTY_SCHEMA = '{"type": "object", "properties": {}}'  # a tool without parameters
ANSWER_TOOL = "json_answer"  # a call that asks for JSON gets it as this tool's input
ANSWER_DESCRIPTION = "Give your answer with this tool: its input is the answer, as the schema describes it."
_TOOL_USE_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")  # Converse's toolUseId pattern

# A tool result of whitespace alone, as it goes: Converse refuses a blank text block and a result
# without content.
NO_OUTPUT = "(no output)"
# The user turn put before a prompt that starts with an assistant message (a trimmed or summarized
# conversation): Converse refuses a conversation that does not start with a user message.
CONTINUED = "(The conversation continues.)"


def capabilities(deployment: DeploymentConfig) -> Capabilities:
    """Tools and images (as bytes only: never an https:// URL; Converse's formats, at most 3.75 MB
    and 8000 px a side each, 20 a request), overridable per deployment. Routing sends an image
    Converse cannot take elsewhere."""
    caps = dataclasses.replace(
        Capabilities.of(deployment, SUPPORTS),
        image_urls=False,
        image_formats=frozenset(IMAGE_FORMATS),
        max_image_bytes=MAX_IMAGE_BYTES,
    )
    return caps.limited(deployment, images=MAX_IMAGES, image_side=MAX_IMAGE_SIDE)


def to_wire(req: ProviderRequest, deployment: DeploymentConfig) -> dict[str, Any]:
    """The Converse request body. System messages become `system`; consecutive messages of one role
    become one message with a content block each; a prompt that starts with an assistant message
    gets the user turn CONTINUED before it."""
    p = req.params
    native, answer, budget = native_tools(p), answer_tool(p), thinking_budget(p)
    turns = _turns(req.messages, native, thinking=budget is not None)
    if budget is not None and not _resumes_thinking(turns):  # this call goes without thinking
        budget, turns = None, _turns(req.messages, native, thinking=False)
    body: dict[str, Any] = {"messages": turns}
    system = [{"text": m.text} for m in req.messages if m.role is Role.SYSTEM and m.text.strip()]
    if system:
        body["system"] = system
    config: dict[str, Any] = {"maxTokens": max_tokens_sent(p, deployment)}  # room for thinking too
    if p.temperature is not None and budget is None:  # Claude takes neither with thinking
        config["temperature"] = min(p.temperature, 1.0)  # Converse's range is 0..1
    if p.top_p is not None and budget is None:
        config["topP"] = p.top_p
    if p.stop:
        config["stopSequences"] = list(p.stop)
    body["inferenceConfig"] = config
    if native or answer is not None:
        body["toolConfig"] = _tool_config(p, native, answer, thinking=budget is not None)
    if budget is not None:  # Claude's extended thinking, in the model's own request fields
        body["additionalModelRequestFields"] = {"thinking": {"type": "enabled", "budget_tokens": budget}}
    return body  # `seed` and `parallel_tool_calls` have no Converse equivalent and are not sent


def _resumes_thinking(turns: list[dict[str, Any]]) -> bool:
    """Whether Claude may think in this call: with thinking on, it refuses a last assistant turn of
    tool calls that does not start with its thinking ("a final `assistant` message must start with
    a thinking block"), as a tool loop begun by another provider (a fallback) or without thinking
    has. Such a call is sent without thinking (answered, with no reasoning) instead of refused."""
    said = [t for t in turns if t["role"] == "assistant"]
    if not said or not any("toolUse" in b for b in said[-1]["content"]):
        return True
    return "reasoningContent" in said[-1]["content"][0]


def native_tools(p: GenerationParams) -> bool:
    """Does the request carry a toolConfig (tools offered, and not forbidden by tool choice none)?"""
    return bool(p.tools) and (p.tool_choice is None or p.tool_choice.mode != "none")


def answer_tool(p: GenerationParams) -> str | None:
    """The tool whose input is the answer, for a call that asks for JSON (response_format
    json_object or json_schema); None for a text answer. Named apart from the call's own tools."""
    f = p.response_format
    if f is None or f.kind not in ("json_object", "json_schema"):
        return None
    taken, name = {t.name for t in p.tools}, ANSWER_TOOL
    while name in taken:
        name += "_"
    return name


def _tool_config(p: GenerationParams, native: bool, answer: str | None, *, thinking: bool) -> dict[str, Any]:
    """The call's tools (when native) and the answer tool (when it asks for JSON), with the tool
    choice: the answer tool forced when it is the only one, else any tool (the answer or a call);
    with thinking, auto (Claude forces no tool while it thinks)."""
    tools = (
        [_spec(t.name, t.description, t.parameters_json or EMPTY_SCHEMA) for t in p.tools] if native else []
    )
    choice = p.tool_choice
    config: dict[str, Any] = {"tools": tools}
    if answer is not None:
        tools.append(_spec(answer, ANSWER_DESCRIPTION, _answer_schema(p)))
        if thinking:
            config["toolChoice"] = {"auto": {}}
        elif not native:
            config["toolChoice"] = {"tool": {"name": answer}}
        elif choice is not None and choice.name:
            config["toolChoice"] = {"tool": {"name": choice.name}}
        else:
            config["toolChoice"] = {"any": {}}
    elif choice is not None:
        if choice.name:
            config["toolChoice"] = {"tool": {"name": choice.name}}
        elif choice.mode == "required":
            config["toolChoice"] = {"any": {}}
        else:
            config["toolChoice"] = {"auto": {}}
    return config


def _spec(name: str, description: str, schema_json: str) -> dict[str, Any]:
    schema = {"json": json.loads(schema_json)}
    return {
        "toolSpec": {
            "name": name,
            **({"description": description} if description else {}),
            "inputSchema": schema,
        }
    }


def _answer_schema(p: GenerationParams) -> str:
    """The response schema as the answer tool's input schema: an object at its root, as a tool's
    input is (a JSON object format: any object)."""
    f = p.response_format
    assert f is not None
    if f.kind == "json_object" or not f.schema_json:
        return '{"type": "object"}'
    if json.loads(f.schema_json).get("type", "object") != "object":
        raise ProviderRejectedError(
            "bedrock answers JSON through a tool, whose input is an object: a response schema whose "
            "root is not an object cannot be asked for; nothing was sent",
            metadata={"field": "response_format.json_schema.schema"},
            violations=[FieldViolation("response_format.json_schema.schema", "the root must be an object")],
        )
    return f.schema_json


def _turns(messages: tuple[Message, ...], native: bool, *, thinking: bool) -> list[dict[str, Any]]:
    """Converse wants the roles to alternate, starting with the user, and a user turn's toolResult
    blocks before its other blocks (Claude refuses text before them)."""
    turns: list[dict[str, Any]] = []
    images = 0
    for m in messages:
        if m.role is Role.SYSTEM:
            continue
        role, said = "assistant" if m.role is Role.ASSISTANT else "user", _blocks(m, native, images)
        images += len(m.images)
        if not said:  # an answer with nothing to send (its thinking alone): the turns around it join
            continue
        # first, as they came; a Gemini signature (a fallback between turns) means nothing to Claude
        blocks = [_reasoning(b) for b in m.thinking if not is_gemini_block(b)] if thinking else []
        blocks += said
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"] += blocks
        else:
            turns.append({"role": role, "content": blocks})
    for turn in turns:
        if turn["role"] == "user":
            turn["content"].sort(key=lambda block: "toolResult" not in block)  # stable: order kept
    if not turns or turns[0]["role"] == "assistant":
        turns.insert(0, {"role": "user", "content": [{"text": CONTINUED}]})
    last = turns[-1]["content"]
    if turns[-1]["role"] == "assistant" and "text" in last[-1]:  # Claude refuses a prefill's
        last[-1] = {"text": last[-1]["text"].rstrip()}  # trailing whitespace; it is not blank
    return turns


def _blocks(m: Message, native: bool, images_before: int) -> list[dict[str, Any]]:
    """One message's content blocks: images first, then text, then tool uses."""
    if m.role is Role.TOOL:
        if not native:
            return [{"text": f"[result of tool call {m.tool_call_id}]: {m.text}"}]
        output = m.text if m.text.strip() else NO_OUTPUT  # Converse refuses blank text, and no content
        result = {"toolUseId": tool_use_id(m.tool_call_id), "content": [{"text": output}]}
        return [{"toolResult": result}]
    blocks = [_image(image, images_before + n + 1) for n, image in enumerate(m.images)]
    # Converse refuses a blank text block; a user message has text or images (the edge's rule)
    if m.text.strip() or not (blocks or m.tool_calls or m.role is Role.ASSISTANT):
        blocks.append({"text": m.text})
    for c in m.tool_calls:
        if native:
            use = {"toolUseId": tool_use_id(c.id), "name": c.name, "input": as_object(c.arguments)}
            blocks.append({"toolUse": use})
        else:
            blocks.append({"text": f"[tool call {c.id}: {c.name}({as_text(c.arguments)})]"})
    return blocks


def _reasoning(block: ThinkingBlock) -> dict[str, Any]:
    """A signed thinking block back as it came (Claude refuses a tool loop's turn without it); sent
    only when the call thinks: a model not thinking takes none."""
    if block.redacted:
        return {"reasoningContent": {"redactedContent": block.redacted}}
    return {"reasoningContent": {"reasoningText": {"text": block.text, "signature": block.signature}}}


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
