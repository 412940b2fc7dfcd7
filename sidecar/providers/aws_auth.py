"""SigV4 request signing with the AWS credential chain, through botocore (the `bedrock` extra).

The chain is botocore's own: environment, shared config and `profile`, web identity (IRSA in
Kubernetes), container and instance roles. Resolving or refreshing credentials may do blocking
I/O (STS, the instance metadata service), so it runs on a thread, one refresh at a time, each
caller waiting no longer than its deadline. Signing itself is pure CPU and runs inline.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from sidecar.core.clock import Deadline
from sidecar.core.errors import ProviderAuthError, ProviderUnavailableError
from sidecar.providers.tokens import SingleFlight


def signed_secrets(headers: Mapping[str, str]) -> list[str]:
    """What a SigV4-signed request carries that is secret: the signature and the session token.
    The rest of its Authorization header (the access key id's scope: the date, region and service,
    and SignedHeaders) and X-Amz-Date are public; masked as secrets, they masked words an error
    shares with them ("credentials refused" read "c[redacted]s refused")."""
    out: list[str] = []
    for name, value in headers.items():
        key = name.lower()
        if key == "x-amz-security-token":
            out.append(value)
        elif key == "authorization" and value.startswith("AWS4-HMAC-SHA256 "):
            out += [part.strip()[len("Signature=") :] for part in value.split(",") if "Signature=" in part]
    return out


class AwsSigner:
    """Signs requests for one AWS service and region."""

    def __init__(self, *, service: str, region: str, profile: str | None = None) -> None:
        import botocore.exceptions  # lazily: the optional `bedrock` extra costs nothing unless configured
        import botocore.session

        self._service, self._region, self._profile = service, region, profile
        self._errors = botocore.exceptions
        self._session = botocore.session.Session(profile=profile)
        self._credentials: Any = None
        self._frozen: Any = None
        self._flight = SingleFlight(self._refresh)

    def __repr__(self) -> str:
        return f"AwsSigner(service={self._service!r}, region={self._region!r}, profile={self._profile!r})"

    async def sign(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes, deadline: Deadline
    ) -> dict[str, str]:
        """The headers to send: the given ones plus X-Amz-Date, X-Amz-Security-Token and Authorization."""
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        credentials = await self._current(deadline)
        request = AWSRequest(method=method, url=url, data=body, headers=dict(headers))
        SigV4Auth(credentials, self._service, self._region).add_auth(request)
        return dict(request.headers.items())

    async def _current(self, deadline: Deadline) -> Any:
        if self._credentials is None or self._needs_refresh():
            await self._flight.run(deadline)
        return self._frozen

    def _needs_refresh(self) -> bool:
        refresh_needed = getattr(self._credentials, "refresh_needed", None)
        return bool(refresh_needed()) if callable(refresh_needed) else False

    async def _refresh(self) -> None:
        await asyncio.to_thread(self._refresh_blocking)

    def _refresh_blocking(self) -> None:
        try:
            if self._credentials is None:
                self._credentials = self._session.get_credentials()
            if self._credentials is None:
                raise ProviderAuthError("no AWS credentials found in the credential chain")
            self._frozen = self._credentials.get_frozen_credentials()
        except self._errors.ProfileNotFound as exc:
            raise ProviderAuthError(f"AWS profile {self._profile!r} not found") from exc
        except (self._errors.ConnectionError, self._errors.HTTPClientError) as exc:
            raise ProviderUnavailableError("the AWS credential provider is unreachable") from exc
        except self._errors.BotoCoreError as exc:
            raise ProviderAuthError(f"AWS credentials unavailable ({type(exc).__name__})") from exc
