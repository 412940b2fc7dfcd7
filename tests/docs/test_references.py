"""The generated references cover what they are generated from: every config model and key, every
RPC, message, field and enum of the protos, with the comments written there."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest
from pydantic import BaseModel

import sidecar.config
from scripts.docgen import api_reference, config_reference
from tests.docs.blocks import ROOT
from tests.support.kms import component_missing

BUF = ROOT / "tools" / "node_modules" / ".bin" / "buf"


def config_models() -> list[type[BaseModel]]:
    found: dict[str, type[BaseModel]] = {}
    for info in pkgutil.iter_modules(sidecar.config.__path__, "sidecar.config."):
        module = importlib.import_module(info.name)
        for name, obj in inspect.getmembers(module, inspect.isclass):
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
