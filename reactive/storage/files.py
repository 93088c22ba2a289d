"""The bytes of stored files: which Django storage holds them, streaming new ones into it (with
size limit, SHA-256 and no whole-file buffer), opening, deleting, and the URL a client gets."""

from __future__ import annotations

import hashlib
import tempfile
import uuid
from collections.abc import Iterable
from typing import IO, Any

from django.conf import settings
from django.core.files import File
from django.core.files.storage import FileSystemStorage, Storage, storages

from reactive.conf import reactive_settings
from reactive.exceptions import BadRequest, StorageError
from reactive.models import StoredFile
from reactive.storage import links

CHUNK_BYTES = 256 * 1024


def backend() -> Storage:
    """The Django storage holding the bytes: ``STORAGES[REACTIVE['STORAGE_BACKEND']]``."""
    return storages[reactive_settings().STORAGE_BACKEND]


def serves_itself() -> bool:
    """Whether ``get_url`` points at our endpoint rather than the backend's own (signed) URL."""
    mode = reactive_settings().STORAGE_SERVE
    if mode == "auto":
        return isinstance(backend(), FileSystemStorage)
    return mode == "django"


def parse_id(storage_id: Any) -> uuid.UUID:
    """The UUID of a storage id as clients send it; StorageError for anything else."""
    if isinstance(storage_id, uuid.UUID):
        return storage_id
    try:
        return uuid.UUID(str(storage_id)) if isinstance(storage_id, str) else _bad(storage_id)
    except ValueError:
        return _bad(storage_id)


def _bad(storage_id: Any) -> uuid.UUID:
    raise StorageError(
        str(storage_id)[:100], code="StorageIdInvalid",
        message=f"{str(storage_id)[:100]!r} is not a storage id (a UUID string).",
    )


def missing(file_id: uuid.UUID) -> StorageError:
    return StorageError(
        str(file_id), code="StorageFileNotFound", message=f"No stored file has the id '{file_id}'."
    )


def store(
    chunks: Iterable[bytes], *, content_type: str, file_id: uuid.UUID | None = None,
    max_bytes: int | None = None,
) -> StoredFile:
    """Save the bytes of ``chunks`` and return the (unsaved) ``StoredFile`` describing them.

    The chunks go to a temporary file on disk while they are hashed and counted, then to the
    storage backend, so memory use does not grow with the file. More than ``max_bytes`` raises
    BadRequest (413) before anything reaches the backend. The caller saves the row (in its
    own transaction) and calls ``discard`` if that fails.
    """
    file_id = file_id or uuid.uuid4()
    digest, size = hashlib.sha256(), 0
    with tempfile.TemporaryFile(dir=settings.FILE_UPLOAD_TEMP_DIR) as spool:
        for chunk in chunks:
            size += len(chunk)
            if max_bytes is not None and size > max_bytes:
                raise too_large(max_bytes)
            digest.update(chunk)
            spool.write(chunk)
        spool.seek(0)
        name = backend().save(f"reactive/{file_id.hex[:2]}/{file_id.hex}", File(spool))
    return StoredFile(
        id=file_id, name=name, sha256=digest.hexdigest(), size=size, content_type=content_type
    )


def open_file(stored: StoredFile) -> IO[bytes]:
    """The stored bytes, opened for reading (close it, or use it as a context manager)."""
    return backend().open(stored.name, "rb")


def discard(name: str) -> None:
    """Delete the bytes at ``name`` (a file whose row is gone or was never saved)."""
    backend().delete(name)


def url(stored: StoredFile) -> str:
    """The URL a client fetches the file from (see ``serves_itself``)."""
    if serves_itself():
        return links.download_url(stored.id)
    return backend().url(stored.name)


def metadata(stored: StoredFile) -> dict[str, Any]:
    """The file's metadata as functions return it (Convex's ``_storage`` document shape)."""
    return {
        "_id": str(stored.id),
        "_creationTime": stored.created_at.timestamp() * 1000,
        "sha256": stored.sha256,
        "size": stored.size,
        "contentType": stored.content_type,
    }


def content_type_allowed(content_type: str) -> bool:
    kind = content_type.split("/", 1)[0]
    patterns = reactive_settings().STORAGE_ALLOWED_CONTENT_TYPES
    return any(p in ("*/*", content_type, f"{kind}/*") for p in patterns)


def too_large(limit: int) -> BadRequest:
    return BadRequest(
        f"The file is larger than {limit} bytes (REACTIVE['STORAGE_MAX_UPLOAD_BYTES']).",
        code="PayloadTooLarge", http_status=413,
    )
