"""The request's priority and experiment-variant override at the edge: GenerationInput.priority and
.experiment_variant, reconciled with the metadata labels older callers set (`priority`,
`experiment_variant`): either may be given; both given must agree."""

from __future__ import annotations

import re
from collections.abc import Callable

from sidecar._gen.orchestrator.v1 import generate_pb2 as gen
from sidecar._gen.orchestrator.v1 import priority_pb2
from sidecar.core.priority import PRIORITY_METADATA_KEY, Priority, parse_priority, priority_from_metadata
from sidecar.experiments.assign import VARIANT_METADATA_KEY

Bad = Callable[[str, str], None]
VARIANT = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}")
_LEVELS = {
    priority_pb2.PRIORITY_LOW: Priority.LOW,
    priority_pb2.PRIORITY_NORMAL: Priority.NORMAL,
    priority_pb2.PRIORITY_HIGH: Priority.HIGH,
    priority_pb2.PRIORITY_URGENT: Priority.URGENT,
    priority_pb2.PRIORITY_CRITICAL: Priority.CRITICAL,
}
TO_PROTO = {level: value for value, level in _LEVELS.items()}


def request_priority(req: gen.GenerationInput, bad: Bad) -> Priority:
    """The level the request asks for (before the tier's cap): `priority`, else the metadata label,
    else NORMAL. A violation is reported through `bad` (field names relative to the input)."""
    labelled = priority_from_metadata(req.metadata, bad)
    if req.priority == priority_pb2.PRIORITY_UNSPECIFIED:
        return labelled
    level = _LEVELS.get(req.priority)
    if level is None:
        bad(
            "priority",
            "one of PRIORITY_LOW, PRIORITY_NORMAL, PRIORITY_HIGH, PRIORITY_URGENT, PRIORITY_CRITICAL",
        )
        return Priority.NORMAL
    raw = req.metadata.get(PRIORITY_METADATA_KEY)
    if raw is not None and parse_priority(raw) not in (None, level):
        bad("priority", f"differs from metadata[{PRIORITY_METADATA_KEY}]: set one of them")
    return level


def requested_variant(req: gen.GenerationInput, bad: Bad) -> str:
    """The variant `experiment_variant` names ("" = none); whether the route's experiment has it is
    the experiment layer's check."""
    named = req.experiment_variant
    if not named:
        return ""
    if not VARIANT.fullmatch(named):
        bad("experiment_variant", "at most 64 of letters, digits and _.- starting with a letter or digit")
        return ""
    labelled = req.metadata.get(VARIANT_METADATA_KEY)
    if labelled is not None and labelled != named:
        bad("experiment_variant", f"differs from metadata[{VARIANT_METADATA_KEY}]: set one of them")
    return named
