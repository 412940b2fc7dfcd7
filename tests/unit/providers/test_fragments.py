"""A credential an upstream quotes in part (a prefix and the last characters, as OpenAI's
"Incorrect API key provided: sk-proj-abcd****wxyz") is masked like a whole one."""

from __future__ import annotations

from sidecar.core.errors import ProviderRejectedError
from sidecar.providers.base import scrub_credentials
from sidecar.providers.fragments import MIN_FRAGMENT_CHARS, mask_fragments

KEY = "CANARYq7f3a9c2e1d0b4a5968"  # no provider prefix, shorter than a 32-character opaque run


def test_a_partly_quoted_key_is_masked_in_a_providers_error() -> None:
    err = ProviderRejectedError(
        f"upstream HTTP 400: Incorrect API key provided: {KEY[:12]}*********{KEY[-4:]}"
    )
    scrub_credentials(err, [f"Bearer {KEY}", KEY])
    assert KEY[:MIN_FRAGMENT_CHARS] not in err.message and KEY[:MIN_FRAGMENT_CHARS] not in str(err)
    assert err.message == "upstream HTTP 400: Incorrect API key provided: [redacted]*********5968"


def test_every_run_of_a_key_that_long_is_masked_and_shorter_ones_are_kept() -> None:
    text = f"a {KEY[3:11]} b {KEY[5:20]}c {KEY[:7]} d {KEY}"
    assert mask_fragments(text, [KEY]) == f"a [redacted] b [redacted]c {KEY[:7]} d [redacted]"
    assert mask_fragments("nothing of it here", [KEY]) == "nothing of it here"
    assert mask_fragments(KEY, ["short"]) == KEY  # a secret under the run length masks nothing
