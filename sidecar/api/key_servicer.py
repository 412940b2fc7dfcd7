"""orchestrator.v1.KeyService: the calling user's own provider keys."""

from __future__ import annotations

from sidecar._gen.orchestrator.v1 import keys_pb2
from sidecar.api import keys as api_keys
from sidecar.api.gate import Context, Gate, rpc_failure
from sidecar.api.paging import PageTokens
from sidecar.core.errors import KeysDisabledError
from sidecar.keys.service import KeyService


def enabled(keys: KeyService | None) -> KeyService:
    """The key service, or KeysDisabledError when no key backend is configured."""
    if keys is None:
        raise KeysDisabledError("this sidecar has no key backend configured (settings.keys.backend)")
    return keys


class KeyServicer:
    """Implements orchestrator.v1.KeyService (registered by the generated adder)."""

    def __init__(self, *, gate: Gate, keys: KeyService | None, pages: PageTokens) -> None:
        self._gate, self._keys, self._pages = gate, keys, pages

    async def RegisterKey(
        self, request: keys_pb2.RegisterKeyRequest, context: Context
    ) -> keys_pb2.RegisterKeyResponse:
        await self._gate.admit(context, "RegisterKey", request.tenant_id)
        try:
            keys = enabled(self._keys)
            owner, secret = api_keys.register_context(request)
            record = await keys.register(owner, secret)
        except Exception as exc:
            await rpc_failure(context, exc, "RegisterKey")
        return keys_pb2.RegisterKeyResponse(key_ref=record.ref, last_four=record.last_four)

    async def ListKeys(
        self, request: keys_pb2.ListKeysRequest, context: Context
    ) -> keys_pb2.ListKeysResponse:
        await self._gate.admit(context, "ListKeys", request.tenant_id)
        try:
            keys = enabled(self._keys)
            at = self._pages.request(request)
            records = await keys.list(*api_keys.list_owner(request, user_required=True))
        except Exception as exc:
            await rpc_failure(context, exc, "ListKeys")
        page, token = self._pages.page(records, at)
        return keys_pb2.ListKeysResponse(keys=[api_keys.to_key_info(r) for r in page], next_page_token=token)

    async def DeleteKey(
        self, request: keys_pb2.DeleteKeyRequest, context: Context
    ) -> keys_pb2.DeleteKeyResponse:
        await self._gate.admit(context, "DeleteKey", request.tenant_id)
        try:
            keys = enabled(self._keys)
            tenant, user, ref = api_keys.delete_target(request)
            deleted = await keys.delete(tenant, ref, user=user)
        except Exception as exc:
            await rpc_failure(context, exc, "DeleteKey")
        return keys_pb2.DeleteKeyResponse(deleted=deleted)
