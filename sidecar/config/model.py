"""The base of every configuration model: immutable once loaded, unknown keys refused (a typo is an
error, not a silently ignored setting), and no NaN or infinity where a number is expected."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field


class ConfigModel(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


# US dollars per million tokens: $1,000 a token is beyond any model's price, and keeps a call's cost
# in micro-dollars inside int64 for any token count a context window allows (MAX_CONTEXT_TOKENS): an
# unbounded price overflowed it, every call an INTERNAL error.
MAX_PRICE_PER_MILLION = 1_000_000_000.0
# Token counts the sidecar puts on a wire: ListModels' int32 context window, the max_tokens and seed
# of an upstream request's JSON (past 64 bits it cannot be encoded: every call failed).
MAX_CONTEXT_TOKENS = 100_000_000
MAX_OUTPUT_TOKENS = 1_000_000


def _port_in_range(address: str) -> str:
    if int(address.rpartition(":")[2]) > 65_535:  # gRPC takes a larger one modulo 65536, silently
        raise ValueError("the port must be 0 to 65535")
    return address


# host:port of a listener; port 0 picks a free one.
HostPort = Annotated[str, Field(pattern=r"^\S+:\d{1,5}$"), AfterValidator(_port_in_range)]


def _endpoint_url(url: str) -> str:
    """The prefix request paths are added to: no query or fragment (the path went after it: every
    request to the wrong path) and no user:password (never sent, silently dropped)."""
    authority = url.split("://", 1)[1].split("/", 1)[0]
    if "@" in authority or "?" in url or "#" in url:
        raise ValueError(
            "an http(s) URL without a user:password, query or fragment (credentials go in api_key)"
        )
    return url


# A provider's endpoint: requests go to this URL followed by their path.
EndpointUrl = Annotated[str, Field(pattern=r"^https?://\S+$"), AfterValidator(_endpoint_url)]
