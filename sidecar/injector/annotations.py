"""The per-pod annotations under `orchestrator.sidecar/` and their accepted values.

Every annotation with the prefix must be a known one with a valid value: a typo or an unknown value
is refused with a message naming the annotation and the accepted values, never silently ignored.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TypeVar

from sidecar.injector.settings import (
    DNS_SUBDOMAIN,
    QUANTITY,
    InjectorSettings,
    LogLevel,
    Mode,
    Transport,
    over_limit,
)

PREFIX = "orchestrator.sidecar/"
INJECT = PREFIX + "inject"
STATUS = PREFIX + "status"  # written by the injector: the pod already has the sidecar
CONFIG = PREFIX + "config"
TRANSPORT = PREFIX + "transport"
LOG_LEVEL = PREFIX + "log-level"
MODE = PREFIX + "mode"
CPU_REQUEST = PREFIX + "cpu-request"
MEMORY_REQUEST = PREFIX + "memory-request"
CPU_LIMIT = PREFIX + "cpu-limit"
MEMORY_LIMIT = PREFIX + "memory-limit"
KNOWN = (
    INJECT,
    STATUS,
    CONFIG,
    TRANSPORT,
    LOG_LEVEL,
    MODE,
    CPU_REQUEST,
    MEMORY_REQUEST,
    CPU_LIMIT,
    MEMORY_LIMIT,
)
INJECTED = "injected"

_T = TypeVar("_T")
_S = TypeVar("_S", bound=str)

_BOOL = {"true": True, "false": False}
_TRANSPORTS: tuple[Transport, ...] = ("unix", "tcp")
_MODES: tuple[Mode, ...] = ("native", "classic")
_LEVELS: tuple[LogLevel, ...] = ("DEBUG", "INFO", "WARNING", "ERROR")


class AnnotationError(ValueError):
    """An annotation under the prefix that is unknown or has a value outside its accepted set."""

    def __init__(self, annotation: str, message: str) -> None:
        super().__init__(f"annotation {annotation}: {message}")
        self.annotation = annotation


@dataclass(frozen=True)
class PodOptions:
    """The injection asked for by one pod: the chart's defaults overridden by its annotations."""

    inject: bool
    config_map: str
    transport: Transport
    log_level: LogLevel
    mode: Mode
    requests: tuple[tuple[str, str], ...]  # (resource, quantity), by resource name
    limits: tuple[tuple[str, str], ...]


def wants_injection(annotations: Mapping[str, str], settings: InjectorSettings) -> bool:
    """Whether the pod asks for the sidecar (only the inject annotation, validated)."""
    raw = annotations.get(INJECT)
    if raw is None:
        return settings.inject_by_default
    return _choice(INJECT, raw.strip().lower(), _BOOL)


def already_injected(annotations: Mapping[str, str]) -> bool:
    return annotations.get(STATUS) == INJECTED


def parse_options(annotations: Mapping[str, str], settings: InjectorSettings) -> PodOptions:
    """The pod's options; raises AnnotationError for the first unknown annotation or value."""
    for name in sorted(annotations):
        if name.startswith(PREFIX) and name not in KNOWN:
            raise AnnotationError(name, f"unknown annotation; known ones: {', '.join(KNOWN)}")
    r, limits = settings.resources.requests, settings.resources.limits
    options = PodOptions(
        inject=wants_injection(annotations, settings),
        config_map=settings.config_map,
        transport=settings.transport,
        log_level=settings.log_level,
        mode=settings.mode,
        requests=_sorted(r.given()),
        limits=_sorted(limits.given()),
    )
    return _override(options, annotations)


def _override(options: PodOptions, a: Mapping[str, str]) -> PodOptions:
    if (v := a.get(CONFIG)) is not None:
        if not re.match(DNS_SUBDOMAIN, v) or len(v) > 253:
            raise AnnotationError(CONFIG, f"{v!r} is not a ConfigMap name (lowercase DNS subdomain)")
        options = replace(options, config_map=v)
    if (v := a.get(TRANSPORT)) is not None:
        options = replace(options, transport=_choice(TRANSPORT, v.strip().lower(), _named(_TRANSPORTS)))
    if (v := a.get(LOG_LEVEL)) is not None:
        options = replace(options, log_level=_choice(LOG_LEVEL, v.strip().upper(), _named(_LEVELS)))
    if (v := a.get(MODE)) is not None:
        options = replace(options, mode=_choice(MODE, v.strip().lower(), _named(_MODES)))
    requests, limits = dict(options.requests), dict(options.limits)
    for name, target, resource in (
        (CPU_REQUEST, requests, "cpu"),
        (MEMORY_REQUEST, requests, "memory"),
        (CPU_LIMIT, limits, "cpu"),
        (MEMORY_LIMIT, limits, "memory"),
    ):
        if (v := a.get(name)) is not None:
            if not re.match(QUANTITY, v.strip()):
                raise AnnotationError(name, f"{v!r} is not a Kubernetes quantity (e.g. 100m, 128Mi)")
            target[resource] = v.strip()
    if resource := over_limit(requests, limits):
        # the API server would refuse the pod for a field the application never wrote
        raise _over_limit(resource, requests[resource], limits[resource], a)
    return replace(options, requests=_sorted(requests), limits=_sorted(limits))


def _over_limit(resource: str, request: str, limit: str, a: Mapping[str, str]) -> AnnotationError:
    asked, capped = PREFIX + f"{resource}-request", PREFIX + f"{resource}-limit"
    named = asked if asked in a else capped
    return AnnotationError(
        named,
        f"{a[named].strip()} puts the sidecar's {resource} request {request} above its limit {limit} "
        f"(set {asked} and {capped} together, or change the chart's sidecar.resources)",
    )


def _choice(annotation: str, value: str, accepted: Mapping[str, _T]) -> _T:
    if value not in accepted:
        raise AnnotationError(annotation, f"{value!r} is not one of {', '.join(accepted)}")
    return accepted[value]


def _named(values: tuple[_S, ...]) -> dict[str, _S]:
    return {v: v for v in values}


def _sorted(quantities: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(quantities.items()))
