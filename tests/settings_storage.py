"""The test settings for a server that serves file storage: absolute URLs pointing at itself,
a 256 MiB upload limit, a few allowed content types and no error details."""

from __future__ import annotations

import os

from tests.settings import *  # noqa: F403
from tests.settings import REACTIVE

REACTIVE = {
    **REACTIVE,
    "STORAGE_URL_BASE": os.environ["REACTIVE_TEST_PUBLIC_URL"],
    "STORAGE_MAX_UPLOAD_BYTES": 256 * 1024 * 1024,
    "STORAGE_ALLOWED_CONTENT_TYPES": ["image/*", "text/plain", "application/octet-stream"],
    "EXPOSE_ERROR_DETAILS": False,
}
