"""Embed at the edge: validate the request's own fields and find the tier; EmbedResult -> EmbedResponse.
The texts and the route are validated by the embedding service (it names `texts[i]` and `route`)."""

from __future__ import annotations

import os
import re

from sidecar._gen.orchestrator.v1 import embed_pb2
from sidecar._gen.orchestrator.v1 import generate_pb2 as gen
from sidecar.api.convert import Tiers, Violations, caller_tier, check_metadata
from sidecar.config.schema import RequestLimits
from sidecar.core.clock import Deadline
from sidecar.embeddings.service import EmbedRequest, EmbedResult
from sidecar.quota.limits import to_micros

_ROUTE = re.compile(r"[A-Za-z0-9._:/-]{1,128}")


def to_request(
    req: embed_pb2.EmbedRequest, *, tiers: Tiers, limits: RequestLimits, deadline: Deadline
) -> EmbedRequest:
    """The back-end's request, or InvalidRequestError naming every bad identity field."""
    bad = Violations()
    bad.check_id("tenant_id", req.tenant_id, required=True)
    bad.check_id("user_id", req.user_id)
    bad.check_id("request_id", req.request_id)
    if req.route and not _ROUTE.fullmatch(req.route):
        bad.add("route", "an embedding route alias: at most 128 of letters, digits and ._:/-")
    check_metadata(req.metadata, limits, bad)
    tier = caller_tier(tiers, req.tenant_id, req.user_id, req.metadata, bad)
    bad.raise_if_any()
    return EmbedRequest(
        request_id=req.request_id or os.urandom(16).hex(),
        tenant=req.tenant_id,
        user=req.user_id,
        texts=tuple(req.texts),
        deadline=deadline,
        route=req.route,
        tier=tier,
        metadata=dict(req.metadata),
    )


def to_response(result: EmbedResult, request_id: str) -> embed_pb2.EmbedResponse:
    u = result.usage
    return embed_pb2.EmbedResponse(
        embeddings=[embed_pb2.Embedding(values=v) for v in result.vectors],
        dimensions=result.dimensions,
        normalized=result.normalized,
        usage=gen.Usage(
            prompt_tokens=u.prompt_tokens,
            completion_tokens=u.completion_tokens,
            total_tokens=u.prompt_tokens + u.completion_tokens,
            cached_tokens=u.cached_tokens,
        ),
        cost_micros=to_micros(result.cost_usd),
        route=result.route,
        deployment=result.deployment,
        model=result.model,
        cached_texts=result.cached_texts,
        request_id=request_id,
    )
