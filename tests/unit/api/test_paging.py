"""AIP-158 page tokens: pages cover the list once, and a token is bound to its query and process."""

from __future__ import annotations

import pytest

from sidecar._gen.orchestrator.v1 import keys_pb2, models_pb2
from sidecar.api.paging import DEFAULT_PAGE_SIZE, PageTokens
from sidecar.core.errors import InvalidRequestError

ITEMS = list(range(7))


def walk(pages: PageTokens, req: keys_pb2.ListTenantKeysRequest) -> list[list[int]]:
    out = []
    while True:
        page, token = pages.page(ITEMS, pages.request(req))
        out.append(page)
        if not token:
            return out
        req.page_token = token


def test_pages_cover_the_list_once_in_order() -> None:
    pages = PageTokens(b"secret")
    got = walk(pages, keys_pb2.ListTenantKeysRequest(tenant_id="acme", page_size=3))
    assert got == [[0, 1, 2], [3, 4, 5], [6]]
    assert pages.request(models_pb2.ListModelsRequest()).size == DEFAULT_PAGE_SIZE


def field_of(err: pytest.ExceptionInfo[InvalidRequestError]) -> list[str]:
    return [v.field for v in err.value.violations]


def test_a_token_of_another_query_process_or_altered_is_invalid_naming_page_token() -> None:
    pages = PageTokens(b"secret")
    _, token = pages.page(ITEMS, pages.request(keys_pb2.ListTenantKeysRequest(tenant_id="acme", page_size=2)))
    assert token
    others = [
        (pages, keys_pb2.ListTenantKeysRequest(tenant_id="globex", page_token=token)),  # another query
        (PageTokens(b"other"), keys_pb2.ListTenantKeysRequest(tenant_id="acme", page_token=token)),
        (pages, keys_pb2.ListTenantKeysRequest(tenant_id="acme", page_token=token[:-2] + "AA")),
        (pages, keys_pb2.ListTenantKeysRequest(tenant_id="acme", page_token="!!not base64!!")),
        (pages, keys_pb2.ListTenantKeysRequest(tenant_id="acme", page_token="x" * 500)),
    ]
    for tokens, req in others:
        with pytest.raises(InvalidRequestError) as err:
            tokens.request(req)
        assert field_of(err) == ["page_token"], req
    # the page size may change between pages (AIP-158)
    assert (
        pages.request(keys_pb2.ListTenantKeysRequest(tenant_id="acme", page_token=token, page_size=5)).offset
        == 2
    )


@pytest.mark.parametrize("size", [-1, 1001])
def test_a_page_size_out_of_range_names_page_size(size: int) -> None:
    with pytest.raises(InvalidRequestError) as err:
        PageTokens(b"s").request(models_pb2.ListModelsRequest(page_size=size))
    assert field_of(err) == ["page_size"]


def test_a_keyed_list_resumes_after_the_last_key_given_when_items_left_it() -> None:
    pages = PageTokens(b"secret")
    items = [bytes([i]) for i in range(6)]
    req = keys_pb2.ListTenantKeysRequest(tenant_id="acme", page_size=2)
    first, token = pages.page_after(items, pages.request(req, keyed=True), lambda b: b)
    assert first == items[:2] and token
    req.page_token = token
    left = items[2:]  # the first page was worked off: those items are no longer listed
    second, token = pages.page_after(left, pages.request(req, keyed=True), lambda b: b)
    assert second == items[2:4]
    req.page_token = token
    assert pages.page_after(left, pages.request(req, keyed=True), lambda b: b) == (items[4:], "")


def test_a_keyed_token_altered_or_of_another_query_is_invalid_naming_page_token() -> None:
    pages = PageTokens(b"secret")
    req = keys_pb2.ListTenantKeysRequest(tenant_id="acme", page_size=1)
    _, token = pages.page_after([b"a", b"b"], pages.request(req, keyed=True), lambda b: b)
    for bad in (
        keys_pb2.ListTenantKeysRequest(tenant_id="globex", page_token=token),
        keys_pb2.ListTenantKeysRequest(tenant_id="acme", page_token=token[:-2] + "AA"),
        keys_pb2.ListTenantKeysRequest(tenant_id="acme", page_token="A" * 300),
        keys_pb2.ListTenantKeysRequest(tenant_id="acme", page_token="AAAA"),
    ):
        with pytest.raises(InvalidRequestError) as err:
            PageTokens(b"secret").request(bad, keyed=True)
        assert field_of(err) == ["page_token"]
