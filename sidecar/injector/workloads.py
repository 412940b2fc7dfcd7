"""`sidecar inject -f`: the webhook's mutation applied to manifests, for GitOps without a webhook.

Every Pod and every workload's pod template (Deployment, StatefulSet, DaemonSet, ReplicaSet, Job,
CronJob, ReplicationController, and the items of a List) goes through the same `decide` and the same
JSON Patch as at admission; other documents pass through unchanged. A rejected template fails the
whole run and nothing is written, so the output is never half injected.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import yaml

from sidecar.injector.mutate import Decision, decide
from sidecar.injector.patch import apply_patch, make_patch
from sidecar.injector.settings import InjectorSettings

Json = dict[str, Any]
TEMPLATE_PATHS: dict[str, tuple[str, ...]] = {
    "Pod": (),
    "Deployment": ("spec", "template"),
    "StatefulSet": ("spec", "template"),
    "DaemonSet": ("spec", "template"),
    "ReplicaSet": ("spec", "template"),
    "ReplicationController": ("spec", "template"),
    "Job": ("spec", "template"),
    "CronJob": ("spec", "jobTemplate", "spec", "template"),
}


class ManifestError(ValueError):
    """A document cannot be read or one of its pods is rejected; nothing is written."""


@dataclass(frozen=True)
class Outcome:
    where: str  # "document 2 Deployment/web"
    decision: Decision


def inject_manifests(text: str, settings: InjectorSettings) -> tuple[str, list[Outcome]]:
    """The manifests with the sidecar injected, and one outcome per pod template seen."""
    try:
        documents = list(yaml.safe_load_all(text))
    except yaml.YAMLError as exc:
        raise ManifestError(f"not YAML: {exc}") from exc
    outcomes: list[Outcome] = []
    out = []
    for index, document in enumerate(documents, start=1):
        if document is None:
            continue
        out.append(_inject_object(document, settings, f"document {index}", outcomes))
    rejected = [o for o in outcomes if o.decision.kind == "rejected"]
    if rejected:
        raise ManifestError("; ".join(f"{o.where}: {o.decision.message}" for o in rejected))
    return yaml.dump_all(out, Dumper=_Dumper, sort_keys=False, default_flow_style=False), outcomes


# Strings that PyYAML writes bare but that a YAML 1.1 reader as kubectl's and the API server's
# (sigs.k8s.io/yaml: y/n are booleans, 1e3 is a number) or a YAML 1.2 one (0o17) reads as another
# type: quoted, so `kubectl apply` gets the manifest's own values back ("y" stayed "y", not true).
_NOT_A_STRING = re.compile(
    r"[yYnN~]|yes|Yes|YES|no|No|NO|on|On|ON|off|Off|OFF|true|True|TRUE|false|False|FALSE|null|Null|NULL"
    r"|[-+]?(\.[0-9_]+|[0-9][0-9_]*(\.[0-9_]*)?)([eE][-+]?[0-9]+)?"
    r"|[-+]?0[xXoObB][0-9a-fA-F_]+|[-+]?\.(inf|Inf|INF)|\.(nan|NaN|NAN)"
    r"|[-+]?[0-9][0-9_]*(:[0-5]?[0-9])+(\.[0-9_]*)?"
)


class _Dumper(yaml.SafeDumper):
    """safe_dump, quoting every string another YAML reader would not read back as that string."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "'" if _NOT_A_STRING.fullmatch(value) else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_str)


def _inject_object(obj: object, settings: InjectorSettings, where: str, outcomes: list[Outcome]) -> object:
    if not isinstance(obj, dict):
        return obj
    kind = obj.get("kind")
    if kind == "List" and isinstance(obj.get("items"), list):
        items = [
            _inject_object(item, settings, f"{where} item {i}", outcomes)
            for i, item in enumerate(obj["items"])
        ]
        return {**obj, "items": items}
    if not isinstance(kind, str) or kind not in TEMPLATE_PATHS:
        return obj
    label = f"{where} {kind}/{_name(obj)}"
    path = TEMPLATE_PATHS[kind]
    template = _get(obj, path)
    if template is None:
        outcomes.append(
            Outcome(label, Decision("rejected", "invalid_pod", f"no pod template at {'.'.join(path)}"))
        )
        return obj
    decision = decide(template, settings, _namespace(obj))
    outcomes.append(Outcome(label, decision))
    if decision.kind != "injected" or decision.pod is None:
        return obj
    pointer = "".join(f"/{p}" for p in path)
    patch = [_under(pointer, op) for op in make_patch(template, decision.pod)]
    return apply_patch(obj, patch)


def _under(pointer: str, op: Json) -> Json:
    """The operation moved under `pointer` (its `path`, and `from` for move and copy)."""
    moved = {**op, "path": pointer + op["path"]}
    if "from" in op:
        moved["from"] = pointer + op["from"]
    return moved


def _get(obj: Json, path: tuple[str, ...]) -> Json | None:
    node: object = obj
    for key in path:
        node = node.get(key) if isinstance(node, dict) else None
    return node if isinstance(node, dict) else None


def _name(obj: Json) -> str:
    metadata = obj.get("metadata")
    return str(metadata.get("name", "")) if isinstance(metadata, dict) else ""


def _namespace(obj: Json) -> str:
    """The namespace the manifest names, or "" (kubectl's own then, not known here)."""
    metadata = obj.get("metadata")
    return str(metadata.get("namespace") or "") if isinstance(metadata, dict) else ""


def pod_templates(text: str) -> Iterator[tuple[str, Json]]:
    """Every (kind, pod template) in the manifests, after injection or not (for tests and checks)."""
    for document in yaml.safe_load_all(text):
        if isinstance(document, dict) and document.get("kind") in TEMPLATE_PATHS:
            template = _get(document, TEMPLATE_PATHS[document["kind"]])
            if template is not None:
                yield document["kind"], template
