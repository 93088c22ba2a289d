"""S3 through django-storages by settings alone, against moto's S3-compatible server on
loopback: store, read, serve by the backend's signed URL, upload through the upload URL."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
import requests
from django.test import Client, override_settings

from reactive.embedded.ports import free_port
from reactive.functions.runtime import runtime
from reactive.models import StoredFile
from reactive.storage import links

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]

BUCKET = "reactive-tests"
CREDENTIALS = {"access_key": "testing", "secret_key": "testing"}


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                 aws_access_key_id="testing", aws_secret_access_key="testing"
                 ).create_bucket(Bucket=BUCKET)
    yield endpoint
    server.stop()


@pytest.fixture
def s3_storage(s3_endpoint: str, settings: Any) -> Iterator[Any]:
    storages = {**settings.STORAGES, "files": {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {"bucket_name": BUCKET, "endpoint_url": s3_endpoint,
                    "region_name": "us-east-1", **CREDENTIALS},
    }}
    reactive = {**settings.REACTIVE, "STORAGE_BACKEND": "files"}
    with override_settings(STORAGES=storages, REACTIVE=reactive):
        yield boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1",
                           aws_access_key_id="testing", aws_secret_access_key="testing")


def test_actions_store_and_read_files_in_s3(s3_storage: Any) -> None:
    storage_id = runtime.run("testapp/files:store_text", {"text": "in s3"})
    stored = StoredFile.objects.get(pk=storage_id)
    body = s3_storage.get_object(Bucket=BUCKET, Key=stored.name)["Body"].read()
    assert body == b"in s3"
    assert runtime.run("testapp/files:read_text", {"storage_id": storage_id}) == "in s3"
    # get_url is the backend's own signed URL, fetched straight from the S3 server
    url = runtime.run("testapp/files:url", {"storage_id": storage_id})
    assert "Signature=" in url and "Expires=" in url
    assert requests.get(url, timeout=10).content == b"in s3"
    runtime.run("testapp/files:delete", {"storage_id": storage_id})
    assert s3_storage.list_objects_v2(Bucket=BUCKET, Prefix=stored.name).get("KeyCount") == 0


def test_upload_url_stores_into_s3(s3_storage: Any) -> None:
    response = Client().post(links.upload_url(), data=b"\x89PNG fake",
                             content_type="image/png")
    assert response.status_code == 200, response.content
    stored = StoredFile.objects.get(pk=response.json()["storageId"])
    assert stored.content_type == "image/png"
    obj = s3_storage.get_object(Bucket=BUCKET, Key=stored.name)
    assert obj["Body"].read() == b"\x89PNG fake"
