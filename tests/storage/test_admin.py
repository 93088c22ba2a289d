"""The stored-file admin: a list with image previews; deleting a file there deletes its bytes."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client

from reactive.functions.runtime import runtime
from reactive.models import StoredFile
from reactive.storage import files

pytestmark = pytest.mark.django_db(transaction=True)


def test_admin_lists_files_with_an_image_preview_and_deletes_bytes() -> None:
    png = files.store([b"\x89PNG not really"], content_type="image/png")
    png.save()
    text_id = runtime.run("testapp/files:store_text", {"text": "plain"})
    admin = get_user_model().objects.create_superuser("root", "root@example.com", "pw")
    browser = Client()
    browser.force_login(admin)
    page = browser.get("/admin/reactive/storedfile/").content.decode()
    assert f'<img src="/api/storage/{png.id}?exp=' in page
    assert f'<a href="/api/storage/{text_id}?exp=' in page
    # Deleting in the admin removes the row and, after commit, the bytes
    response = browser.post(f"/admin/reactive/storedfile/{png.id}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not StoredFile.objects.filter(pk=png.id).exists()
    assert not (Path(settings.MEDIA_ROOT) / png.name).exists()
