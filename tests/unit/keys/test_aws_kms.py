"""AwsKmsBackend against botocore's Stubber (a real KMS client, no network): which calls it makes."""

from __future__ import annotations

from typing import Any

import pytest

from sidecar.keys.aws_kms import AwsKmsBackend
from sidecar.keys.backend import KeyContext, WrappedKey

boto3 = pytest.importorskip("boto3")
from botocore.stub import Stubber  # noqa: E402

ARN = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
CTX = KeyContext("acme", "alice", "openai", "default")
DATA_KEY = bytes(range(32))


def kms_client() -> Any:
    return boto3.client(
        "kms", region_name="eu-west-1", aws_access_key_id="testing", aws_secret_access_key="testing"
    )


def expect_decrypt(stub: Stubber) -> None:
    stub.add_response(
        "decrypt",
        {"Plaintext": DATA_KEY, "KeyId": ARN},
        {"CiphertextBlob": b"wrapped", "EncryptionContext": CTX.as_map(), "KeyId": ARN},
    )


async def test_a_key_named_by_its_arn_is_used_without_describe_key() -> None:
    """docs/keys.md's least privilege is GenerateDataKey, Decrypt and ReEncrypt on the one key: the
    backend asked DescribeKey first to resolve even a key ARN, refused under that policy, so every
    decrypt failed KEY_UNAVAILABLE."""
    client = kms_client()
    with Stubber(client) as stub:
        expect_decrypt(stub)
        backend = AwsKmsBackend(ARN, region="eu-west-1", client=client)
        assert await backend.decrypt_data_key(WrappedKey("aws-kms", ARN, b"wrapped"), CTX) == DATA_KEY
        stub.assert_no_pending_responses()
        await backend.aclose()


async def test_an_alias_is_resolved_with_describe_key_once() -> None:
    client = kms_client()
    with Stubber(client) as stub:
        stub.add_response(
            "describe_key", {"KeyMetadata": {"KeyId": "k", "Arn": ARN}}, {"KeyId": "alias/keys"}
        )
        expect_decrypt(stub)
        expect_decrypt(stub)
        backend = AwsKmsBackend("alias/keys", region="eu-west-1", client=client)
        for _ in range(2):
            assert await backend.decrypt_data_key(WrappedKey("aws-kms", ARN, b"wrapped"), CTX) == DATA_KEY
        stub.assert_no_pending_responses()
        await backend.aclose()
