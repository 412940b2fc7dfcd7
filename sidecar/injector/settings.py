"""What the chart configures for every injected pod, read from one YAML file (the injector's ConfigMap)."""

from __future__ import annotations

import logging
import math
import posixpath
import re
from decimal import Decimal
from pathlib import Path, PurePosixPath
from typing import Annotated, Literal

import yaml
from pydantic import BeforeValidator, ConfigDict, Field, ValidationError, field_validator, model_validator

from sidecar.config.model import ConfigModel

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]
Mode = Literal["native", "classic"]
Transport = Literal["unix", "tcp"]
# A Kubernetes resource quantity (`100m`, `128Mi`, `1.5`, `2e3`).
QUANTITY = r"^[+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei|[eE][+-]?[0-9]+)?$"
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"  # RFC 1123
ENV_NAME = r"^[-._a-zA-Z][-._a-zA-Z0-9]*$"
# The sidecar container's own mounts: its config (a ConfigMap, read-only) and its working directory.
CONFIG_DIR = "/etc/orchestrator-sidecar"
STATE_DIR = "/var/lib/orchestrator-sidecar"  # the ledger and key store files


class SecretKey(ConfigModel):
    """One key of an existing Secret: the injector never sees its value."""

    name: str = Field(pattern=DNS_SUBDOMAIN, max_length=253)
    key: str = Field(pattern=r"^[-._a-zA-Z0-9]+$", max_length=253)


_FACTORS = {
    "": Decimal(1),
    "m": Decimal("0.001"),
    **{s: Decimal(1000) ** (i + 1) for i, s in enumerate("kMGTPE")},
    **{s + "i": Decimal(1024) ** (i + 1) for i, s in enumerate("KMGTPE")},
}


def quantity_value(text: str) -> Decimal:
    """The amount a Kubernetes quantity (matching QUANTITY) stands for: `100m` 0.1, `1Ki` 1024."""
    match = re.fullmatch(QUANTITY, text.strip())
    if match is None:
        raise ValueError(f"{text!r} is not a Kubernetes quantity")
    number, suffix = match.group(1), match.group(3) or ""
    if suffix in _FACTORS:
        return Decimal(number) * _FACTORS[suffix]
    return Decimal(number) * Decimal(10) ** int(suffix[1:])  # e3, E-2


def quantity_text(amount: Decimal) -> str:
    """An amount as a Kubernetes quantity, as a person writes it: millicores below a whole unit
    (the API server's finest), else the largest binary suffix that divides it, else plain."""
    if amount != amount.to_integral_value():
        return f"{math.ceil(amount * 1000)}m"
    whole = int(amount)
    for power, suffix in ((5, "Pi"), (4, "Ti"), (3, "Gi"), (2, "Mi"), (1, "Ki")):
        if whole and whole % 1024**power == 0:
            return f"{whole // 1024**power}{suffix}"
    return str(whole)


def over_limit(requests: dict[str, str], limits: dict[str, str]) -> str:
    """The first resource whose request is above its limit (the API server refuses such a pod), or ""."""
    for resource in sorted(requests.keys() & limits.keys()):
        if quantity_value(requests[resource]) > quantity_value(limits[resource]):
            return resource
    return ""


def _number_as_text(value: object) -> object:
    """A quantity written as a YAML number (`cpu: 1`, `memory: 536870912`), as Kubernetes takes it."""
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return str(value)
    return value


Quantity = Annotated[str, BeforeValidator(_number_as_text), Field(pattern=QUANTITY)]


class Quantities(ConfigModel):
    model_config = ConfigDict(**ConfigModel.model_config, populate_by_name=True)  # ephemeral_storage too

    cpu: Quantity | None = None
    memory: Quantity | None = None
    # the ledger's SQLite file and the key store files live in an emptyDir: node disk
    ephemeral_storage: Quantity | None = Field(default=None, alias="ephemeral-storage")

    def given(self) -> dict[str, str]:
        """The quantities set, by their Kubernetes resource names."""
        named = (("cpu", self.cpu), ("memory", self.memory), ("ephemeral-storage", self.ephemeral_storage))
        return {k: v for k, v in named if v is not None}


class Resources(ConfigModel):
    requests: Quantities = Quantities(cpu="50m", memory="96Mi")
    limits: Quantities = Quantities(memory="256Mi")

    @model_validator(mode="after")
    def _requests_within_limits(self) -> Resources:
        if resource := over_limit(self.requests.given(), self.limits.given()):
            raise ValueError(
                f"the {resource} request is above its limit: every injected pod would be refused"
            )
        return self


class InjectorSettings(ConfigModel):
    """The sidecar container every injected pod gets, and how the application finds it."""

    image: str = Field(min_length=1, max_length=512)
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] = "IfNotPresent"
    container_name: str = Field(default="orchestrator-sidecar", pattern=DNS_LABEL, max_length=63)
    mode: Mode = "native"
    transport: Transport = "unix"
    log_level: LogLevel = "INFO"
    config_map: str = Field(pattern=DNS_SUBDOMAIN, max_length=253, description="holds the sidecar's YAML")
    config_key: str = Field(default="sidecar.yaml", pattern=r"^[-._a-zA-Z0-9]+$")
    config_namespaces: tuple[Annotated[str, Field(pattern=DNS_LABEL, max_length=63)], ...] | None = Field(
        default=None, description="the namespaces holding config_map (the chart's); None: not known"
    )
    token_secret: SecretKey | None = None
    provider_secrets: tuple[str, ...] = Field(default=(), description="Secrets exposed as env (envFrom)")
    grpc_port: int = Field(default=50051, ge=1, le=65535)
    health_port: int = Field(default=9464, ge=1, le=65535, description="/metrics, /livez, /readyz")
    socket_dir: str = Field(  # with "/sidecar.sock", at most the 107 bytes of a Unix socket path
        default="/var/run/orchestrator-sidecar", pattern=r"^/[^:]*$", max_length=94
    )
    drain_seconds: int = Field(default=10, ge=0, le=600, description="the sidecar's shutdown grace")
    pre_stop_seconds: int = Field(default=5, ge=0, le=600, description="classic mode: wait before SIGTERM")
    resources: Resources = Resources()
    run_as_user: int = Field(default=65532, ge=1)
    address_env: str = Field(default="ORCHESTRATOR_SIDECAR_ADDRESS", pattern=ENV_NAME)
    token_env: str = Field(default="ORCHESTRATOR_SIDECAR_TOKEN", pattern=ENV_NAME)
    prometheus_annotations: bool = True
    inject_by_default: bool = False

    @field_validator("socket_dir")
    @classmethod
    def _apart_from_own_mounts(cls, value: str) -> str:
        """The socket's emptyDir may not be one of the sidecar's other mounts (the API server refuses
        a duplicate mountPath), inside one, or above one (it would hide the config, or the image's
        /etc)."""
        wanted = PurePosixPath(posixpath.normpath("/" + value.lstrip("/")))
        for own in (CONFIG_DIR, STATE_DIR):
            mount = PurePosixPath(own)
            if wanted == mount or wanted in mount.parents or mount in wanted.parents:
                raise ValueError(f"{value} overlaps the sidecar's own mount {own}: choose another directory")
        return value

    @model_validator(mode="after")
    def _two_ports(self) -> InjectorSettings:
        # the sidecar binds both (gRPC on loopback, health on every address): one port for both and
        # every injected sidecar exits at start with "address already in use"
        if self.grpc_port == self.health_port:
            raise ValueError(f"grpc_port and health_port are both {self.grpc_port}: the sidecar binds both")
        # one name for both: the application gets the variable twice, and the later one (the token)
        # hides the address
        if self.address_env == self.token_env:
            raise ValueError(f"address_env and token_env are both {self.address_env}: name them apart")
        return self


_FIELDS = frozenset(InjectorSettings.model_fields)
_log = logging.getLogger("sidecar.injector")


class SettingsError(Exception):
    """The injector's settings file is missing or invalid; lists every problem."""


def load_settings(path: Path) -> InjectorSettings:
    """The settings in `path`. A top-level key this version does not know is ignored with a warning
    naming it: a `helm upgrade` rewrites the ConfigMap under the injector pods still running the
    previous version, and one of them restarting (liveness, OOM) read a later chart's key and exited,
    a crash loop that left no injector at all when the new version's pods could not start."""
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise SettingsError(f"{path}: {exc}") from exc
    if isinstance(raw, dict) and (unknown := sorted(str(k) for k in raw if k not in _FIELDS)):
        ignored = ", ".join(unknown)
        _log.warning(
            f"{path}: settings this version does not know, ignored: {ignored}", extra={"ignored": ignored}
        )
        raw = {k: v for k, v in raw.items() if k in _FIELDS}
    try:
        return InjectorSettings.model_validate(raw if raw is not None else {})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or '(root)'}: {e['msg']}" for e in exc.errors())
        raise SettingsError(f"{path}: {problems}") from exc
