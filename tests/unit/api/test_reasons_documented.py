"""Every ErrorInfo reason the sidecar can send a caller is in the API contract: the protos' comments,
from which tests/contract/errors.yaml is generated and which all four clients replay. A reason added
in code but not to a proto's comments reached callers undocumented, and the clients' typed-error
tables could not check it (13 did, until 2026-12-05)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]

# Reasons that never reach a caller as the error's own reason: each attempt's outcome in
# GenerationSummary.attempts (docs/errors.md), and a reason only logged when a summary is skipped.
NOT_CALLER_ERRORS = {
    "CIRCUIT_OPEN",
    "PROVIDER_UNAVAILABLE",
    "PROVIDER_TIMEOUT",
    "PROVIDER_RATE_LIMITED",
    "PROVIDER_BAD_RESPONSE",
    "MODEL_OUTPUT_UNUSABLE",
    "SUMMARY_TOO_LONG",
}


def _code_reasons() -> dict[str, str]:
    found: dict[str, str] = {}
    for path in sorted((ROOT / "sidecar").rglob("*.py")):
        if "_gen" in path.parts:
            continue
        for match in re.finditer(r'^\s+reason = "([A-Z][A-Z0-9_]+)"', path.read_text(), re.M):
            found.setdefault(match.group(1), str(path.relative_to(ROOT)))
    return found


def test_every_reason_the_code_raises_is_in_the_protos_contract() -> None:
    contract = (ROOT / "tests/contract/errors.yaml").read_text()
    documented = set(re.findall(r"reason: ([A-Z][A-Z0-9_]+)", contract))
    undocumented = {
        reason: where
        for reason, where in _code_reasons().items()
        if reason not in documented and reason not in NOT_CALLER_ERRORS
    }
    assert not undocumented, f"add these to the proto comments, then run errors_from_proto.py: {undocumented}"


def test_the_per_attempt_reasons_are_documented_as_such() -> None:
    errors_page = (ROOT / "docs/errors.md").read_text()
    for reason in NOT_CALLER_ERRORS - {"CIRCUIT_OPEN", "SUMMARY_TOO_LONG"}:
        assert f"`{reason}`" in errors_page, reason
    assert set(_code_reasons()) >= NOT_CALLER_ERRORS, "a listed exception no longer exists: drop it"
