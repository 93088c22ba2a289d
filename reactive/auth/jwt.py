"""JWT validation against ``REACTIVE['AUTH_PROVIDERS']``: picking the provider, finding the
signing key in its (cached) JWKS, and the claim checks of Convex's reference server.

Keys are kept per JWKS location, not with PyJWT's ``PyJWKClient``: that client neither does
OIDC discovery nor backs off after a failed fetch, and it drops a stale key set when a refresh
fails. Here a set is fetched with a deadline, kept ``AUTH_JWKS_CACHE_TTL`` seconds (and served
stale while the issuer is unreachable), and refetched for an unknown ``kid`` at most once per
``AUTH_JWKS_REFRESH_COOLDOWN``, which also spaces out retries after a failure.
"""

from __future__ import annotations

import base64
import json
import logging
import math
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import Any

import jwt
from django.core.signals import setting_changed
from django.dispatch import receiver
from jwt import PyJWK, PyJWKSet

from reactive.conf import CustomJwtProvider, OidcProvider, ReactiveSettings, reactive_settings
from reactive.exceptions import AuthenticationError

logger = logging.getLogger(__name__)

Provider = OidcProvider | CustomJwtProvider

MAX_TOKEN_LENGTH = 32 * 1024
MAX_DOCUMENT_BYTES = 1024 * 1024  # a discovery document or JWKS larger than this is refused


def verify(token: str) -> dict[str, Any]:
    """Return the claims of ``token`` once its signature, issuer, audience and times check out.

    Raises AuthenticationError whose message says what is wrong (never quoting the token).
    Blocking: it may fetch a discovery document and a JWKS, each within
    ``AUTH_FETCH_TIMEOUT``; async code calls it in a thread. Thread-safe.
    """
    conf = reactive_settings()
    if not conf.AUTH_PROVIDERS:
        raise AuthenticationError(
            "This server accepts no JWTs: configure REACTIVE['AUTH_PROVIDERS'] to validate "
            "tokens, or use the Django session."
        )
    header, unverified = _parse(token)
    issuer = unverified.get("iss")
    if not isinstance(issuer, str):
        raise AuthenticationError("The token has no 'iss' (issuer) claim.")
    provider = _provider(conf.AUTH_PROVIDERS, issuer, unverified.get("aud"))
    algorithm = header.get("alg")
    if algorithm not in provider.algorithms:
        raise AuthenticationError(
            f"The token is signed with {_show(algorithm)}, which the issuer {_show(issuer)} is "
            f"not configured for (accepted: {', '.join(provider.algorithms)})."
        )
    key = _keys_of(provider, conf).signing_key(header.get("kid"))
    return _decode(token, key, provider, conf.AUTH_LEEWAY)


def _parse(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    if not token:
        raise AuthenticationError("The token is empty.")
    if len(token) > MAX_TOKEN_LENGTH:
        raise AuthenticationError(f"The token is longer than {MAX_TOKEN_LENGTH} characters.")
    # Parsed leniently, only to choose the provider and key: the verified decode re-parses
    # strictly (PyJWT's segment checks are slow enough not to be run twice).
    parts = token.split(".")
    try:
        header, claims = (json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)))
                          for p in parts[:2])
    except (ValueError, RecursionError):  # binascii and JSON errors are ValueErrors
        header = claims = None
    if len(parts) != 3 or not isinstance(header, dict) or not isinstance(claims, dict):
        raise AuthenticationError(
            "The token is not a well-formed JWT (three base64url parts: a JSON header, JSON "
            "claims and a signature)."
        )
    return header, claims


def _provider(providers: Sequence[Provider], issuer: str, audience: Any) -> Provider:
    candidates = [p for p in providers if p.issuer.rstrip("/") == issuer.rstrip("/")]
    if not candidates:
        raise AuthenticationError(
            f"No provider in REACTIVE['AUTH_PROVIDERS'] accepts tokens from the issuer "
            f"{_show(issuer)}."
        )
    audiences = [audience] if isinstance(audience, str) else audience
    if not isinstance(audiences, list):
        audiences = []
    for provider in candidates:
        if provider.application_id is None or provider.application_id in audiences:
            return provider
    expected = ", ".join(repr(p.application_id) for p in candidates)
    raise AuthenticationError(
        f"The token's audience ('aud': {_show(audience)}) does not include the applicationID "
        f"configured for the issuer {_show(issuer)} ({expected})."
    )


def _decode(token: str, key: PyJWK, provider: Provider, leeway: float) -> dict[str, Any]:
    required = ["exp", "iss", "sub"] + (["aud"] if provider.application_id else [])
    try:
        claims: dict[str, Any] = jwt.decode(
            token, key, algorithms=list(provider.algorithms),
            audience=provider.application_id, leeway=leeway,
            options={"require": required, "verify_aud": provider.application_id is not None},
        )
    except jwt.ExpiredSignatureError:
        raise AuthenticationError("The token has expired; the client must get a new one.") from None
    except jwt.ImmatureSignatureError:
        raise AuthenticationError(
            f"The token is not valid yet: its 'nbf' or 'iat' is more than {leeway:g} s in the "
            "future (REACTIVE['AUTH_LEEWAY']); check the clocks."
        ) from None
    except jwt.MissingRequiredClaimError as exc:
        raise AuthenticationError(f"The token has no '{exc.claim}' claim.") from None
    except jwt.InvalidAudienceError:
        raise AuthenticationError(
            f"The token's audience does not include {provider.application_id!r}."
        ) from None
    except jwt.InvalidSignatureError:
        raise AuthenticationError(
            f"The token's signature does not verify with the issuer's key {_show(key.key_id)}."
        ) from None
    except jwt.InvalidAlgorithmError:
        raise AuthenticationError(
            f"The token's algorithm does not match its key {_show(key.key_id)}, which is for "
            f"{key.algorithm_name}."
        ) from None
    except jwt.PyJWTError as exc:
        raise AuthenticationError(f"The token is not valid: {str(exc)[:200]}.") from None
    return claims


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


# -- keys ---------------------------------------------------------------------------------------


class InlineKeys:
    """A JWKS written in the settings: nothing to fetch, nothing to refresh."""

    def __init__(self, jwks: dict[str, Any], issuer: str) -> None:
        self.keys = PyJWKSet.from_dict(jwks).keys
        self.issuer = issuer

    def signing_key(self, kid: Any) -> PyJWK:
        key = _find(self.keys, kid)
        if key is None:
            raise _unknown_key(kid, self.keys, self.issuer)
        return key


class RemoteKeys:
    """The JWKS of an issuer, from a URL or through OIDC discovery, cached as the module
    docstring says. ``fetches`` counts the HTTP requests made (for logs and tests)."""

    def __init__(
        self, issuer: str, conf: ReactiveSettings, *, jwks_url: str | None = None,
        discovery_url: str | None = None,
    ) -> None:
        self.issuer = issuer
        self.jwks_url = jwks_url
        self.discovery_url = discovery_url
        self.timeout = conf.AUTH_FETCH_TIMEOUT
        self.ttl = conf.AUTH_JWKS_CACHE_TTL
        self.cooldown = conf.AUTH_JWKS_REFRESH_COOLDOWN
        self.fetches = 0
        self._keys: list[PyJWK] | None = None
        self._fetched_at = -math.inf
        self._attempted_at = -math.inf
        self._error = ""
        self._lock = threading.Lock()

    def signing_key(self, kid: Any) -> PyJWK:
        with self._lock:
            now = time.monotonic()
            fresh = now - self._fetched_at < self.ttl
            if (not fresh or _find(self._keys or [], kid) is None) and (
                now - self._attempted_at >= self.cooldown
            ):
                self._refresh(now, rediscover=not fresh)
            if self._keys is None:
                raise AuthenticationError(
                    f"The signing keys of the issuer {_show(self.issuer)} could not be fetched "
                    f"({self._error}); retrying at most every {self.cooldown:g} s."
                )
            key = _find(self._keys, kid)
            if key is None:
                raise _unknown_key(kid, self._keys, self.issuer)
            return key

    def _refresh(self, now: float, *, rediscover: bool) -> None:
        self._attempted_at = now
        try:
            if self.discovery_url and (rediscover or self.jwks_url is None):
                document = self._get(self.discovery_url)
                jwks_uri = document.get("jwks_uri")
                if not isinstance(jwks_uri, str) or not jwks_uri.startswith(("https:", "http:")):
                    raise ValueError(f"{self.discovery_url} has no http(s) 'jwks_uri'")
                self.jwks_url = jwks_uri
            if self.jwks_url is None:
                raise ValueError("no JWKS URL")
            keys = PyJWKSet.from_dict(self._get(self.jwks_url)).keys
        except (OSError, ValueError, jwt.PyJWTError) as exc:
            self._error = str(exc)[:300]
            logger.warning("jwks fetch failed issuer=%s error=%s stale_keys=%s",
                           self.issuer, self._error, self._keys is not None)
            return
        self._keys, self._fetched_at, self._error = keys, time.monotonic(), ""

    def _get(self, url: str) -> dict[str, Any]:
        """GET a JSON object within ``timeout`` seconds in all, without following redirects."""
        self.fetches += 1
        deadline = time.monotonic() + self.timeout
        request = urllib.request.Request(
            url, headers={"Accept": "application/json", "User-Agent": "django-reactivity"}
        )
        opener = urllib.request.build_opener(_NoRedirects())
        try:
            with opener.open(request, timeout=self.timeout) as response:
                body = b""
                while chunk := response.read1(64 * 1024):
                    body += chunk
                    if len(body) > MAX_DOCUMENT_BYTES or time.monotonic() > deadline:
                        raise ValueError(f"{url} sent too much or too slowly")
        except urllib.error.HTTPError as exc:
            exc.close()
            raise ValueError(f"{url} answered HTTP {exc.code}") from None
        except (urllib.error.URLError, TimeoutError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ValueError(f"{url} is unreachable: {reason}") from None
        data = json.loads(body)
        if not isinstance(data, dict):
            raise ValueError(f"{url} did not return a JSON object")
        return data


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _find(keys: list[PyJWK], kid: Any) -> PyJWK | None:
    signing = [key for key in keys if key.public_key_use in ("sig", None)]
    if kid is None:
        # A token without 'kid' is accepted only when there is no choice to make.
        return signing[0] if len(signing) == 1 else None
    return next((key for key in signing if key.key_id == kid), None)


def _unknown_key(kid: Any, keys: list[PyJWK], issuer: str) -> AuthenticationError:
    if kid is None:
        return AuthenticationError(
            f"The token has no 'kid' header and the issuer {_show(issuer)} has {len(keys)} "
            "signing keys, so its key cannot be chosen."
        )
    return AuthenticationError(
        f"The token's key id {_show(kid)} is not among the signing keys of the issuer "
        f"{_show(issuer)}."
    )


_sources: dict[tuple[str, str], InlineKeys | RemoteKeys] = {}
_sources_lock = threading.Lock()


def _keys_of(provider: Provider, conf: ReactiveSettings) -> InlineKeys | RemoteKeys:
    """The key source of a provider, shared by providers with the same JWKS location."""
    if isinstance(provider, OidcProvider):
        where = ("oidc", provider.issuer)
    elif isinstance(provider.jwks, str):
        where = ("url", provider.jwks)
    else:
        where = ("inline", json.dumps(provider.jwks, sort_keys=True))
    with _sources_lock:
        source = _sources.get(where)
        if source is None:
            source = _sources[where] = _new_source(provider, conf)
        return source


def _new_source(provider: Provider, conf: ReactiveSettings) -> InlineKeys | RemoteKeys:
    if isinstance(provider, OidcProvider):
        discovery = f"{provider.issuer}/.well-known/openid-configuration"
        return RemoteKeys(provider.issuer, conf, discovery_url=discovery)
    if isinstance(provider.jwks, str):
        return RemoteKeys(provider.issuer, conf, jwks_url=provider.jwks)
    return InlineKeys(provider.jwks, provider.issuer)


@receiver(setting_changed)
def _reset(*, setting: str, **kwargs: Any) -> None:
    if setting == "REACTIVE":
        with _sources_lock:
            _sources.clear()
