"""The orphan sweep: delete stored files that no row references once they are old enough, and
prune spent upload claims.

"Referenced" means: some row of an installed model points at the file through a
``ForeignKey``, ``OneToOneField`` or ``ManyToManyField`` to ``StoredFile``. Ids kept in a
``CharField``, a ``JSONField`` or another service do not count: set
``REACTIVE['STORAGE_ORPHAN_AGE'] = None`` if you keep them that way.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Iterator

from django.db import IntegrityError, connection, models, transaction
from django.utils import timezone

from reactive.conf import reactive_settings
from reactive.models import StoredFile, UploadClaim
from reactive.storage import files

logger = logging.getLogger(__name__)

BATCH = 500


def references() -> Iterator[tuple[type[models.Model], str]]:
    """Each (model, column attribute) that can hold a StoredFile id."""
    for rel in StoredFile._meta.get_fields(include_hidden=True):  # related_name="+" too
        if not isinstance(rel, models.ForeignObjectRel):
            continue
        field = rel.field
        if field.many_to_many:
            through = field.remote_field.through  # type: ignore[attr-defined]
            for column in through._meta.fields:
                if column.related_model is StoredFile:
                    yield through, column.attname
        else:
            yield rel.related_model, field.attname


def orphans(now: datetime.datetime | None = None) -> models.QuerySet[StoredFile]:
    """Files older than ``STORAGE_ORPHAN_AGE`` that no row references (none if it is None)."""
    age = reactive_settings().STORAGE_ORPHAN_AGE
    if age is None:
        return StoredFile.objects.none()
    cutoff = (now or timezone.now()) - datetime.timedelta(seconds=age)
    candidates = StoredFile.objects.filter(created_at__lt=cutoff)
    for model, column in references():
        used = model._base_manager.filter(**{f"{column}__isnull": False}).values(column)
        candidates = candidates.exclude(pk__in=used)
    return candidates


def sweep(now: datetime.datetime | None = None) -> int:
    """Delete orphaned files (rows, then bytes) and spent upload claims; return files deleted.

    Each batch is deleted in one transaction; a row referenced meanwhile makes the database's
    foreign key refuse the delete, and that batch is left for the next sweep.
    """
    now = now or timezone.now()
    deleted = 0
    while True:
        batch = list(orphans(now).values_list("pk", "name")[:BATCH])
        if not batch:
            break
        try:
            _delete_rows([pk for pk, _ in batch])
        except IntegrityError:
            logger.info("storage orphan batch referenced meanwhile files=%d", len(batch))
            break
        for _, name in batch:
            _discard(name)
        deleted += len(batch)
    expired = now - datetime.timedelta(seconds=reactive_settings().STORAGE_UPLOAD_URL_TTL)
    UploadClaim.objects.filter(claimed_at__lt=expired).delete()
    if deleted:
        logger.info("storage orphans deleted files=%d", deleted)
    return deleted


def _delete_rows(pks: list[object]) -> None:
    # Plain SQL, not QuerySet.delete(): Django's collector would cascade to (or null) a row
    # that started referencing a file since the select; the foreign key must refuse instead.
    table = connection.ops.quote_name(StoredFile._meta.db_table)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {table} WHERE id = ANY(%s)", [pks])
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")


def _discard(name: str) -> None:
    try:
        files.discard(name)
    except Exception:
        logger.warning("storage orphan bytes not deleted name=%s", name, exc_info=True)
