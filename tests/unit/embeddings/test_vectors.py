"""Vectors from an upstream answer are bounded: finite in float32, the type they travel as."""

from __future__ import annotations

import pytest

from sidecar.core.errors import ProviderMalformedError
from sidecar.embeddings.base import checked_vectors


def test_a_number_beyond_float32_is_malformed() -> None:
    assert checked_vectors([[3.0e38, -3.0e38, 0.5]], 1) == ((3.0e38, -3.0e38, 0.5),)
    for row in ([1e39, 0.0], [0.0, -1e39], [float("inf"), 0.0], [float("nan"), 0.0], [True, 0.0]):
        with pytest.raises(ProviderMalformedError):
            checked_vectors([row], 1)
