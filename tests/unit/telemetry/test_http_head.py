"""The health port's request heads, read strictly (RFC 9112): what is served, what is refused and
with which status, and that a head which cannot be served is refused as soon as its bytes show it."""

from __future__ import annotations

import pytest

from sidecar.telemetry.http_head import HEAD_LIMIT, BadRequest, HeadReader, environ


def read(*chunks: bytes) -> dict[str, object]:
    reader = HeadReader()
    head = None
    for chunk in chunks:
        assert head is None
        head = reader.feed(chunk)
    assert head is not None
    return environ(head, "10.0.0.1", ("0.0.0.0", 9464))


def refused(*chunks: bytes) -> str:
    """The status a head is refused with (it must be, by its last chunk at the latest)."""
    reader = HeadReader()
    with pytest.raises(BadRequest) as caught:
        for chunk in chunks:
            head = reader.feed(chunk)
            if head is not None:
                environ(head, "10.0.0.1", ("0.0.0.0", 9464))
    return caught.value.status.split()[0]


def test_a_head_in_any_pieces_gives_its_environ() -> None:
    request = (
        b"GET /metrics?name[]=a HTTP/1.1\r\nHost: sidecar:9464\r\nAccept:\t text/plain \r\n"
        b"X-A: 1\r\nx-a: 2\r\n\r\n"
    )
    whole = read(request)
    assert read(*(request[i : i + 1] for i in range(len(request)))) == whole
    assert whole["PATH_INFO"] == "/metrics" and whole["QUERY_STRING"] == "name[]=a"
    assert (whole["HTTP_HOST"], whole["HTTP_ACCEPT"], whole["HTTP_X_A"]) == (
        "sidecar:9464",
        "text/plain",
        "1,2",
    )


@pytest.mark.parametrize(
    "head",
    [
        b"GET /livez HTTP/1.1\r\nHost : x\r\n\r\n",  # whitespace between name and colon (RFC 9112 5.1)
        b"GET /livez HTTP/1.1\r\nHost\t: x\r\n\r\n",
        b"GET /livez HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n folded\r\n\r\n",  # obs-fold (5.2)
        b"GET /livez HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n\tfolded\r\n\r\n",
        b"GET /livez HTTP/1.1\r\n Host: x\r\n\r\n",  # whitespace before the first field (2.2)
        b"GET /livez HTTP/1.1\r\n: x\r\n\r\n",
        b"GET /livez HTTP/1.1\r\nNo colon\r\n\r\n",
        b"GET /livez HTTP/1.1\r\nX\x80: 1\r\n\r\n",
        b"GET /livez HTTP/1.1\r\nX: a\x01b\r\n\r\n",
        b"GET /livez HTTP/1.1\r\nX: a\x7fb\r\n\r\n",
        b"GET /livez HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n",
        b"GET /livez HTTP/1.1\r\nContent-Length: 1, 2\r\n\r\n",
        b"GET /livez HTTP/1.1\r\nContent-Length: +1\r\n\r\n",
        b"GET /livez HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
        b"GET /livez HTTP/1.1\r\nContent-Length: \xb2\r\n\r\n",
        b"GET /livez HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"GET /livez HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"GET /livez HTTP/1.1\r\nTransfer-Encoding: chunked, identity\r\n\r\n",
        b"GET /livez HTTP/1.1\r\nTransfer-Encoding: xchunked\r\n\r\n",
        b"GET /livez HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"GET /livez HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        b"GET  /livez HTTP/1.1\r\n\r\n",
        b"GET /livez HTTP/1.1 \r\n\r\n",
        b"GET\t/livez HTTP/1.1\r\n\r\n",
        b"GET /li vez HTTP/1.1\r\n\r\n",
        b"GET /livez http/1.1\r\n\r\n",
        b"GET /livez HTTP/1.10\r\n\r\n",
        b"G(T /livez HTTP/1.1\r\n\r\n",
    ],
)
def test_heads_that_may_be_read_two_ways_are_refused_400(head: bytes) -> None:
    assert refused(head) == "400"


@pytest.mark.parametrize(
    ("chunks", "status"),
    [
        ((b"GET /livez HTTP/1.1\r\nHost: x\r", b"x"), "400"),  # a bare CR, once its next byte shows it
        ((b"GET /livez HTTP/1.1\r\nHost: x\n",), "400"),  # a bare LF
        ((b"GET /livez HTTP/1.1\nHost: x\r\n\r\n",), "400"),
        ((b"GET /livez HTTP/1.1\r\nX: a\x00",), "400"),  # a NUL
        ((b"GET /livez\r\n",), "400"),  # HTTP/0.9: its head never has a blank line
        ((b"GET /livez HTTP/2.0\r\n",), "505"),
        ((b"GET /" + b"a" * HEAD_LIMIT,), "414"),  # no end of line within the limit
        ((b"GET /" + b"a" * HEAD_LIMIT + b" HTTP/1.1\r\n\r\n",), "414"),
        ((b"GET /livez HTTP/1.1\r\nX: " + b"a" * HEAD_LIMIT,), "431"),
        ((b"GET /livez HTTP/1.1\r\n" + b"X: 1\r\n" * 101 + b"\r\n",), "400"),
        ((b"GET /livez HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",), "501"),
    ],
)
def test_a_head_that_cannot_be_served_is_refused_as_soon_as_it_shows(
    chunks: tuple[bytes, ...], status: str
) -> None:
    assert refused(*chunks) == status


def test_what_follows_the_head_is_not_examined() -> None:
    """A body (or pipelined bytes) may hold anything: it is drained, never parsed."""
    env = read(b"GET /livez HTTP/1.1\r\nContent-Length: 4\r\n\r\n\x00\r\n\n")
    assert env["CONTENT_LENGTH"] == "4"
    assert read(b"GET /livez HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nGET /x HTTP/1.1")


def test_a_trailing_cr_waits_for_its_lf() -> None:
    reader = HeadReader()
    assert reader.feed(b"GET /livez HTTP/1.1\r") is None
    assert reader.feed(b"\n\r") is None
    assert reader.feed(b"\n") == b"GET /livez HTTP/1.1\r\n\r\n"


def test_a_header_with_an_underscore_is_not_taken_for_one_with_a_hyphen() -> None:
    """`Content_Length` and `X_Forwarded_For` became CONTENT_LENGTH and HTTP_X_FORWARDED_FOR, as the
    hyphenated headers a proxy in front checks (or sets) do: they are left out of the environ."""
    env = read(b"GET /livez HTTP/1.1\r\nX_A: 1\r\nX-A: 2\r\nContent_Length: 9\r\n\r\n")
    assert env["HTTP_X_A"] == "2" and env["CONTENT_LENGTH"] == ""
