"""AWS KMS as the key-encryption backend: GenerateDataKey, Decrypt and ReEncrypt under one KMS key.

The key context goes to KMS as the encryption context, so KMS itself refuses to unwrap a data key
for another tenant, user, provider or key name (and CloudTrail records the context of every call).
boto3 is imported only when this backend is built, and its blocking calls run on a small thread
pool of this backend's own, never on the event loop.

Credentials come from boto3's standard chain (environment, web identity / IRSA, instance profile).
botocore retries once; anything that still fails reaches the caller classified, with `retry_after`
where a retry can help, so the sidecar's own deadline and retry policy stay in charge.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, TypeVar

from sidecar.core.clock import Clock, SystemClock
from sidecar.core.errors import (
    KeyBackendUnavailableError,
    KeyContextMismatchError,
    KeyDecryptError,
    SidecarError,
)
from sidecar.keys.backend import DATA_KEY_BYTES, KeyContext, KeyNotConfiguredError, WrappedKey
from sidecar.keys.pool import BlockingPool

T = TypeVar("T")
_log = logging.getLogger("sidecar.keys")

RETRY_AFTER_SECONDS = 1.0
CONNECT_TIMEOUT_SECONDS = 3.0
READ_TIMEOUT_SECONDS = 10.0
# The whole of one call, both attempts: the timeouts above are per connect and per read, which an
# answer trickled a byte at a time never trips (keys/pool.py).
CALL_LIMIT_SECONDS = 2 * (CONNECT_TIMEOUT_SECONDS + READ_TIMEOUT_SECONDS) + 4.0
# A KMS ciphertext blob is 1 to 6144 bytes (the API's constraint). One outside that is a damaged
# envelope, refused here as KMS refuses one that does not open (KMS would answer ValidationException,
# which reads as our misconfiguration).
MAX_CIPHERTEXT_BYTES = 6144
# A key ARN (not an alias ARN): KMS answers name keys by it, so it needs no DescribeKey to resolve.
_KEY_ARN = re.compile(r"arn:aws(?:-[a-z]+)*:kms:[a-z0-9-]+:[0-9]{12}:key/[A-Za-z0-9-]+")

_MISMATCH = frozenset({"InvalidCiphertextException", "IncorrectKeyException"})
_UNAVAILABLE = frozenset(
    {
        "ThrottlingException",
        "LimitExceededException",
        "KMSInternalException",
        "DependencyTimeoutException",
        "ServiceUnavailableException",
        "InternalFailure",
        "RequestTimeout",
    }
)


class AwsKmsBackend:
    """Wraps data keys under one KMS key (key ID, key ARN, alias name or alias ARN).

    Only data keys wrapped under that key or one of `previous_key_ids` are unwrapped: an envelope names
    its KMS key, and without the allow-list a crafted one could make the sidecar use any key its IAM
    role may use. Both lists are resolved to key ARNs with DescribeKey on first use.

    `client` is a boto3 KMS client to use instead of building one (tests); the backend does not close
    a client it was given.
    """

    name: ClassVar[str] = "aws-kms"

    def __init__(
        self,
        key_id: str,
        *,
        region: str,
        previous_key_ids: Sequence[str] = (),
        endpoint_url: str | None = None,
        max_workers: int = 4,
        client: Any | None = None,
        clock: Clock | None = None,
        call_limit_seconds: float = CALL_LIMIT_SECONDS,
    ) -> None:
        import botocore.exceptions  # lazily: the optional `aws` extra costs nothing unless configured

        self._key_id = key_id
        self._usable = (key_id, *previous_key_ids)
        self._usable_arns: frozenset[str] | None = None
        self._resolving = asyncio.Lock()
        self._errors = botocore.exceptions
        self._owns_client = client is None
        self._client = client if client is not None else _kms_client(region, endpoint_url, max_workers)
        self._pool = BlockingPool(
            "aws-kms",
            workers=max_workers,
            limit=call_limit_seconds,
            clock=clock or SystemClock(),
            what="AWS KMS",
        )

    def __repr__(self) -> str:
        return f"AwsKmsBackend(key_id={self._key_id!r})"

    async def generate_data_key(self, context: KeyContext) -> tuple[bytearray, WrappedKey]:
        reply = await self._call(
            self._client.generate_data_key,
            KeyId=self._key_id,
            KeySpec="AES_256",
            EncryptionContext=context.as_map(),
        )
        key_id, blob = _member(reply, "KeyId", str), _member(reply, "CiphertextBlob", bytes)
        plaintext = bytearray(_member(reply, "Plaintext", bytes))
        if len(plaintext) != DATA_KEY_BYTES:
            raise KeyDecryptError(f"AWS KMS returned a {len(plaintext)}-byte data key")
        return plaintext, WrappedKey(self.name, key_id, blob)

    async def decrypt_data_key(self, wrapped: WrappedKey, context: KeyContext) -> bytearray:
        await self._check_usable(wrapped)
        _check_size(wrapped)
        reply = await self._call(
            self._client.decrypt,
            CiphertextBlob=wrapped.blob,
            EncryptionContext=context.as_map(),
            KeyId=wrapped.key_id,
        )
        return bytearray(_member(reply, "Plaintext", bytes))

    async def rewrap(self, wrapped: WrappedKey, context: KeyContext) -> WrappedKey:
        await self._check_usable(wrapped)
        _check_size(wrapped)
        reply = await self._call(
            self._client.re_encrypt,
            CiphertextBlob=wrapped.blob,
            SourceEncryptionContext=context.as_map(),
            SourceKeyId=wrapped.key_id,
            DestinationKeyId=self._key_id,
            DestinationEncryptionContext=context.as_map(),
        )
        return WrappedKey(self.name, _member(reply, "KeyId", str), _member(reply, "CiphertextBlob", bytes))

    def start(self) -> None:
        """Nothing runs in the background."""

    async def aclose(self) -> None:
        """Wait for calls in flight (at most the call limit), then release the threads (and the client,
        if this backend built it)."""
        await self._pool.aclose()
        if self._owns_client:
            self._client.close()

    async def _check_usable(self, wrapped: WrappedKey) -> None:
        """The data key must come from this backend and be wrapped under an allowed KMS key."""
        if wrapped.backend != self.name:
            raise KeyNotConfiguredError(
                f"the data key was wrapped by the {wrapped.backend!r} backend, not {self.name!r}",
                metadata={"backend": wrapped.backend},
            )
        if wrapped.key_id not in await self._allowed_arns():
            raise KeyNotConfiguredError(
                "the data key is wrapped under a KMS key this sidecar is not configured to use "
                "(settings.keys.aws_kms.key_id or previous_key_ids)"
            )

    async def _allowed_arns(self) -> frozenset[str]:
        """`key_id` and `previous_key_ids` as key ARNs, resolved with DescribeKey once: concurrent
        first decrypts wait for one resolution instead of each making their own calls."""
        if self._usable_arns is not None:
            return self._usable_arns
        async with self._resolving:
            if self._usable_arns is None:
                arns = [await self._arn(self._key_id)]  # the current key must resolve
                for key in self._usable[1:]:
                    try:
                        arns.append(await self._arn(key))
                    except KeyDecryptError as exc:
                        if exc.metadata.get("backendError") != "NotFoundException":
                            raise
                        # a stale entry (a deleted alias or key) must not stop the current key
                        _log.warning(
                            "a previous KMS key is left out of the keys this sidecar unwraps under: "
                            "AWS KMS does not know it",
                            extra={"previous_key_id": key},
                        )
                self._usable_arns = frozenset(arns)
            return self._usable_arns

    async def _arn(self, key: str) -> str:
        if _KEY_ARN.fullmatch(key):
            return key  # already what KMS names in its answers: no DescribeKey (not in least privilege)
        reply = await self._call(self._client.describe_key, KeyId=key)
        return _member(_member(reply, "KeyMetadata", dict), "Arn", str)

    async def _call(self, method: Callable[..., T], **kwargs: Any) -> T:
        try:
            return await self._pool.run(functools.partial(method, **kwargs))
        except self._errors.ClientError as exc:
            raise classify_client_error(exc.response) from exc
        except (self._errors.ConnectionError, self._errors.HTTPClientError) as exc:
            raise KeyBackendUnavailableError(
                "AWS KMS cannot be reached", retry_after=RETRY_AFTER_SECONDS
            ) from exc
        except self._errors.BotoCoreError as exc:  # no credentials, bad parameters: our misconfiguration
            raise KeyDecryptError(f"AWS KMS client error ({type(exc).__name__})") from exc


def classify_client_error(response: Any) -> SidecarError:
    """The typed error for a KMS error response. Messages carry the error code, never key material."""
    code = str(response.get("Error", {}).get("Code", ""))
    status = int(response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    if code in _MISMATCH:
        return KeyContextMismatchError("the key context does not match")
    if code in _UNAVAILABLE or status >= 500:
        return KeyBackendUnavailableError(
            f"AWS KMS is unavailable ({code or status})",
            metadata={"backendError": code},
            retry_after=RETRY_AFTER_SECONDS,
        )
    # AccessDenied(Exception), DisabledException, NotFoundException, KMSInvalidStateException, ...
    return KeyDecryptError(
        f"AWS KMS refused the data key ({code or status})", metadata={"backendError": code}
    )


def _check_size(wrapped: WrappedKey) -> None:
    if not 1 <= len(wrapped.blob) <= MAX_CIPHERTEXT_BYTES:
        raise KeyContextMismatchError(
            f"the wrapped data key is {len(wrapped.blob)} bytes: not a KMS ciphertext (1 to "
            f"{MAX_CIPHERTEXT_BYTES} bytes), so it opens under no key context"
        )


def _member(reply: Any, name: str, kind: type[T]) -> T:
    """A member of a KMS answer, of the type the API gives it. botocore hands on what it could parse:
    an answer cut short, or a proxy's page under a 200, lacks members (the value is never named)."""
    value = reply.get(name) if isinstance(reply, dict) else None
    if not isinstance(value, kind):
        raise KeyBackendUnavailableError(
            f"AWS KMS sent a malformed answer (no {name})",
            metadata={"backendError": "MalformedAnswer"},
            retry_after=RETRY_AFTER_SECONDS,
        )
    return value


def _kms_client(region: str, endpoint_url: str | None, max_workers: int) -> Any:
    import boto3
    from botocore.config import Config

    config = Config(
        connect_timeout=CONNECT_TIMEOUT_SECONDS,
        read_timeout=READ_TIMEOUT_SECONDS,
        retries={"mode": "standard", "total_max_attempts": 2},
        max_pool_connections=max_workers,
    )
    return boto3.session.Session().client("kms", region_name=region, endpoint_url=endpoint_url, config=config)
