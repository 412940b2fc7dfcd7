"""The versioned history record: version 1 records still load; tool calls, tool-result ids and
image references round-trip; inline image bytes are never stored."""

from __future__ import annotations

import json

import pytest

from sidecar.core.types import Image, Message, Role, ThinkingBlock, ToolCall
from sidecar.sessions import records


def test_a_version_1_record_still_loads() -> None:
    assert records.decode('{"r": "user", "t": "hi", "n": "ann"}') == Message(Role.USER, "hi", "ann")
    assert records.decode(b'{"r": "assistant", "t": "hello"}') == Message(Role.ASSISTANT, "hello")


def test_the_whole_exchange_round_trips() -> None:
    messages = [
        Message(Role.ASSISTANT, "checking", tool_calls=(ToolCall("c1", "get_weather", '{"city": "Paris"}'),)),
        Message(
            Role.ASSISTANT,
            "",
            tool_calls=(ToolCall("c2", "get_weather", "{}"),),
            thinking=(ThinkingBlock(text="Paris, then.", signature="EqQB=="), ThinkingBlock(redacted="Emw=")),
        ),
        Message(Role.TOOL, '{"sky": "sunny"}', tool_call_id="c1"),
        Message(
            Role.USER,
            "and this?",
            images=(Image(url="https://x/a.png", mime_type="image/png", width=3, height=4),),
        ),
        Message(Role.USER, "Grüße 🚢", name="ann"),
    ]
    for m in messages:
        raw = records.encode(m)
        assert json.loads(raw)["v"] == records.VERSION
        assert records.decode(raw) == m


def test_inline_image_bytes_become_a_line_of_text_and_are_refused_raw() -> None:
    inline = Image(data=b"\x89PNG" + b"x" * 2000, mime_type="image/png")
    linked = Image(url="https://x/b.png")
    m = Message(Role.USER, "look", images=(inline, linked))
    with pytest.raises(ValueError, match="inline image bytes"):
        records.encode(m)
    kept = records.storable(m)
    assert kept.images == (linked,)
    assert kept.text == "look\n[image/png image of 2,004 bytes, not kept in conversation memory]"
    assert records.decode(records.encode(kept)) == kept
    assert records.storable(Message(Role.USER, "plain")) == Message(Role.USER, "plain")


def test_a_data_url_image_is_inline_bytes_too() -> None:
    """An image sent as a data: URL (up to 8,192 characters at the edge) is its bytes inline: it was
    stored as a reference and re-sent, and re-billed, on every later turn of the conversation."""
    data = "data:image/png;base64," + "iVBORw0KGgo" * 40
    m = Message(Role.USER, "what is this?", images=(Image(url=data, width=20, height=20),))
    kept = records.storable(m)
    assert kept.images == ()
    assert kept.text == "what is this?\n[image/png image of 462 characters, not kept in conversation memory]"
    linked = Image(url="https://example.com/a.png")
    assert records.storable(Message(Role.USER, "x", images=(linked,))).images == (linked,)


def test_a_later_version_is_read_for_the_keys_this_one_knows() -> None:
    raw = json.dumps({"v": 3, "r": "user", "t": "hi", "future": [1, 2]})
    assert records.decode(raw) == Message(Role.USER, "hi")


def _asked(*ids: str, text: str = "") -> Message:
    return Message(Role.ASSISTANT, text, tool_calls=tuple(ToolCall(i, "lookup", "{}") for i in ids))


def _result(call: str) -> Message:
    return Message(Role.TOOL, "found", tool_call_id=call)


def test_replay_keeps_only_the_tool_calls_answered_right_after_them() -> None:
    question, moved_on = Message(Role.USER, "q"), Message(Role.USER, "something else")
    history = (
        question,
        _asked("a1", "a2"),
        _result("a1"),  # a2 was never answered
        Message(Role.ASSISTANT, "done"),
        question,
        _asked("b1", text="Let me look."),  # abandoned, with text: the text stays
        question,
        _asked("c1"),  # abandoned, nothing else: not replayed
        moved_on,
        _asked("d1", "d2"),  # the newest: answered by the results the request starts with
    )
    replayed = records.replayable(history, (_result("d1"), _result("d2")))
    assert replayed == (
        question,
        _asked("a1"),
        _result("a1"),
        Message(Role.ASSISTANT, "done"),
        question,
        Message(Role.ASSISTANT, "Let me look."),
        question,
        moved_on,
        _asked("d1", "d2"),
    )
    assert records.replayable(history, (moved_on,))[-1] == moved_on  # d1, d2 abandoned too
    answered = (question, _asked("a1"), _result("a1"))
    assert records.replayable(answered, ()) == answered
