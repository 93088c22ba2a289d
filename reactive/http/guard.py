"""``UploadGuard``: ASGI middleware that refuses an upload from its URL and headers alone (403,
413, 415) before Django's ASGI handler reads the whole body into a temporary file."""

from __future__ import annotations

import io
from typing import Any

from django.core.handlers.asgi import ASGIRequest
from django.urls import reverse

from reactive.exceptions import RequestError
from reactive.http.files import check_upload
from reactive.http.plumbing import error_response, with_cors

Scope = dict[str, Any]


class UploadGuard:
    """Wrap the project's HTTP application: ``UploadGuard(get_asgi_application())``.

    Without it uploads are still refused with the same answers, but only after the server has
    received the body (Django spools it to disk first, so memory stays bounded either way).
    """

    def __init__(self, app: Any) -> None:
        self.app = app
        self._path: str | None = None

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope.get("method") == "POST" and self._is_upload(scope):
            request = ASGIRequest(scope, io.BytesIO())
            try:
                check_upload(request)
            except RequestError as exc:
                await _send(send, with_cors(request, error_response(exc)))
                return
        await self.app(scope, receive, send)

    def _is_upload(self, scope: Scope) -> bool:
        if self._path is None:
            self._path = reverse("reactive:storage_upload")
        return bool(scope.get("path") == self._path)


async def _send(send: Any, response: Any) -> None:
    headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in response.items()]
    headers += [(b"content-length", str(len(response.content)).encode()),
                (b"connection", b"close")]
    await send({"type": "http.response.start", "status": response.status_code,
                "headers": headers})
    await send({"type": "http.response.body", "body": response.content})
