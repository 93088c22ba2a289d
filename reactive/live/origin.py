"""Which pages may open a sync websocket: the ``Origin`` of its handshake against the server's
own origin and ``WEBSOCKET_ALLOWED_ORIGINS``."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.http.request import split_domain_port, validate_host

from reactive.conf import reactive_settings

DEFAULT_PORTS = {"http": 80, "https": 443}


def origin_allowed(scope: dict[str, Any]) -> bool:
    """No Origin (Node, Python clients), the server's own origin, or a configured one.

    Origins are compared as (scheme, host, port), default ports filled in: a page served by
    another port or scheme of the same host is another origin. The server's own origin is the
    request's ``Host`` (an ``ALLOWED_HOSTS`` host) with ``http`` for ``ws`` and ``https`` for
    ``wss``.
    """
    given = origin(scope)
    if given is None:
        return True
    key = origin_key(given)
    if key is None:
        return False
    if key in {origin_key(o) for o in reactive_settings().WEBSOCKET_ALLOWED_ORIGINS}:
        return True
    return key == _own_origin(scope)


def origin_key(origin: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of an http(s) origin, lower-cased, the default port filled in;
    None for anything else (``null``, a path, another scheme)."""
    try:
        parts = urlsplit(origin.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname or parts.path not in ("", "/"):
        return None
    if parts.query or parts.fragment or parts.username or parts.password:
        return None
    return scheme, parts.hostname.lower(), port or DEFAULT_PORTS[scheme]


def _own_origin(scope: dict[str, Any]) -> tuple[str, str, int] | None:
    host = header(scope, b"host")
    if host is None:
        return None
    domain, _ = split_domain_port(host)
    allowed = list(settings.ALLOWED_HOSTS) or ["localhost", "127.0.0.1", "[::1]"]
    if not domain or not validate_host(domain, allowed):
        return None
    scheme = "https" if scope.get("scheme") in ("wss", "https") else "http"
    return origin_key(f"{scheme}://{host}")


def origin(scope: dict[str, Any]) -> str | None:
    """The handshake's ``Origin`` header, if any."""
    return header(scope, b"origin")


def header(scope: dict[str, Any], wanted: bytes) -> str | None:
    """The first value of the handshake header ``wanted`` (lower-case bytes, as ASGI gives
    names), if any."""
    for name, value in scope.get("headers", []):
        if name == wanted:
            return str(value.decode("latin-1"))
    return None
