"""JSON logs: the request id on every line of a call; keys, tokens and prompt text redacted."""

from __future__ import annotations

import contextvars
import io
import json
import logging

from sidecar.telemetry.logging import REDACTED, JsonFormatter, bind_call, scrub

CANARY_KEY = "sk-CANARY0123456789abcdefXYZ"
CANARY_PROMPT = "the canary prompt: purple elephants at dawn"


def emit(capture_content: bool = False, **extra: object) -> dict[str, object]:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter(capture_content=capture_content))
    log = logging.getLogger("test.redaction")
    log.handlers[:] = [handler]
    log.propagate = False
    log.setLevel(logging.INFO)
    log.warning("calling upstream with Bearer %s and key %s", "abc.def-ghi", CANARY_KEY, extra=extra)
    return dict(json.loads(out.getvalue()))


def test_secret_fields_and_values_are_redacted() -> None:
    entry = emit(api_key=CANARY_KEY, authorization="Bearer xyz", detail=f"failed for {CANARY_KEY}")
    text = json.dumps(entry)
    assert CANARY_KEY not in text and "abc.def-ghi" not in text and "xyz" not in text
    assert entry["api_key"] == REDACTED and entry["authorization"] == REDACTED
    assert entry["detail"] == f"failed for {REDACTED}"


def test_prompt_text_is_redacted_unless_captured() -> None:
    assert emit(prompt=CANARY_PROMPT, messages=[CANARY_PROMPT])["prompt"] == REDACTED
    assert CANARY_PROMPT not in json.dumps(emit(messages=[CANARY_PROMPT]))
    kept = emit(capture_content=True, prompt=CANARY_PROMPT, api_key=CANARY_KEY)
    assert kept["prompt"] == CANARY_PROMPT
    assert kept["api_key"] == REDACTED  # secrets never, even with content capture


def test_request_id_and_prompt_masking_come_from_the_call_context() -> None:
    def in_call() -> tuple[dict[str, object], dict[str, object]]:
        bind_call("req-42", [CANARY_PROMPT, "hi"])
        return emit(detail=f"upstream said: {CANARY_PROMPT}"), emit(
            capture_content=True, detail=CANARY_PROMPT
        )

    masked, captured = contextvars.copy_context().run(in_call)
    assert masked["request_id"] == "req-42"
    assert masked["detail"] == f"upstream said: {REDACTED}"
    assert captured["detail"] == CANARY_PROMPT
    assert "request_id" not in emit()  # another task's context: nothing bound


def test_ordinary_values_pass() -> None:
    entry = emit(route="chat", attempts=3, reason="PROVIDERS_UNAVAILABLE")
    assert (entry["route"], entry["attempts"], entry["reason"]) == ("chat", 3, "PROVIDERS_UNAVAILABLE")
    assert (
        scrub("request 0123456789abcdef0123456789abcdef done")
        == "request 0123456789abcdef0123456789abcdef done"
    )


def test_key_material_in_bodies_headers_and_forms_is_masked() -> None:
    import base64
    import random

    rng = random.Random(3)
    for _ in range(200):  # data keys whose base64 has "/" and "+" (the old mask missed them)
        key = base64.b64encode(rng.randbytes(32)).decode()
        lines = [
            f'Response body: b\'{{"KeyId": "arn:x", "Plaintext": "{key}", "CiphertextBlob": "AQ{key}"}}\'',
            f"data key {key} and urlsafe {base64.urlsafe_b64encode(base64.b64decode(key)).decode()}",
            f"headers={{'X-Vault-Token': 'hvs.{key[:24]}', 'Authorization': 'Bearer {key}'}}",
            f"form token={key[:20]}&password={key[:12]} plaintext: {key[:16]}",
        ]
        for line in lines:
            masked = scrub(line)
            assert key not in masked and key[:12] not in masked, masked


def test_counts_and_paths_are_not_masked() -> None:
    text = "prompt_tokens=12 total_tokens: 30 in /work/sidecar/telemetry/logging_module_for_tests/x.py"
    assert scrub(text) == text


def test_libraries_that_see_secrets_never_log_below_warning() -> None:
    from sidecar.telemetry.logging import QUIET_LOGGERS, setup_logging

    out = io.StringIO()
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        setup_logging("DEBUG", out)
        logging.getLogger("botocore.endpoint").setLevel(logging.DEBUG)  # a library lowering its own level
        for name in QUIET_LOGGERS:
            logging.getLogger(f"{name}.child").debug("secret body %s", CANARY_KEY)
        logging.getLogger("botocore.endpoint").debug("Response body: Plaintext")
        logging.getLogger("sidecar.test").debug("ours at debug")
        logging.getLogger("botocore.x").warning("a library warning")
    finally:
        root.handlers[:], _ = saved[0], root.setLevel(saved[1])
        logging.getLogger("botocore.endpoint").setLevel(logging.NOTSET)
    text = out.getvalue()
    assert CANARY_KEY not in text and "Plaintext" not in text
    assert "ours at debug" in text and "a library warning" in text


def test_an_answer_the_caller_left_before_is_one_debug_line_not_an_error_with_a_traceback() -> None:
    """grpc's ERROR for an answer it could not send (the caller's deadline passed): a caller could
    flood the log with these tracebacks. Other records of grpc's logger are left as they are."""
    from grpc._cython.cygrpc import ExecuteBatchError

    from sidecar.telemetry.logging import GRPC_CORE_LOGGER, quiet_undelivered_answers

    core, seen = logging.getLogger(GRPC_CORE_LOGGER), io.StringIO()
    handler = logging.StreamHandler(seen)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    core.addHandler(handler)
    try:
        quiet_undelivered_answers()
        quiet_undelivered_answers()  # once only
        try:
            raise ExecuteBatchError("Failed execute_batch")
        except ExecuteBatchError:
            core.exception("ExecuteBatchError raised in core by servicer method [/x/Y]")
        core.error("something else")
    finally:
        core.removeHandler(handler)
    assert seen.getvalue() == "DEBUG answer not delivered: the caller had gone\nERROR something else\n"
    assert len(core.filters) == 1


def test_prompt_text_quoted_as_json_is_masked_too() -> None:
    """An upstream that quotes the request back in its error quotes it as JSON: a prompt with a
    newline, a quote, a backslash or non-ASCII text appears escaped, and is masked in that form."""
    prompts = [
        'first line\nsecond "quoted" line',
        "a path C:\\temp\\canary and a tab\there",
        "café crème, purple elephants",
    ]
    for prompt in prompts:
        for quoted in {json.dumps(prompt)[1:-1], json.dumps(prompt, ensure_ascii=False)[1:-1]}:
            echoed = f'upstream HTTP 400: you sent {{"content":"{quoted}"}}'
            masked = f'upstream HTTP 400: you sent {{"content":"{REDACTED}"}}'
            assert scrub(echoed, (prompt,)) == masked, quoted


def test_a_long_prompt_cut_short_in_an_upstream_quote_is_masked() -> None:
    """Upstream text is cut (300 characters) and upstreams cut their own quotes: what is left of a
    long prompt, from its start, is masked too (at least its first 16 characters must be there)."""
    prompt = "LONGPROMPT-CANARY " + "blah " * 300
    cut = f"upstream HTTP 400: you sent: {prompt[:250]}"
    assert scrub(cut, (prompt,)) == f"upstream HTTP 400: you sent: {REDACTED}"
    twice = f"a {prompt[:40]}... b {prompt} c"
    assert scrub(twice, (prompt,)) == f"a {REDACTED}... b {REDACTED} c"
    assert scrub("LONGPROMPT-CAN only", (prompt,)) == "LONGPROMPT-CAN only"  # under 16 characters


def test_ordinary_words_and_source_lines_are_not_masked() -> None:
    """`key-` took any hyphenated word for a key (the local backend's start-up warning read "keeps
    its [REDACTED] key on local disk"), and `secret = await ...` in a traceback lost its `await`."""
    lines = [
        "LocalKekBackend keeps its key-encryption key on local disk and in memory",
        "a key-value store; the key-encryption-key file",
        "    secret = await unseal(self._backend, envelope, context)",
        "    token = await self._login(force=True)",
    ]
    for line in lines:
        assert scrub(line) == line
    mailgun = "key-3ax6xnjp29jd6fds4gc373sgvjxteol0"  # the one provider key shape that starts with key-
    assert scrub(f"refused {mailgun}") == f"refused {REDACTED}"
    assert scrub("secret = hunter2-hunter2") == f"secret = {REDACTED}"
