"""Signed links: upload URLs (expiring, each bound to the one file id it may create) and
download URLs (expiring at a bucket boundary, so re-runs of a query return the same URL)."""

from __future__ import annotations

import datetime
import time
import uuid
from urllib.parse import urlencode

from django.core import signing
from django.urls import reverse
from django.utils.crypto import constant_time_compare

from reactive.conf import reactive_settings
from reactive.exceptions import BadRequest

UPLOAD_SALT = "reactive.storage.upload"
SERVE_SALT = "reactive.storage.serve"


def upload_url() -> str:
    """A new upload URL: POST the file's bytes to it within ``STORAGE_UPLOAD_URL_TTL``."""
    token = signing.dumps(uuid.uuid4().hex, salt=UPLOAD_SALT, compress=False)
    return _absolute(reverse("reactive:storage_upload") + "?" + urlencode({"token": token}))


def read_upload_token(token: str | None) -> uuid.UUID:
    """The file id an upload token allows creating; BadRequest (403) if expired or tampered."""
    if not token:
        raise _forbidden("UploadUrlInvalid", "The upload URL has no token; ask for a new URL.")
    ttl = reactive_settings().STORAGE_UPLOAD_URL_TTL
    try:
        value = signing.loads(
            token, salt=UPLOAD_SALT, max_age=datetime.timedelta(seconds=ttl)
        )
    except signing.SignatureExpired:
        raise _forbidden(
            "UploadUrlExpired",
            "The upload URL has expired (REACTIVE['STORAGE_UPLOAD_URL_TTL']); ask for a new one.",
        ) from None
    except signing.BadSignature:
        raise _forbidden(
            "UploadUrlInvalid", "The upload URL is not valid (bad signature)."
        ) from None
    try:
        return uuid.UUID(hex=str(value))
    except ValueError:  # signed by us, so only a change of format could get here
        raise _forbidden("UploadUrlInvalid", "The upload URL is not valid.") from None


def download_url(file_id: uuid.UUID, now: float | None = None) -> str:
    """A URL serving the file until the end of the next ``STORAGE_URL_TTL`` bucket.

    Valid for between one and two TTLs; the same within one bucket, so a query that re-runs
    returns an identical result instead of pushing a new URL every time.
    """
    ttl = reactive_settings().STORAGE_URL_TTL
    now = time.time() if now is None else now
    expires = int((now // ttl + 2) * ttl)
    query = urlencode({"exp": expires, "sig": _signature(file_id, expires)})
    return _absolute(reverse("reactive:storage_file", args=[str(file_id)]) + "?" + query)


def check_download(file_id: uuid.UUID, expires: str | None, signature: str | None) -> int:
    """Return the expiry (Unix seconds) of a valid download link; BadRequest (403) otherwise."""
    if not expires or not expires.isdigit() or not signature:
        raise _forbidden("FileUrlInvalid", "The file URL is missing its 'exp' or 'sig'.")
    if not constant_time_compare(signature, _signature(file_id, int(expires))):
        raise _forbidden("FileUrlInvalid", "The file URL is not valid (bad signature).")
    if int(expires) <= time.time():
        raise _forbidden("FileUrlExpired", "The file URL has expired; fetch a fresh one.")
    return int(expires)


def _signature(file_id: uuid.UUID, expires: int) -> str:
    return signing.Signer(salt=SERVE_SALT).signature(f"{file_id.hex}:{expires}")


def _absolute(path: str) -> str:
    base = reactive_settings().STORAGE_URL_BASE
    return base.rstrip("/") + path if base else path


def _forbidden(code: str, message: str) -> BadRequest:
    return BadRequest(message, code=code, http_status=403)
