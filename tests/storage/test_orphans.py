"""The orphan sweep: old files that no row references are deleted (rows and bytes); referenced,
young or swept-off files stay; spent upload claims are pruned; checks on the settings."""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings
from django.utils import timezone

from reactive.checks import check_storage
from reactive.functions.runtime import runtime
from reactive.models import StoredFile, UploadClaim
from reactive.storage import orphans
from reactive.tasks import storage_sweep
from tests.testapp.models import Photo

pytestmark = pytest.mark.django_db(transaction=True)


def stored(text: str, age_hours: float) -> StoredFile:
    storage_id = runtime.run("testapp/files:store_text", {"text": text})
    created = timezone.now() - datetime.timedelta(hours=age_hours)
    StoredFile.objects.filter(pk=storage_id).update(created_at=created)
    return StoredFile.objects.get(pk=storage_id)


def test_sweep_deletes_only_old_unreferenced_files() -> None:
    # Given an old orphan, an old file a Photo references, and a young orphan
    old_orphan = stored("old", age_hours=48)
    referenced = stored("kept", age_hours=48)
    young = stored("young", age_hours=1)
    Photo.objects.create(file_id=referenced.pk, caption="ref")
    UploadClaim.objects.create(token=old_orphan.pk,
                               claimed_at=timezone.now() - datetime.timedelta(hours=3))
    # When the Celery task body runs
    storage_sweep()
    # Then only the old orphan is gone, with its bytes; the stale claim too
    assert set(StoredFile.objects.values_list("pk", flat=True)) == {referenced.pk, young.pk}
    assert not (Path(settings.MEDIA_ROOT) / old_orphan.name).exists()
    assert (Path(settings.MEDIA_ROOT) / referenced.name).exists()
    assert not UploadClaim.objects.exists()


def test_sweep_is_off_when_orphan_age_is_none(settings: Any) -> None:
    stored("old", age_hours=1000)
    with override_settings(REACTIVE={**settings.REACTIVE, "STORAGE_ORPHAN_AGE": None}):
        assert orphans.sweep() == 0
    assert StoredFile.objects.count() == 1


def test_references_come_from_foreign_keys_to_stored_file() -> None:
    assert (Photo, "file_id") in list(orphans.references())


def test_storage_backend_must_name_a_configured_storage(settings: Any) -> None:
    with override_settings(REACTIVE={**settings.REACTIVE, "STORAGE_BACKEND": "nope"}):
        assert [m.id for m in check_storage()] == ["reactive.E030", "reactive.W030"]
        with pytest.raises(SystemCheckError, match=r"reactive\.E030"):
            call_command("check")
    with override_settings(REACTIVE={**settings.REACTIVE, "STORAGE_URL_BASE": "http://x.test"}):
        assert check_storage() == []
