"""The answer at the edge: chunks -> stream deltas, and the assembled assistant message.

Tool calls arrive as pieces by index (id and name first, argument text after); pieces of one call
that arrive together go out as one delta. The assembled message has the text as one part, then
the tool calls in index order. Signed thinking blocks (sidecar/core/types.py ThinkingBlock) come
first in the message, whether or not thinking deltas were streamed: the caller sends them back.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sidecar._gen.orchestrator.v1 import generate_pb2 as gen
from sidecar.core.types import Chunk, ThinkingBlock, ToolCallDelta


@dataclass
class _Call:
    id: str = ""
    name: str = ""
    arguments: list[str] = field(default_factory=list)


class Answer:
    """Collects one call's answer; `feed` returns the deltas a stream sends for a chunk."""

    def __init__(self, *, thinking: bool = False) -> None:
        self._thinking = thinking  # the caller asked for thinking deltas
        self._text: list[str] = []
        self._calls: dict[int, _Call] = {}
        self._blocks: list[ThinkingBlock] = []

    @property
    def text(self) -> str:
        return "".join(self._text)

    def feed(self, chunk: Chunk) -> list[gen.StreamGenerateResponse]:
        out: list[gen.StreamGenerateResponse] = []
        self._blocks += chunk.thinking_blocks
        if chunk.thinking and self._thinking:
            out.append(message := gen.StreamGenerateResponse())
            message.delta.thinking = chunk.thinking  # in place: a ContentDelta argument is copied
        if chunk.text:
            self._text.append(chunk.text)
            out.append(message := gen.StreamGenerateResponse())
            message.delta.text = chunk.text
        for delta in _merged(chunk.tool_calls):
            call = self._calls.setdefault(delta.index, _Call())
            call.id = call.id or delta.id
            call.name = call.name or delta.name
            call.arguments.append(delta.arguments)
            wire = gen.ToolCallDelta(
                index=delta.index, id=delta.id, name=delta.name, arguments=delta.arguments
            )
            out.append(gen.StreamGenerateResponse(delta=gen.ContentDelta(tool_call=wire)))
        return out

    def message(self, into: gen.Message | None = None) -> gen.Message:
        """The assistant message, written into `into` (a reply's own field: no copy) or a new one."""
        out = gen.Message() if into is None else into
        out.role = gen.ROLE_ASSISTANT
        for block in self._blocks:
            part = out.content.add().thinking
            part.thinking, part.signature, part.redacted_data = block.text, block.signature, block.redacted
        if self._text:
            out.content.add(text=self.text)
        for index in sorted(self._calls):
            c = self._calls[index]
            call = out.content.add().tool_call
            call.id, call.name, call.arguments = c.id, c.name, "".join(c.arguments)
        return out


def _merged(deltas: tuple[ToolCallDelta, ...]) -> list[ToolCallDelta]:
    """Consecutive pieces of one call joined: one delta per call per chunk."""
    out: list[ToolCallDelta] = []
    for d in deltas:
        if out and out[-1].index == d.index:
            last = out[-1]
            out[-1] = ToolCallDelta(
                d.index, last.id or d.id, last.name or d.name, last.arguments + d.arguments
            )
        else:
            out.append(d)
    return out
