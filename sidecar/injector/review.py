"""AdmissionReview v1: the request the API server sends, and the response it expects back.

A body that is not an AdmissionReview v1 with a request uid cannot be answered (the response must
echo the uid): `parse_review` raises ReviewError with the field at fault, and the server answers
HTTP 400. Everything else gets an AdmissionReview response: allowed with a JSON Patch, allowed as
is, or refused with a message.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sidecar.injector.patch import encode

Json = dict[str, Any]
API_VERSION = "admission.k8s.io/v1"
MAX_BODY_BYTES = 3 * 1024 * 1024  # the API server's own request limit is 3 MiB
# Any pod can reach the injector's Service: the bodies being read at once are bounded in bytes (by
# their declared length; a review is a few KiB), and each must arrive within the API server's own
# longest webhook timeout, or unfinished uploads would hold memory until the injector is OOM-killed.
BODY_BYTES_IN_FLIGHT = 16 * 1024 * 1024
BODY_READ_SECONDS = 30.0
# A review body up to this size is answered on the event loop (a pod is a few KiB, with its managed
# fields tens); a larger one takes up to seconds of work (3 MiB of init containers: 8 s) and is
# answered off the loop, one at a time, so that it never holds up the reviews sent meanwhile.
INLINE_BODY_BYTES = 256 * 1024
# A review's depth: a Pod is at most a dozen levels deep (spec.affinity...matchExpressions[].values[])
# and the API server prunes the fields a Pod does not have, so deeper is no review it sent; copying
# such a body for the patch overflowed the stack (an HTTP 500 counted as the injector's own error).
MAX_DEPTH = 64


class ReviewError(ValueError):
    """The body is not an AdmissionReview v1 request; the message names the field."""


@dataclass(frozen=True)
class ReviewRequest:
    uid: str
    kind: str  # the object's kind (Pod)
    operation: str  # CREATE, UPDATE, ...
    namespace: str
    object: object
    dry_run: bool


def parse_review(body: bytes) -> ReviewRequest:
    try:
        review = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ReviewError(f"body is not JSON: {exc}") from exc
    except RecursionError:  # nested deeper than the parser's stack: no Pod the API server sends is
        raise ReviewError("body is not JSON this webhook reads: nested too deeply") from None
    if not isinstance(review, dict):
        raise ReviewError("body is not a JSON object")
    if _deeper_than(review, MAX_DEPTH):
        raise ReviewError(f"body is not JSON this webhook reads: nested too deeply (over {MAX_DEPTH} levels)")
    if review.get("apiVersion") != API_VERSION or review.get("kind") != "AdmissionReview":
        raise ReviewError(f"apiVersion/kind must be {API_VERSION} AdmissionReview")
    request = review.get("request")
    if not isinstance(request, dict):
        raise ReviewError("request is missing or not an object")
    uid = request.get("uid")
    if not isinstance(uid, str) or not uid:
        raise ReviewError("request.uid is missing")
    kind = request.get("kind")
    return ReviewRequest(
        uid=uid,
        kind=str(kind.get("kind", "")) if isinstance(kind, dict) else "",
        operation=str(request.get("operation", "")),
        namespace=str(request.get("namespace") or ""),
        object=request.get("object"),
        dry_run=request.get("dryRun") is True,
    )


def _deeper_than(document: object, limit: int) -> bool:
    """Whether objects and arrays nest more than `limit` levels (walked without recursion)."""
    level: list[object] = [document]
    for _ in range(limit):
        level = [
            child
            for node in level
            for child in (node.values() if isinstance(node, dict) else node if isinstance(node, list) else ())
        ]
        if not level:
            return False
    return any(isinstance(node, dict | list) and node for node in level)


def allow(uid: str, patch: list[Json] | None = None, warning: str = "") -> Json:
    response: Json = {"uid": uid, "allowed": True}
    if patch:
        response["patchType"] = "JSONPatch"
        response["patch"] = encode(patch)
    if warning:
        response["warnings"] = [warning]
    return _review(response)


def deny(uid: str, message: str, code: int = 400) -> Json:
    return _review({"uid": uid, "allowed": False, "status": {"code": code, "message": message}})


def _review(response: Json) -> Json:
    return {"apiVersion": API_VERSION, "kind": "AdmissionReview", "response": response}
