"""Serving stored files and ctx.storage in functions: Range, ETag, HEAD, signed URLs, unknown
ids, Id[StoredFile], actions' store/get/delete, and live queries when a file is deleted."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
import requests
from django.conf import settings

from reactive.exceptions import ArgumentError, StorageError
from reactive.functions.runtime import Call, runtime
from reactive.functions.transaction import in_thread
from reactive.models import StoredFile
from tests.support.syncclient import SyncClient
from tests.testapp.models import Photo

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(90)]

TEXT = "0123456789abcdef"


def stored_url(server: str) -> tuple[str, str]:
    storage_id = runtime.run("testapp/files:store_text", {"text": TEXT})
    url = runtime.run("testapp/files:url", {"storage_id": storage_id})
    assert url.startswith("/api/storage/")  # this process has no STORAGE_URL_BASE: a path
    return storage_id, server + url


def test_get_url_serves_bytes_with_type_etag_and_ranges(storage_server_url: str) -> None:
    storage_id, url = stored_url(storage_server_url)
    whole = requests.get(url, timeout=10)
    assert whole.status_code == 200
    assert whole.text == TEXT
    assert whole.headers["Content-Type"] == "text/plain"
    assert whole.headers["Accept-Ranges"] == "bytes"
    assert whole.headers["Content-Security-Policy"] == "sandbox"
    etag = whole.headers["ETag"]
    assert etag == f'"{StoredFile.objects.get(pk=storage_id).sha256}"'
    ranges = {
        "bytes=2-5": (206, "2345", "bytes 2-5/16"),
        "bytes=10-": (206, "abcdef", "bytes 10-15/16"),
        "bytes=-3": (206, "def", "bytes 13-15/16"),
        "bytes=0-999": (206, TEXT, "bytes 0-15/16"),
    }
    for header, (status, body, content_range) in ranges.items():
        part = requests.get(url, headers={"Range": header}, timeout=10)
        assert (part.status_code, part.text, part.headers["Content-Range"]) == (
            status, body, content_range), header
    unsatisfiable = requests.get(url, headers={"Range": "bytes=99-"}, timeout=10)
    assert unsatisfiable.status_code == 416
    assert requests.get(url, headers={"If-None-Match": etag}, timeout=10).status_code == 304
    head = requests.head(url, timeout=10)
    assert (head.status_code, head.headers["Content-Length"], head.content) == (200, "16", b"")


def test_tampered_or_unknown_file_urls_are_refused(storage_server_url: str) -> None:
    storage_id, url = stored_url(storage_server_url)
    bad_sig = url[:-4] + "0000"
    later_exp = url.replace("exp=", "exp=9")
    other_file = url.replace(storage_id, str(uuid.uuid4()))
    for target in (bad_sig, later_exp, other_file, url.split("?")[0]):
        answer = requests.get(target, timeout=10)
        assert answer.status_code == 403, target
        assert answer.json()["code"] == "FileUrlInvalid"
    # A deleted file's URL answers 404
    runtime.run("testapp/files:delete", {"storage_id": storage_id})
    assert requests.get(url, timeout=10).status_code == 404


def test_actions_store_get_and_delete_bytes() -> None:
    storage_id = runtime.run("testapp/files:store_text", {"text": "kept"})
    stored = StoredFile.objects.get(pk=storage_id)
    path = Path(settings.MEDIA_ROOT) / stored.name
    assert path.read_bytes() == b"kept"
    assert runtime.run("testapp/files:read_text", {"storage_id": storage_id}) == "kept"
    meta = runtime.run("testapp/files:metadata", {"storage_id": storage_id})
    assert meta["size"] == 4 and meta["contentType"] == "text/plain"
    assert meta["_id"] == storage_id and len(meta["sha256"]) == 64
    runtime.run("testapp/files:delete_from_action", {"storage_id": storage_id})
    assert runtime.run("testapp/files:read_text", {"storage_id": storage_id}) is None
    assert runtime.run("testapp/files:metadata", {"storage_id": storage_id}) is None
    assert not path.exists()


def test_unknown_and_malformed_storage_ids_are_clear_errors() -> None:
    with pytest.raises(StorageError) as malformed:
        runtime.run("testapp/files:url", {"storage_id": "not-an-id"})
    assert malformed.value.data == {"code": "StorageIdInvalid", "storageId": "not-an-id"}
    missing = "00000000-0000-0000-0000-000000000000"
    with pytest.raises(StorageError) as unknown:
        runtime.run("testapp/files:delete", {"storage_id": missing})
    assert unknown.value.data == {"code": "StorageFileNotFound", "storageId": missing}
    # Over HTTP the client gets them as ConvexError data
    outcome = runtime.call(Call("testapp/files:url", {"storage_id": "not-an-id"}))
    assert outcome.has_error_data and outcome.error_data == {
        "code": "StorageIdInvalid", "storageId": "not-an-id"}


def test_id_of_stored_file_validates_arguments() -> None:
    with pytest.raises(ArgumentError) as bad:
        runtime.run("testapp/files:attach", {"storage_id": "nope", "caption": "x"})
    assert bad.value.errors[0][0] == "storage_id"
    storage_id = runtime.run("testapp/files:store_text", {"text": "ok"})
    runtime.run("testapp/files:attach", {"storage_id": storage_id, "caption": "ok"})
    assert str(Photo.objects.get(caption="ok").file_id) == storage_id


async def test_deleting_a_file_updates_live_queries_that_list_it(storage_server_url: str
                                                                 ) -> None:
    storage_id = await in_thread(runtime.run, "testapp/files:store_text", {"text": "live"})
    async with SyncClient(storage_server_url) as client:
        # Given a subscription to the file's metadata
        query = await client.subscribe("testapp/files:metadata", {"storage_id": storage_id})
        first: Any = await client.result(query)
        assert first["size"] == 4
        # When another caller deletes the file
        await in_thread(runtime.run, "testapp/files:delete", {"storage_id": storage_id})
        # Then the subscription's next result is null
        assert await client.result(query, lambda value: value is None) is None
