"""A change-data-capture consumer of the streaming-export API, as a warehouse loader would be:
snapshot one table, then follow its deltas, saving documents and cursor together (atomically)
after every page so that it can be killed at any moment and resumed.

    python -m tests.support.cdc_consumer URL ADMIN_KEY TABLE STATE_FILE
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import requests


def get(url: str, key: str, path: str, **params: Any) -> dict[str, Any]:
    """GET a page, retrying what a real loader retries (timeouts, 5xx); a 4xx is final."""
    for attempt in range(10):
        try:
            response = requests.get(f"{url}{path}", params=params, timeout=20,
                                    headers={"Authorization": f"Convex {key}"})
        except requests.RequestException as exc:
            print(f"retrying after {exc!r}", file=sys.stderr, flush=True)
        else:
            if response.status_code < 500:
                response.raise_for_status()
                body: dict[str, Any] = response.json()
                return body
            print(f"retrying after {response.status_code}: {response.text[:500]}",
                  file=sys.stderr, flush=True)
        time.sleep(0.2 * (attempt + 1))
    raise SystemExit("giving up after 10 attempts")


def save(path: Path, state: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state))
    os.replace(tmp, path)


def main(url: str, key: str, table: str, state_path: str) -> None:
    path = Path(state_path)
    state = json.loads(path.read_text()) if path.exists() else {
        "phase": "snapshot", "docs": {}, "snapshot": None, "cursor": None, "pages": 0,
    }
    while True:
        if state["phase"] == "snapshot":
            params = {"tableName": table, "format": "json"}
            if state["snapshot"] is not None:
                params.update(snapshot=state["snapshot"], cursor=state["cursor"])
            page = get(url, key, "/api/list_snapshot", **params)
            for doc in page["values"]:
                state["docs"][doc["_id"]] = doc
            state.update(snapshot=page["snapshot"], cursor=page["cursor"])
            if not page["hasMore"]:
                state.update(phase="deltas", cursor=page["snapshot"])
        else:
            page = get(url, key, "/api/document_deltas", tableName=table, format="json",
                       cursor=state["cursor"])
            for doc in page["values"]:
                if doc.get("_deleted"):
                    state["docs"].pop(doc["_id"], None)
                else:
                    state["docs"][doc["_id"]] = doc
            state["cursor"] = page["cursor"]
            if not page["values"]:
                time.sleep(0.05)  # caught up: poll again shortly
        state["pages"] += 1
        save(path, state)


if __name__ == "__main__":
    main(*sys.argv[1:5])
