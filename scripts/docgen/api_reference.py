"""The API reference, rendered from the comments in proto/ (never hand-copied).

`buf build --as-file-descriptor-set` keeps the source info (the comments) unless told
`--exclude-source-info`; `render(descriptor_set_bytes)` turns it into one Markdown page: each
service with its RPCs, then each message and enum with every field and value, in file order.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path

from google.protobuf import descriptor_pb2 as d

INTRO = """# API reference

Generated from `proto/orchestrator/v1/` (the comments of each service, RPC, message, field and
enum) each time the site is built. The [API overview](../api.md) explains the shared ideas
(the generation input, money, pagination, idempotent retries, who may call what);
[Errors](../errors.md) lists every `ErrorInfo.reason`.
"""

_SCALARS = {
    d.FieldDescriptorProto.TYPE_DOUBLE: "double",
    d.FieldDescriptorProto.TYPE_FLOAT: "float",
    d.FieldDescriptorProto.TYPE_INT64: "int64",
    d.FieldDescriptorProto.TYPE_UINT64: "uint64",
    d.FieldDescriptorProto.TYPE_INT32: "int32",
    d.FieldDescriptorProto.TYPE_FIXED64: "fixed64",
    d.FieldDescriptorProto.TYPE_FIXED32: "fixed32",
    d.FieldDescriptorProto.TYPE_BOOL: "bool",
    d.FieldDescriptorProto.TYPE_STRING: "string",
    d.FieldDescriptorProto.TYPE_BYTES: "bytes",
    d.FieldDescriptorProto.TYPE_UINT32: "uint32",
    d.FieldDescriptorProto.TYPE_SFIXED32: "sfixed32",
    d.FieldDescriptorProto.TYPE_SFIXED64: "sfixed64",
    d.FieldDescriptorProto.TYPE_SINT32: "sint32",
    d.FieldDescriptorProto.TYPE_SINT64: "sint64",
}
# Paths into FileDescriptorProto / DescriptorProto (descriptor.proto field numbers).
_MESSAGE, _ENUM, _SERVICE = 4, 5, 6
_FIELD, _NESTED, _NESTED_ENUM, _VALUE, _METHOD = 2, 3, 4, 2, 2


def build_descriptor_set(buf: Path, proto_dir: Path) -> bytes:
    """The protos compiled by buf, with comments (source info) and without their imports."""
    out = subprocess.run(
        [str(buf), "build", str(proto_dir), "--as-file-descriptor-set", "--exclude-imports", "-o", "-"],
        check=True,
        capture_output=True,
    )
    return out.stdout


class _Comments:
    def __init__(self, file: d.FileDescriptorProto) -> None:
        self._by_path = {tuple(loc.path): loc for loc in file.source_code_info.location}

    def __call__(self, path: Sequence[int]) -> str:
        loc = self._by_path.get(tuple(path))
        if loc is None:
            return ""
        text = loc.leading_comments or loc.trailing_comments
        return "\n".join(line.strip() for line in text.strip().splitlines())


def anchor(full_name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", full_name.lower()).strip("-")


def _type_link(full_name: str, local: set[str]) -> str:
    name = full_name.lstrip(".")
    short = name.removeprefix("orchestrator.v1.")
    return f"[`{short}`](#{anchor(name)})" if name in local else f"`{name}`"


def _field_type(f: d.FieldDescriptorProto, local: set[str], maps: dict[str, d.DescriptorProto]) -> str:
    if f.type_name and f.type_name.lstrip(".") in maps:
        entry = maps[f.type_name.lstrip(".")]
        key, value = (_field_type(x, local, maps) for x in entry.field)
        return f"map<{key}, {value}>"
    base = _type_link(f.type_name, local) if f.type_name else f"`{_SCALARS[f.type]}`"
    if f.label == d.FieldDescriptorProto.LABEL_REPEATED:
        return f"repeated {base}"
    return f"optional {base}" if f.proto3_optional else base


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _walk_messages(
    package: str, messages: Sequence[d.DescriptorProto], path: tuple[int, ...], kind: int
) -> Iterator[tuple[str, d.DescriptorProto, tuple[int, ...]]]:
    for i, message in enumerate(messages):
        name = f"{package}.{message.name}"
        here = (*path, kind, i)
        yield name, message, here
        yield from _walk_messages(name, message.nested_type, here, _NESTED)


def _walk_enums(
    package: str, file: d.FileDescriptorProto
) -> Iterator[tuple[str, d.EnumDescriptorProto, tuple[int, ...]]]:
    for i, e in enumerate(file.enum_type):
        yield f"{package}.{e.name}", e, (_ENUM, i)
    for name, message, path in _walk_messages(package, file.message_type, (), _MESSAGE):
        for j, e in enumerate(message.enum_type):
            yield f"{name}.{e.name}", e, (*path, _NESTED_ENUM, j)


def _service(file: d.FileDescriptorProto, comments: _Comments, local: set[str]) -> list[str]:
    out: list[str] = []
    for i, service in enumerate(file.service):
        full = f"{file.package}.{service.name}"
        out += [f"### {service.name} {{#{anchor(full)}}}", "", comments((_SERVICE, i)), ""]
        for j, method in enumerate(service.method):
            stream = "stream " if method.server_streaming else ""
            request = _type_link(method.input_type, local)
            response = _type_link(method.output_type, local)
            out += [f"#### {service.name}.{method.name}", "", f"{request} → {stream}{response}", ""]
            out += [comments((_SERVICE, i, _METHOD, j)), ""]
    return out


_Context = tuple[_Comments, set[str], dict[str, d.DescriptorProto]]


def _message(name: str, m: d.DescriptorProto, path: tuple[int, ...], ctx: _Context) -> list[str]:
    comments, local, maps = ctx
    short = name.removeprefix("orchestrator.v1.")
    out = [f"#### {short} {{#{anchor(name)}}}", "", comments(path), ""]
    if not m.field:
        return out
    out += ["| field | type | description |", "|---|---|---|"]
    for k, f in enumerate(m.field):
        oneof = ""
        if f.HasField("oneof_index") and not f.proto3_optional:
            oneof = f" (oneof `{m.oneof_decl[f.oneof_index].name}`)"
        text = _cell(comments((*path, _FIELD, k)))
        out.append(f"| `{f.name}` = {f.number} | {_field_type(f, local, maps)}{oneof} | {text} |")
    return [*out, ""]


def _enum(name: str, e: d.EnumDescriptorProto, path: tuple[int, ...], comments: _Comments) -> list[str]:
    short = name.removeprefix("orchestrator.v1.")
    out = [f"#### {short} {{#{anchor(name)}}}", "", comments(path), "", "| value | number | description |"]
    out.append("|---|---|---|")
    for k, v in enumerate(e.value):
        out.append(f"| `{v.name}` | {v.number} | {_cell(comments((*path, _VALUE, k)))} |")
    return [*out, ""]


def render(descriptor_set: bytes) -> str:
    files = d.FileDescriptorSet.FromString(descriptor_set).file
    local: set[str] = set()
    maps: dict[str, d.DescriptorProto] = {}
    for file in files:
        for name, message, _ in _walk_messages(file.package, file.message_type, (), _MESSAGE):
            (maps if message.options.map_entry else {})[name] = message
            local.add(name)
        local.update(name for name, _, _ in _walk_enums(file.package, file))
    services: list[str] = []
    types: list[str] = []
    for file in sorted(files, key=lambda f: f.name):
        comments = _Comments(file)
        services += _service(file, comments, local)
        body: list[str] = []
        for name, message, path in _walk_messages(file.package, file.message_type, (), _MESSAGE):
            if not message.options.map_entry:
                body += _message(name, message, path, (comments, local, maps))
        for name, e, path in _walk_enums(file.package, file):
            body += _enum(name, e, path, comments)
        if body:
            types += [f"### `{file.name}`", "", *body]
    return "\n".join([INTRO, "## Services", "", *services, "## Messages and enums", "", *types]) + "\n"
