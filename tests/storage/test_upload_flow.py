"""The upload flow over real HTTP: the npm client's generate/POST/attach/fetch, single-use and
signed URLs (403), content types (415), size limits (413) and memory use of a 200 MB upload."""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from django.core import signing
from django.test import RequestFactory, override_settings

from reactive.http import files as file_views
from reactive.models import StoredFile
from reactive.storage import links

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]


def call(server: str, kind: str, path: str, args: dict[str, Any] | None = None) -> Any:
    response = requests.post(f"{server}/api/{kind}", json={"path": path, "args": args or {}},
                             timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def upload_url(server: str) -> str:
    body = call(server, "mutation", "testapp/files:generate_upload_url")
    assert body["status"] == "success", body
    assert body["value"].startswith(f"{server}/api/storage/upload?token=")
    return str(body["value"])


def test_upload_flow_with_the_official_npm_client(storage_server_url: str, node_client: Any
                                                  ) -> None:
    # When the npm client generates a URL, POSTs a blob, attaches it and watches the list
    result = node_client.run("upload.mjs", storage_server_url,
                             {"text": "hello files", "caption": "npm"})
    # Then the upload answered a storage id, and the live list serves the same bytes and type
    assert result["uploadStatus"] == 200
    stored = StoredFile.objects.get(pk=result["storageId"])
    assert (stored.size, stored.content_type) == (11, "text/plain")
    assert result["status"] == 200
    assert result["contentType"] == "text/plain"
    assert result["text"] == "hello files"


def test_upload_url_is_single_use(storage_server_url: str) -> None:
    url = upload_url(storage_server_url)
    first = requests.post(url, data=b"one", headers={"Content-Type": "text/plain"}, timeout=10)
    second = requests.post(url, data=b"two", headers={"Content-Type": "text/plain"}, timeout=10)
    assert first.status_code == 200
    assert second.status_code == 403
    assert second.json()["code"] == "UploadUrlUsed"
    assert StoredFile.objects.count() == 1


def test_tampered_and_expired_upload_urls_are_refused_with_403(storage_server_url: str) -> None:
    url = upload_url(storage_server_url)
    tampered = url[:-3] + ("aaa" if not url.endswith("aaa") else "bbb")
    no_token = url.split("?")[0]

    class Past(signing.TimestampSigner):
        def timestamp(self) -> str:
            return signing.b62_encode(int(time.time()) - 7200)

    old = Past(salt=links.UPLOAD_SALT).sign_object(uuid.uuid4().hex)
    expired = f"{no_token}?token={old}"
    answers = {
        name: requests.post(target, data=b"x", headers={"Content-Type": "text/plain"}, timeout=10)
        for name, target in {"tampered": tampered, "none": no_token, "expired": expired}.items()
    }
    assert {k: (r.status_code, r.json()["code"]) for k, r in answers.items()} == {
        "tampered": (403, "UploadUrlInvalid"),
        "none": (403, "UploadUrlInvalid"),
        "expired": (403, "UploadUrlExpired"),
    }
    assert StoredFile.objects.count() == 0


def test_wrong_content_type_is_refused_with_415(storage_server_url: str) -> None:
    url = upload_url(storage_server_url)
    response = requests.post(url, data=b"<html>", headers={"Content-Type": "text/html"},
                             timeout=10)
    assert response.status_code == 415
    assert response.json()["code"] == "UnsupportedMediaType"
    # The URL was not spent by the refused attempt
    ok = requests.post(url, data=b"hi", headers={"Content-Type": "text/plain"}, timeout=10)
    assert ok.status_code == 200


def test_declared_oversize_upload_gets_413_before_the_body_is_sent(storage_server_url: str
                                                                   ) -> None:
    # Given a request that declares 300 MiB (over the 256 MiB limit) and sends 5 bytes
    url = upload_url(storage_server_url)
    target = url.removeprefix(storage_server_url)
    host, port = storage_server_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(
            f"POST {target} HTTP/1.1\r\nHost: {host}\r\nContent-Type: text/plain\r\n"
            f"Content-Length: {300 * 1024 * 1024}\r\n\r\nhello".encode()
        )
        # Then the answer comes at once, without waiting for the rest of the body
        received = b""
        while chunk := sock.recv(65536):  # the server closes the connection after answering
            received += chunk
        reply = received.decode(errors="replace")
    assert reply.startswith("HTTP/1.1 413"), reply[:200]
    assert "PayloadTooLarge" in reply


def test_streamed_body_over_the_limit_is_cut_off_with_413(settings: Any) -> None:
    # Given a 1 KiB limit and a 2 KiB body with no usable Content-Length (read as a stream)
    url = links.upload_url()
    request = RequestFactory().post(url, data=b"x" * 2048, content_type="text/plain")
    request.META["CONTENT_LENGTH"] = ""
    with override_settings(REACTIVE={**settings.REACTIVE, "STORAGE_MAX_UPLOAD_BYTES": 1024}):
        response = file_views.upload(request)
    assert response.status_code == 413
    assert StoredFile.objects.count() == 0


def _rss_kib(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise AssertionError(f"{key} not in /proc/{pid}/status")


def _chunks(total: int, size: int = 1024 * 1024) -> Iterator[bytes]:
    block = bytes(range(256)) * (size // 256)
    for _ in range(total // size):
        yield block


def test_200_mb_upload_is_streamed_without_holding_it_in_memory(
    storage_server_url: str, storage_server_pid: int
) -> None:
    # Given the server's resident memory before the upload
    url = upload_url(storage_server_url)
    before = _rss_kib(storage_server_pid, "VmRSS")
    # When 200 MiB are streamed to it (chunked, no Content-Length)
    response = requests.post(url, data=_chunks(200 * 1024 * 1024),
                             headers={"Content-Type": "application/octet-stream"}, timeout=110)
    peak = _rss_kib(storage_server_pid, "VmHWM")
    # Then it is stored whole, and the server's peak RSS grew far less than the file
    assert response.status_code == 200, response.text
    stored = StoredFile.objects.get(pk=response.json()["storageId"])
    assert stored.size == 200 * 1024 * 1024
    print(f"upload 200 MiB: rss_before={before} KiB peak={peak} KiB growth={peak - before} KiB")
    assert peak - before < 64 * 1024
