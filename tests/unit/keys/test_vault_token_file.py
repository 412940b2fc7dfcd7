"""The token file (settings.keys.vault.token_file) is read within bounds: a file that is not a token
(a device that never ends, a huge file, bytes that are not text) is a ValueError naming the file,
never a read without end nor the file's content in the message."""

from __future__ import annotations

from pathlib import Path

import pytest

from sidecar.keys.vault_token import MAX_TOKEN_FILE_BYTES, TokenFile


def test_a_token_is_read_without_its_line_end(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text("s.abcdef\n")
    assert TokenFile(path).read() == "s.abcdef"


def test_a_file_that_never_ends_is_refused_after_a_bounded_read() -> None:
    with pytest.raises(ValueError, match="/dev/zero: larger than") as info:
        TokenFile(Path("/dev/zero")).read()
    assert len(str(info.value)) < 200


def test_a_file_larger_than_a_token_can_be_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_bytes(b"a" * (MAX_TOKEN_FILE_BYTES + 1))
    with pytest.raises(ValueError, match="larger than"):
        TokenFile(path).read()


def test_bytes_that_are_not_text_are_named_by_file_not_quoted(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_bytes(b"SECRETPART\xff\xfe")
    with pytest.raises(ValueError) as info:
        TokenFile(path).read()
    assert str(path) in str(info.value) and "SECRETPART" not in repr(info.value)
    assert "not UTF-8" in str(info.value)


@pytest.mark.parametrize("content", [b"qzx1\nqzx2\n", b"qzx1 qzx2", b"qz\x00x", b"qz\rx"])
def test_a_file_holding_more_than_one_token_is_refused(tmp_path: Path, content: bytes) -> None:
    """A token goes in the X-Vault-Token header: whitespace or a control character inside it is not
    a token (a file written wrong), said at start, not a header refused at the first call."""
    path = tmp_path / "token"
    path.write_bytes(content)
    with pytest.raises(ValueError, match="not one Vault token") as info:
        TokenFile(path).read()
    assert "qz" not in str(info.value).replace(str(path), "")
