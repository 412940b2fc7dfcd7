"""The capability fit: what a call needs of a deployment, and what one deployment cannot give it.

Routing (sidecar/routing/plan.py) sends a call only to deployments it fits, and when none fits names
what each one lacks, so an operator can see which deployment to change.
"""

from __future__ import annotations

from sidecar.core.types import GenerationParams, Message
from sidecar.providers.base import Capabilities


def needs(params: GenerationParams, messages: tuple[Message, ...]) -> frozenset[str]:
    """The features a call needs from a deployment: tools, json_schema, images (image_urls when one
    is an https:// URL), reasoning."""
    need: set[str] = set()
    if params.tools or any(m.tool_calls or m.tool_call_id for m in messages):
        need.add("tools")
    # json_object too: a deployment without structured output would get no format at all, and its
    # prose answer would fail the check after the provider was paid
    if params.response_format is not None and params.response_format.kind in ("json_schema", "json_object"):
        need.add("json_schema")
    if any(m.images for m in messages):
        need.add("images")
    if any(i.url.startswith("https://") for m in messages for i in m.images):
        need.add("image_urls")
    if params.reasoning is not None and (params.reasoning.effort or params.reasoning.budget_tokens):
        need.add("reasoning")
    return frozenset(need)


def missing(caps: Capabilities, need: frozenset[str], messages: tuple[Message, ...]) -> list[str]:
    """What a deployment lacks for a call: the features of `need` by name."""
    return caps.lacks(need)
