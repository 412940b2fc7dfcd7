"""The configuration reference, rendered from the pydantic models in sidecar/config (never hand-copied).

`render()` walks the `Config` tree from `settings` and `policy` and writes one section per model
class: every key with its type, default, constraints and description. A model used at several
places (the `redis:` block, secret references) is described once and linked from the others.
"""

from __future__ import annotations

import enum
import json
import re
import types
from dataclasses import dataclass, field
from typing import Any, Literal, Union, get_args, get_origin

import annotated_types as at
from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from sidecar.config.schema import Config

INTRO = """# Configuration reference

Generated from the pydantic models in `sidecar/config/` each time the site is built, so it lists
exactly what `sidecar check-config` accepts. Every model is frozen and rejects unknown keys.
How a file is loaded, the environment overrides and secret references are explained in
[Configuration](../configuration.md); each feature's page explains its section.

A key marked **required** has no default. `<name>` stands for a key you choose (a route alias, a
deployment name, a tenant id); `[]` for an item of a list.
"""


# The page that explains a section (its subsections inherit it).
PAGES = {
    "settings.auth": ("api.md#who-may-call-what", "Who may call what"),
    "settings.admin": ("api.md#who-may-call-what", "Who may call what"),
    "settings.idempotency": ("api.md", "API overview"),
    "settings.keys": ("keys.md", "User-supplied provider keys"),
    "settings.cache": ("cache.md", "Caches"),
    "settings.telemetry": ("observability.md", "Observability"),
    "settings.memory": ("memory.md", "Memory"),
    "policy.deployments.<name>": ("providers.md", "Providers"),
    "policy.routes.<name>": ("routing.md", "Routing"),
    "policy.routing": ("routing.md", "Routing"),
    "policy.tiers.<name>": ("quotas.md", "Quotas and rate limits"),
    "policy.tier_assignment": ("quotas.md", "Quotas and rate limits"),
    "policy.quota": ("quotas.md", "Quotas and rate limits"),
    "policy.personas": ("personas.md", "Personas and Switch"),
    "policy.context": ("context.md", "Context and memory"),
    "policy.embeddings": ("embeddings.md", "Embeddings"),
    "policy.admission": ("admission.md", "Priority and admission"),
    "policy.experiments.<name>": ("experiments.md", "Experiments"),
    "policy.answers": ("answer-policy.md", "Answer policy for creator agents"),
}


def explained_in(path: str) -> tuple[str, str] | None:
    """The page for a section path: its own entry, else its nearest parent's."""
    while path:
        if path in PAGES:
            return PAGES[path]
        path = path.rsplit(".", 1)[0] if "." in path else ""
    return None


@dataclass
class _Section:
    model: type[BaseModel]
    path: str
    other_paths: list[str] = field(default_factory=list)


@dataclass
class _Walk:
    sections: dict[type[BaseModel], _Section] = field(default_factory=dict)
    order: list[type[BaseModel]] = field(default_factory=list)

    def visit(self, model: type[BaseModel], path: str) -> None:
        if model in self.sections:
            self.sections[model].other_paths.append(path)
            return
        self.sections[model] = _Section(model, path)
        self.order.append(model)
        for name, info in model.model_fields.items():
            for child, suffix in _models_in(info.annotation):
                self.visit(child, f"{path}.{name}{suffix}")


def anchor(model: type[BaseModel]) -> str:
    return model.__name__.lower()


def _models_in(annotation: Any, suffix: str = "") -> list[tuple[type[BaseModel], str]]:
    """The models an annotation holds, with the path suffix that leads into each."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel) and annotation is not SecretStr:
        return [(annotation, suffix)]
    origin, args = get_origin(annotation), get_args(annotation)
    if origin in (list, tuple, set, frozenset):
        return [m for arg in args if arg is not Ellipsis for m in _models_in(arg, suffix + "[]")]
    if origin is dict:
        return _models_in(args[1], suffix + ".<name>")
    if origin in (Union, types.UnionType):
        return [m for arg in args for m in _models_in(arg, suffix)]
    return []


def type_name(annotation: Any) -> str:
    """A short, readable rendering of a field's type, with links to the models' sections."""
    if annotation is type(None):
        return "null"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return f"[{annotation.__name__}](#{anchor(annotation)})"
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return " \\| ".join(f"`{m.value}`" for m in annotation)
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Literal:
        return " \\| ".join(f"`{a}`" for a in args)
    if origin in (Union, types.UnionType):
        return " \\| ".join(type_name(a) for a in args)
    if origin in (list, tuple, set, frozenset):
        inner = ", ".join(type_name(a) for a in args if a is not Ellipsis)
        return f"list of {inner}"
    if origin is dict:
        return f"map of {type_name(args[0])} to {type_name(args[1])}"
    return getattr(annotation, "__name__", str(annotation)).replace("|", "\\|")


def default_text(info: FieldInfo) -> str:
    if info.default_factory is not None:
        value = info.default_factory()  # type: ignore[call-arg]
    elif info.default is PydanticUndefined:
        return "**required**"
    else:
        value = info.default
    if isinstance(value, BaseModel):
        dumped = value.model_dump(mode="json", exclude_defaults=True)
        return "defaults" if not dumped else _code(dumped)
    if value is None:
        return "unset"
    if isinstance(value, enum.Enum):
        value = value.value
    return _code(value)


def _code(value: Any) -> str:
    if isinstance(value, dict) and value and all(isinstance(v, BaseModel) for v in value.values()):
        value = {k: v.model_dump(mode="json", exclude_defaults=True) for k, v in value.items()}
    # strings as they are; everything else as YAML writes it (true, false, [], {})
    text = (value or '""') if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)
    text = text.replace("|", "\\|")
    return f"`{text}`" if len(text) <= 60 else f"`{text[:57]}...`"


_BOUNDS = ((at.Ge, "≥", "ge"), (at.Gt, ">", "gt"), (at.Le, "≤", "le"), (at.Lt, "<", "lt"))


def constraints(info: FieldInfo) -> str:
    parts: list[str] = []
    for item in info.metadata:
        for kind, sign, attr in _BOUNDS:
            if isinstance(item, kind):
                parts.append(f"{sign} {getattr(item, attr)}")
        if isinstance(item, at.MinLen):
            parts.append(f"at least {item.min_length} long")
        if isinstance(item, at.MaxLen):
            parts.append(f"at most {item.max_length} long")
        pattern = getattr(item, "pattern", None)
        if isinstance(pattern, str):
            escaped = pattern.replace("|", "\\|")
            parts.append(f"matches `{escaped}`")
    return "; ".join(parts)


def _cell(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().replace("|", "\\|")


def render_section(section: _Section) -> str:
    model = section.model
    lines = [f"## `{section.path}` {{#{anchor(model)}}}", ""]
    doc = (model.__doc__ or "").strip()
    if doc and not doc.startswith(("A base class", "Usage docs:")):
        lines += [_cell(doc.split("\n\n")[0]), ""]
    page = explained_in(section.path)
    if page is not None:
        lines += [f"Explained in [{page[1]}](../{page[0]})."]
        lines.append("")
    if section.other_paths:
        also = ", ".join(f"`{p}`" for p in section.other_paths)
        lines += [f"Model `{model.__name__}`, also at {also}.", ""]
    else:
        lines += [f"Model `{model.__name__}`.", ""]
    lines += ["| key | type | default | constraints | description |", "|---|---|---|---|---|"]
    for name, info in model.model_fields.items():
        key = info.alias or name
        row = [f"`{key}`", type_name(info.annotation), default_text(info), constraints(info)]
        row.append(_cell(info.description or ""))
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


def render() -> str:
    walk = _Walk()
    walk.visit(Config.model_fields["settings"].annotation, "settings")  # type: ignore[arg-type]
    walk.visit(Config.model_fields["policy"].annotation, "policy")  # type: ignore[arg-type]
    toc = [f"- [`{walk.sections[m].path}`](#{anchor(m)})" for m in walk.order]
    body = [render_section(walk.sections[m]) for m in walk.order]
    return "\n".join([INTRO, "## Sections", "", *toc, "", *body])
