from __future__ import annotations

from sidecar.core.tokens import count_prompt_tokens, count_tokens, split_tokens


def test_tokens_reassemble_exactly() -> None:
    for text in ["", "Hello, world!", "  leading and trailing  ", "naïve café ☕ 123", "a\n\nb\tc"]:
        assert "".join(split_tokens(text)) == text


def test_counts() -> None:
    assert count_tokens("Hello, world!") == 4
    assert count_tokens("internationalization") == 3  # words split every 8 characters
    assert count_prompt_tokens(["Hi"]) == 3 + 1 + 4
