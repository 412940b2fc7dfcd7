"""The user-key service as a configuration builds it: the key-encryption backend (its client library
imported only when configured), the encrypted key store, the decrypted-key cache and rotation."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING

from sidecar.config.schema import Config
from sidecar.core.clock import Clock
from sidecar.keys.backend import KeyBackend, KeyBackendSetupError
from sidecar.keys.cache import KeyCache, KeyCachePolicy
from sidecar.keys.failures import EnvelopeFailures, FailurePolicy
from sidecar.keys.registrations import RegistrationPolicy, Registrations
from sidecar.keys.rotation import Rotation, RotationLock, SqliteRotationLock
from sidecar.keys.service import KeyService
from sidecar.keys.store import KeyStore, SqliteKeyStore, open_once
from sidecar.stores.redis import RedisEndpoint, RedisOps

if TYPE_CHECKING:
    from sidecar.telemetry.runtime import Telemetry


def build_keys(cfg: Config, clock: Clock, telemetry: Telemetry | None = None) -> KeyService | None:
    """User keys, when a key-encryption backend is configured; backends import their clients lazily.
    KeyBackendSetupError, naming the setting, when the backend cannot be built."""
    k = cfg.settings.keys
    try:
        backend = _key_backend(cfg, clock, telemetry)
    except ImportError as exc:
        raise KeyBackendSetupError(
            f"settings.keys.backend: {k.backend} needs the {exc.name or 'client'} package, not installed"
        ) from None
    except (OSError, ValueError) as exc:  # the KEK file; a region or client option boto3 or hvac refuses
        where = "local.kek_file" if k.backend == "local" else k.backend.replace("-", "_")
        why = f"{exc.filename}: {exc.strerror}" if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise KeyBackendSetupError(f"settings.keys.{where}: {why}") from None
    if backend is None:
        return None
    cache = KeyCache(KeyCachePolicy(**k.cache.model_dump()), clock)
    store: KeyStore
    lock: RotationLock
    if k.store == "redis" and k.redis_url is not None:
        from sidecar.keys.redis_store import DEFAULT_PREFIX, RedisKeyStore
        from sidecar.keys.rotation import RedisRotationLock

        try:
            endpoint = RedisEndpoint.of(k.redis_url, k.redis, cfg.secret, default_timeout=2.0)
        except RuntimeError as exc:  # a TLS file it cannot load
            raise KeyBackendSetupError(f"settings.keys.{exc}") from None
        store = RedisKeyStore(RedisOps(endpoint, decode_responses=True, retries=1, clock=clock), clock)
        lock_ops = RedisOps(endpoint, decode_responses=True, clock=clock)
        lock = RedisRotationLock(lock_ops, prefix=DEFAULT_PREFIX)
    else:
        _check_sqlite_store(k.store_path)
        store = SqliteKeyStore(k.store_path, clock)
        lock = SqliteRotationLock(k.store_path, clock)
    rotation = Rotation(store, backend, lock, clock=clock, per_second=k.rotation_per_second)
    metrics = None if telemetry is None else telemetry.metrics
    failures = EnvelopeFailures(FailurePolicy(**k.envelope_failures.model_dump()), clock, metrics)
    return KeyService(
        backend,
        store,
        cache,
        clock,
        observer=metrics,
        tracing=None if telemetry is None else telemetry.tracing,
        rotation=rotation,
        max_keys_per_user=k.max_keys_per_user,
        failures=failures,
        registrations=Registrations(RegistrationPolicy(**k.registrations.model_dump()), clock, metrics),
    )


def _key_backend(cfg: Config, clock: Clock, telemetry: Telemetry | None) -> KeyBackend | None:
    k = cfg.settings.keys
    if k.backend == "local" and k.local is not None:
        from sidecar.keys.local import LocalKekBackend

        return LocalKekBackend.from_file(k.local.kek_file)
    if k.backend == "aws-kms" and k.aws_kms is not None:
        from sidecar.keys.aws_kms import AwsKmsBackend

        return AwsKmsBackend(
            k.aws_kms.key_id,
            region=k.aws_kms.region,
            endpoint_url=k.aws_kms.endpoint_url,
            previous_key_ids=k.aws_kms.previous_key_ids,
            clock=clock,
        )
    if k.backend == "vault" and k.vault is not None:
        from sidecar.keys.vault_transit import VaultTransitBackend

        v, token = k.vault, cfg.secret(k.vault.token)
        return VaultTransitBackend(
            v.key_name,
            url=v.url,
            token=token.get_secret_value() if token else None,
            token_file=v.token_file,
            kubernetes_role=v.kubernetes_role,
            namespace=v.namespace,
            mount_point=v.mount_point,
            previous_key_names=v.previous_key_names,
            clock=clock,
            renewal_observer=None if telemetry is None else telemetry.metrics,
        )
    return None


def _check_sqlite_store(path: Path) -> None:
    """Open the key store once at start (creating it, as its first use would): a path it cannot open
    (a directory, a file that is no database, a missing directory) is a KeyBackendSetupError naming
    the setting. It was first opened at the first key RPC, so the sidecar served and every key call
    failed INTERNAL / KEY_UNAVAILABLE."""
    try:
        open_once(path)
    except (sqlite3.Error, OSError, RuntimeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise KeyBackendSetupError(f"settings.keys.store_path: {path}: cannot open ({why})") from None
