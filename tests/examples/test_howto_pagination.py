"""How-to: test a client that follows pages (``docs/howto.rst``)."""

from __future__ import annotations

from typing import Any

import requests

from tserver import Response, TestServer
from tserver.matchers import has_arg


def fetch_all_items(base_url: str) -> list[Any]:
    """The code under test: reads ``/items?page=N`` until ``has_more`` is false."""
    items: list[Any] = []
    page = 1
    with requests.Session() as session:
        while True:
            response = session.get(f"{base_url}items", params={"page": page}, timeout=5)
            response.raise_for_status()
            body = response.json()
            items += body["items"]
            if not body["has_more"]:
                return items
            page += 1


def test_reads_every_page() -> None:
    # strict: only rules answer; a request for page 3 would fail the test
    with TestServer(strict=True) as srv:
        srv.add_response(
            Response(json={"items": [1, 2], "has_more": True}), match=has_arg("page", "1")
        )
        srv.add_response(
            Response(json={"items": [3], "has_more": False}), match=has_arg("page", "2")
        )

        assert fetch_all_items(srv.url) == [1, 2, 3]

        srv.assert_history().has_length(2).contains_in_order(
            has_arg("page", "1"), has_arg("page", "2")
        )
