"""ctx.db live with the official npm client: subscriptions on document fields follow writes."""

from __future__ import annotations

import pytest

from reactive.documents import store
from tests.conftest import NodeClient

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]


def test_npm_document_subscriptions_follow_writes(live_server_url: str,
                                                  node_client: NodeClient) -> None:
    # Given three notes written schema-free
    for body, tags, pinned in (("old1", ["x"], False), ("old2", [], True), ("old3", ["x"], False)):
        store.insert("notes", {"body": body, "tags": tags, "pinned": pinned})
    # When the npm client subscribes and writes
    out = node_client.run("documents.mjs", live_server_url, timeout=90)
    steps = {t["step"]: t for t in out["trace"]}
    # Then each subscription shows every write once its mutation resolved
    assert steps["initial"]["pinned"] == ["old2"]
    assert steps["initial"]["tagged"] == ["old1", "old3"]
    assert steps["initial"]["paged"] == ["old3", "old2"]
    assert steps["add a"]["pinned"] == ["old2"]
    assert steps["add a"]["tagged"] == ["old1", "old3", "a"]
    assert steps["add b"]["pinned"] == ["b", "old2"]
    assert steps["pin a"]["pinned"] == ["b", "a", "old2"]
    assert steps["delete b"]["pinned"] == ["a", "old2"]
    assert steps["loadMore"]["paged"] == ["a", "old3", "old2", "old1"]
    assert steps["loadMore"]["status"] == "Exhausted"
    # And bad input gets a clear ConvexError code, hurting nothing else
    assert sorted(out["errors"].values()) == ["InvalidDocument", "InvalidDocumentId",
                                              "InvalidTableName"]
