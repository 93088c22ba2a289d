"""Live search with the official npm client: ranked prefix search with a filter on another
column, a nearest-neighbour page and a paginated search stay current as documents are added
and edited, each mutation resolving only once its effect is visible."""

from __future__ import annotations

import pytest

from tests.conftest import NodeClient
from tests.testapp.models import Document

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]


def test_npm_search_subscriptions_follow_writes(live_server_url: str,
                                                node_client: NodeClient) -> None:
    # Given documents to search and to compare by vector
    Document.objects.create(body="ripe bananas", tag="a", embedding=[1, 0, 0])
    Document.objects.create(body="apple tart", tag="a", embedding=[0, 0, 1])
    Document.objects.create(body="apple pie", tag="a", embedding=[0, 1, 0])
    Document.objects.create(body="apple juice", tag="b", embedding=[0, 1, 0])
    # When the npm client subscribes and writes
    out = node_client.run("search.mjs", live_server_url, timeout=90)
    trace = {str(t["step"]): t for t in out["trace"]}
    steps = [t for t in out["trace"]]
    # Then the prefix search ("bana" matches bananas) shows tag "a" only, as writes land
    assert steps[0]["search"] == ["ripe bananas"]
    assert steps[0]["similar"] == ["ripe bananas", "apple pie"] or \
        steps[0]["similar"][0] == "ripe bananas"
    assert sorted(steps[1]["search"]) == ["banana split", "ripe bananas"]
    assert sorted(steps[2]["search"]) == ["banana split", "ripe bananas"]  # tag b filtered
    # ... an edit that removes the term removes the hit
    edited = trace[str(["edit", "banana split"])]
    assert edited["search"] == ["ripe bananas"]
    assert sorted(steps[-2]["search"]) == ["apple banana", "ripe bananas"]
    # ... the nearest-neighbour page takes a closer document in
    assert steps[3]["similar"] == ["ripe bananas", "cherry pie"]
    assert steps[-2]["similar"] == ["ripe bananas", "cherry pie"]
    # ... and the paginated search (tag "a", "apple", by body) follows inserts into its pages
    assert steps[0]["paged"] == ["apple pie", "apple tart"]
    assert steps[-1]["paged"] == ["apple banana", "apple crumble", "apple pie", "apple tart"]
    assert steps[-1]["status"] == "Exhausted"
    # And a bad embedding is refused with a clear error, hurting nothing else
    assert out["badArgs"] == "DIMENSIONS"
