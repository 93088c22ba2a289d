"""``ctx.storage``: the file-storage API each kind of function gets, over
:mod:`reactive.storage` (queries read, mutations also issue upload URLs and delete, actions
also store and fetch bytes; ``async def`` actions await every method)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO, Any

from django.db import transaction

from reactive.functions.transaction import in_thread, run_serializable
from reactive.storage import files, links

CHUNK = files.CHUNK_BYTES


class QueryStorage:
    """``ctx.storage`` in queries. Each lookup is an ordinary read of the ``StoredFile`` table,
    so a live query that calls it re-runs when the file is deleted."""

    def get_url(self, storage_id: Any) -> str | None:
        """A URL serving the file, or None when no file has this id.

        Our own signed URL (Range, ETag, Content-Type; valid one to two
        ``STORAGE_URL_TTL``) or, for backends such as S3, the backend's URL. Raises
        StorageError for a malformed id.
        """
        stored = _find(storage_id)
        return None if stored is None else files.url(stored)

    def get_metadata(self, storage_id: Any) -> dict[str, Any] | None:
        """``{_id, _creationTime, sha256 (hex), size, contentType}``, or None when missing."""
        stored = _find(storage_id)
        return None if stored is None else files.metadata(stored)


class MutationStorage(QueryStorage):
    """``ctx.storage`` in mutations: also ``generate_upload_url`` and ``delete``."""

    def generate_upload_url(self) -> str:
        """A signed, single-use URL to POST one file to; it answers ``{"storageId": ...}``.

        It expires after ``STORAGE_UPLOAD_URL_TTL`` and accepts at most
        ``STORAGE_MAX_UPLOAD_BYTES`` of a type in ``STORAGE_ALLOWED_CONTENT_TYPES``.
        """
        return links.upload_url()

    def delete(self, storage_id: Any) -> None:
        """Delete the file: its row in this transaction, its bytes once that commits.

        Raises StorageError when no file has this id.
        """
        _delete(storage_id)


class SyncActionStorage(MutationStorage):
    """``ctx.storage`` in plain ``def`` actions: also ``store`` and ``get``."""

    def store(self, data: bytes | IO[bytes], *, content_type: str = "application/octet-stream"
              ) -> str:
        """Store bytes (or a binary file object, read in chunks) and return the storage id."""
        stored = files.store(_chunks(data), content_type=content_type)
        try:
            run_serializable(lambda attempt: stored.save(force_insert=True),
                             function="storage.store")
        except BaseException:
            files.discard(stored.name)
            raise
        return str(stored.id)

    def get(self, storage_id: Any) -> IO[bytes] | None:
        """The file's bytes opened for reading (close it), or None when no file has this id."""
        stored = _find(storage_id)
        return None if stored is None else files.open_file(stored)

    def delete(self, storage_id: Any) -> None:
        run_serializable(lambda attempt: _delete(storage_id), function="storage.delete")


class AsyncActionStorage:
    """``ctx.storage`` in ``async def`` actions: ``SyncActionStorage`` with awaitable methods."""

    def __init__(self) -> None:
        self.sync = SyncActionStorage()

    async def generate_upload_url(self) -> str:
        return self.sync.generate_upload_url()

    async def get_url(self, storage_id: Any) -> str | None:
        return await in_thread(self.sync.get_url, storage_id)

    async def get_metadata(self, storage_id: Any) -> dict[str, Any] | None:
        return await in_thread(self.sync.get_metadata, storage_id)

    async def delete(self, storage_id: Any) -> None:
        await in_thread(self.sync.delete, storage_id)

    async def store(
        self, data: bytes | IO[bytes], *, content_type: str = "application/octet-stream"
    ) -> str:
        return await in_thread(self.sync.store, data, content_type=content_type)

    async def get(self, storage_id: Any) -> IO[bytes] | None:
        return await in_thread(self.sync.get, storage_id)


def _find(storage_id: Any) -> Any:
    from reactive.models import StoredFile

    return StoredFile.objects.filter(pk=files.parse_id(storage_id)).first()


def _delete(storage_id: Any) -> None:
    from reactive.models import StoredFile

    file_id = files.parse_id(storage_id)
    stored = StoredFile.objects.filter(pk=file_id).first()
    if stored is None:
        raise files.missing(file_id)
    stored.delete()
    name = stored.name
    transaction.on_commit(lambda: files.discard(name))


def _chunks(data: bytes | IO[bytes]) -> Iterator[bytes]:
    if isinstance(data, bytes | bytearray | memoryview):
        for start in range(0, len(data), CHUNK):
            yield bytes(data[start : start + CHUNK])
        return
    while chunk := data.read(CHUNK):
        yield chunk
