"""Key RPCs at the edge: validate RegisterKey/ListKeys/DeleteKey requests, records -> KeyInfo."""

from __future__ import annotations

import re

from google.protobuf import timestamp_pb2

from sidecar._gen.orchestrator.v1 import keys_pb2
from sidecar.api.convert import KEY_REF, Violations
from sidecar.keys.backend import USER_KEY_PROVIDERS, KeyContext
from sidecar.keys.store import KeyRecord

_PRINTABLE = re.compile(r"[\x21-\x7e]+")
PROVIDERS = USER_KEY_PROVIDERS
MAX_API_KEY_CHARS = 4096


def register_context(req: keys_pb2.RegisterKeyRequest) -> tuple[KeyContext, bytes]:
    """The owner context and the key bytes of a RegisterKey request; every violation at once."""
    bad = Violations()
    bad.check_id("tenant_id", req.tenant_id, required=True)
    bad.check_id("user_id", req.user_id, required=True)
    if req.provider not in PROVIDERS:
        bad.add("provider", f"one of {', '.join(PROVIDERS)}")
    name = req.key_name or "default"
    bad.check_id("key_name", name)
    if not req.api_key:
        bad.add("api_key", "required")
    elif len(req.api_key) > MAX_API_KEY_CHARS or not _PRINTABLE.fullmatch(req.api_key):
        bad.add("api_key", "printable ASCII without spaces, at most 4096 characters")
    bad.raise_if_any()
    return KeyContext(req.tenant_id, req.user_id, req.provider, name), req.api_key.encode()


def list_owner(
    req: keys_pb2.ListKeysRequest | keys_pb2.ListTenantKeysRequest, *, user_required: bool
) -> tuple[str, str | None]:
    """(tenant, user or None) of a key listing: the caller's own (user required) or a tenant's."""
    bad = Violations()
    bad.check_id("tenant_id", req.tenant_id, required=True)
    bad.check_id("user_id", req.user_id, required=user_required)
    bad.raise_if_any()
    return req.tenant_id, req.user_id or None


def delete_target(req: keys_pb2.DeleteKeyRequest) -> tuple[str, str, str]:
    """(tenant, user, key_ref) of a DeleteKey request: the caller's own key only."""
    bad = Violations()
    bad.check_id("tenant_id", req.tenant_id, required=True)
    bad.check_id("user_id", req.user_id, required=True)
    if not KEY_REF.fullmatch(req.key_ref):
        bad.add("key_ref", "a key reference from RegisterKey (key_...)")
    bad.raise_if_any()
    return req.tenant_id, req.user_id, req.key_ref


def to_key_info(record: KeyRecord) -> keys_pb2.KeyInfo:
    return keys_pb2.KeyInfo(
        key_ref=record.ref,
        tenant_id=record.tenant,
        user_id=record.user,
        provider=record.provider,
        key_name=record.key_name,
        last_four=record.last_four,
        create_time=_timestamp(record.created_at),
        update_time=_timestamp(record.updated_at),
    )


def _timestamp(seconds: float) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromNanoseconds(int(seconds * 1e9))
    return stamp
