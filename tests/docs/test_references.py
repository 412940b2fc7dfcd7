"""The generated references cover what they are generated from: every config model and key, every
RPC, message, field and enum of the protos, with the comments written there."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re

import pytest
from pydantic import BaseModel

import sidecar.config
from scripts.docgen import api_reference, config_reference
from sidecar.config.model import ConfigModel
from tests.docs.blocks import ROOT
from tests.support.kms import component_missing

BUF = ROOT / "tools" / "node_modules" / ".bin" / "buf"


def config_models() -> list[type[BaseModel]]:
    found: dict[str, type[BaseModel]] = {}
    for info in pkgutil.iter_modules(sidecar.config.__path__, "sidecar.config."):
        module = importlib.import_module(info.name)
        for name, obj in inspect.getmembers(module, inspect.isclass):
            if obj is ConfigModel:  # the base of every model: no keys of its own
                continue
            if issubclass(obj, BaseModel) and obj.__module__ == info.name and not name.startswith("_"):
                found[f"{info.name}.{name}"] = obj
    return list(found.values())


def test_the_config_reference_has_every_model_and_key() -> None:
    page = config_reference.render()
    models = [m for m in config_models() if m.__name__ != "Config"]
    assert len(models) > 40
    for model in models:
        section = page.split(f"{{#{config_reference.anchor(model)}}}", 1)
        assert len(section) == 2, f"{model.__name__} has no section"
        body = section[1].split("\n## ", 1)[0]
        for name, info in model.model_fields.items():
            assert f"| `{info.alias or name}` |" in body, f"{model.__name__}.{name} is missing"


def test_the_config_reference_shows_defaults_bounds_and_descriptions() -> None:
    page = config_reference.render()
    assert "| `address` | str | `127.0.0.1:50051` | matches" in page
    assert "| `shutdown_grace_seconds` | float | `10.0` | ≥ 0; ≤ 600 |" in page
    assert "| `default_route` | str | **required** |" in page
    assert "cap on an upstream Retry-After" in page  # a Field description


@pytest.fixture(scope="module")
def api_page() -> str:
    if not BUF.is_file():
        component_missing(f"buf is not installed at {BUF} (make setup installs it)")
    return api_reference.render(api_reference.build_descriptor_set(BUF, ROOT / "proto"))


def test_the_api_reference_has_every_rpc_message_and_field(api_page: str) -> None:
    from google.protobuf import descriptor_pb2

    raw = api_reference.build_descriptor_set(BUF, ROOT / "proto")
    files = descriptor_pb2.FileDescriptorSet.FromString(raw).file
    assert files and all(f.package == "orchestrator.v1" for f in files)
    for file in files:
        for service in file.service:
            for method in service.method:
                assert f"#### {service.name}.{method.name}\n" in api_page
        for message in file.message_type:
            assert f"#### {message.name} {{#" in api_page
            for field in message.field:
                assert f"| `{field.name}` = {field.number} |" in api_page


def test_the_api_reference_carries_the_proto_comments(api_page: str) -> None:
    generation = (ROOT / "proto" / "orchestrator" / "v1" / "generation_service.proto").read_text()
    assert "Generates a complete answer." in generation
    assert "Generates a complete answer." in api_page
    assert "Reasons: INVALID_REQUEST" in api_page


def _field_model(annotation: object, segment: str) -> object:
    """The type a path segment leads to: a model's field, or a map's value for `<placeholder>`."""
    import types
    import typing

    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return next(r for a in args if (r := _field_model(a, segment)) is not None) if args else None
    if segment.startswith("<"):
        return args[1] if origin is dict else None
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        field = annotation.model_fields.get(segment)
        return field.annotation if field is not None else None
    return None


def _resolves(root: type[BaseModel], path: str) -> bool:
    node: object = root
    for segment in path.split("."):
        node = _field_model(node, segment)
        if node is None:
            return False
    return True


def test_the_configuration_tables_name_only_real_keys() -> None:
    """The hand-written summary tables of docs/configuration.md cannot drift from the models."""
    from sidecar.config.schema import Policy, Settings

    page = (ROOT / "docs" / "configuration.md").read_text()
    tables = {"`settings` (restart to change):": Settings, "`policy`:": Policy}
    wrong: list[str] = []
    checked = 0
    for name, root in tables.items():
        table = page.split(f"\n{name}\n", 1)[1].split("\n\n", 1)[0]
        for row in table.splitlines()[1:]:
            keys = re.findall(r"`([^`]+)`", row.split(" | ")[0])
            if not keys or set(row) <= set("|-"):
                continue
            parent = keys[0].rsplit(".", 1)[0] if "." in keys[0] else ""
            for key in keys:
                absolute = key.split(".")[0] in root.model_fields or key.startswith("<")
                path = key if absolute or not parent else f"{parent}.{key}"
                checked += 1
                if not _resolves(root, path):
                    wrong.append(f"{root.__name__}: {path}")
    assert checked > 40
    assert not wrong, f"docs/configuration.md names keys the models do not have: {wrong}"


def test_the_cli_reference_has_every_command_and_option() -> None:
    from scripts.docgen import cli_reference

    page = cli_reference.render()
    names = [name for name, _ in cli_reference.commands(cli_reference._parser(), "sidecar")]
    assert {"sidecar serve", "sidecar check-config", "sidecar chat", "sidecar keys rotate"} <= set(names)
    for name in names:
        assert f"## `{name}`\n" in page
    for option in ("--target", "--per-second", "--config", "--token-env"):
        assert option in page
