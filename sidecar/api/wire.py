"""Walking a protobuf request's wire format by its descriptor, without parsing it.

Used before (and after a failed) parse: the path of a string field that is not UTF-8 (the parser only
says the bytes are bad), whole fields none numbered 0, and how many elements a parse would allocate.
8 MiB of tiny repeated messages (two bytes each on the wire) parse into about 4 million arena
messages, some 280 MB, in a sidecar whose container may have 256 MiB: `too_many_elements` finds
such a request first, stopping as soon as the budget is spent. A packed repeated field (numbers or
enums in one length-delimited field, one byte a value at least) counts each of its values: 8 MiB of
them are 8 million values for the servicer to read one by one.
"""

from __future__ import annotations

from collections.abc import Iterator

from google.protobuf.descriptor import Descriptor, FieldDescriptor

_WIRE_VARINT, _WIRE_I64, _WIRE_LEN, _WIRE_SGROUP, _WIRE_EGROUP, _WIRE_I32 = 0, 1, 2, 3, 4, 5
_MAX_DEPTH = 100  # protobuf's own recursion limit
MIN_ELEMENT_BYTES = 1  # a value of a packed repeated field: the least an element takes on the wire
_FIXED_BYTES = {
    FieldDescriptor.TYPE_FIXED32: 4,
    FieldDescriptor.TYPE_SFIXED32: 4,
    FieldDescriptor.TYPE_FLOAT: 4,
    FieldDescriptor.TYPE_FIXED64: 8,
    FieldDescriptor.TYPE_SFIXED64: 8,
    FieldDescriptor.TYPE_DOUBLE: 8,
}
_VARINT_LAST_BYTES = bytes(range(0x80))  # a varint's last byte has no continuation bit


def bad_utf8_field(descriptor: Descriptor, raw: bytes) -> str | None:
    """The path of the first string field of `raw` that is not UTF-8 (`input.messages[2].name`), or None
    when there is none or the wire format is broken before one is found."""
    try:
        return _walk(descriptor, memoryview(raw), "", 0, {})
    except (IndexError, ValueError):
        return None


Counts = dict[tuple[str, int], int]  # elements seen per (path prefix, field number), across the walk


def _walk(descriptor: Descriptor, data: memoryview, prefix: str, depth: int, counts: Counts) -> str | None:
    """`counts` is shared by the whole walk: a singular message sent twice on the wire is one message
    (protobuf merges them), so its repeated fields go on counting (`input.messages[2]`)."""
    if depth > _MAX_DEPTH:
        return None
    for number, body in fields(data):
        field = descriptor.fields_by_number.get(number)
        if body is None or field is None:
            continue
        index = counts.get((prefix, number), 0)
        counts[prefix, number] = index + 1
        found = _check_field(field, body, prefix, index, depth, counts)
        if found is not None:
            return found
    return None


def _check_field(
    field: FieldDescriptor, body: memoryview, prefix: str, index: int, depth: int, counts: Counts
) -> str | None:
    path = f"{prefix}{field.name}"
    is_map = field.message_type is not None and field.message_type.GetOptions().map_entry
    if field.is_repeated and not is_map:
        path += f"[{index}]"
    if field.type == FieldDescriptor.TYPE_STRING:
        try:
            bytes(body).decode("utf-8")
        except UnicodeDecodeError:
            return path
        return None
    if field.type == FieldDescriptor.TYPE_MESSAGE and field.message_type is not None:
        if is_map:
            return path if _walk(field.message_type, body, "", depth + 1, {}) is not None else None
        return _walk(field.message_type, body, path + ".", depth + 1, counts)
    return None


def fields(data: memoryview) -> Iterator[tuple[int, memoryview | None]]:
    """Each top-level field of `data`: its number and, when length-delimited, its body. ValueError or
    IndexError when the bytes are not whole fields, or a field is numbered 0 (never valid)."""
    pos = 0
    while pos < len(data):
        tag, pos = _varint(data, pos)
        number, wire, body = tag >> 3, tag & 7, None
        if number == 0:
            raise ValueError("field number 0")
        if wire == _WIRE_LEN:
            size, pos = _varint(data, pos)
            body, pos = data[pos : pos + size], pos + size
        else:
            pos = _skip(data, pos, wire)
        if pos > len(data):
            raise ValueError("truncated")
        yield number, body


def _varint(data: memoryview, pos: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def _skip(data: memoryview, pos: int, wire: int) -> int:
    if wire == _WIRE_VARINT:
        return _varint(data, pos)[1]
    if wire == _WIRE_I64:
        return pos + 8
    if wire == _WIRE_I32:
        return pos + 4
    raise ValueError(f"wire type {wire} not walked")


def too_many_elements(descriptor: Descriptor, raw: bytes, budget: int) -> str | None:
    """The path of the field where parsing `raw` would pass `budget` elements (messages, and values of
    repeated fields), or None. A request under MIN_ELEMENT_BYTES * budget bytes cannot pass it and is
    not walked; bytes that are not whole fields are left to the parse to refuse."""
    if len(raw) <= MIN_ELEMENT_BYTES * budget:
        return None
    try:
        return _spend(descriptor, memoryview(raw), "", 0, [budget])
    except (IndexError, ValueError):
        return None


def _spend(descriptor: Descriptor, data: memoryview, prefix: str, depth: int, left: list[int]) -> str | None:
    if depth > _MAX_DEPTH:
        return None  # the parse refuses it
    for number, body in fields(data):
        field = descriptor.fields_by_number.get(number)
        if field is None:
            continue  # kept as unknown bytes: no element of its own
        message = field.type == FieldDescriptor.TYPE_MESSAGE and field.message_type is not None
        if not (message or field.is_repeated):
            continue
        left[0] -= _values(field, body) if field.is_repeated and not message else 1
        path = f"{prefix}{field.name}"
        if left[0] < 0:
            return path
        if message and body is not None:
            assert field.message_type is not None
            found = _spend(field.message_type, body, path + ".", depth + 1, left)
            if found is not None:
                return found
    return None


def _values(field: FieldDescriptor, body: memoryview | None) -> int:
    """How many values one occurrence of a repeated field holds: one, or each value of a packed one."""
    if body is None or field.type in (FieldDescriptor.TYPE_STRING, FieldDescriptor.TYPE_BYTES):
        return 1
    if (width := _FIXED_BYTES.get(field.type)) is not None:
        return len(body) // width
    raw = bytes(body)
    return len(raw) - len(raw.translate(None, _VARINT_LAST_BYTES))
