"""Field paths from the request root: what a layer names relative to the call, the RPC's edge nests."""

from __future__ import annotations

from sidecar.core.errors import ContextTooLongError, FieldViolation, InvalidRequestError, SidecarError


def test_nesting_prefixes_every_violation_and_the_metadata_field_once() -> None:
    err = InvalidRequestError([FieldViolation("persona_id", "unknown"), FieldViolation("input.model", "bad")])
    assert err.nested_in("input.") is err
    err.nested_in("input.")  # a second time changes nothing
    assert [v.field for v in err.violations] == ["input.persona_id", "input.model"]
    assert [v.description for v in err.violations] == ["unknown", "bad"]
    assert err.metadata["field"] == "input.persona_id"


def test_an_empty_field_and_an_error_without_fields_stay_as_they_are() -> None:
    whole = InvalidRequestError([FieldViolation("", "not a valid message")])
    assert [v.field for v in whole.nested_in("input.").violations] == [""]
    assert whole.metadata["field"] == ""
    plain = SidecarError("no field", metadata={"provider": "openai"})
    assert plain.nested_in("input.").metadata == {"provider": "openai"} and plain.violations == ()


def test_a_layer_error_with_its_own_metadata_keeps_it() -> None:
    err = ContextTooLongError(5000, 4096).nested_in("input.")
    assert [v.field for v in err.violations] == ["input.messages"]
    assert err.metadata == {"promptTokens": "5000", "maxContextTokens": "4096"}
