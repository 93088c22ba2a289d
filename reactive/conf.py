"""The ``REACTIVE`` settings dict: defaults, validation, and the frozen object code reads.

Read settings at use time with ``reactive_settings()``; the cache is dropped when Django's
``setting_changed`` fires (``override_settings`` in tests). Problems are reported by the system
checks (``reactive.E001``) and raise ``ImproperlyConfigured`` naming the key when read.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
from typing import Annotated, Any, Literal
from urllib.parse import unquote_to_bytes, urlsplit

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver
from jwt import PyJWKSet
from jwt.exceptions import PyJWKError, PyJWKSetError
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)


def _http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise ValueError("expected an absolute http(s) URL such as 'https://issuer.example'")
    return value


HttpUrl = Annotated[str, AfterValidator(_http_url)]


def _content_type_pattern(value: str) -> str:
    kind, slash, sub = value.partition("/")
    if not slash or not kind or not sub or (kind == "*" and sub != "*") or " " in value:
        raise ValueError("expected a media type such as 'image/png', 'image/*' or '*/*'")
    return value.lower()


ContentTypePattern = Annotated[str, AfterValidator(_content_type_pattern)]


class OidcProvider(BaseModel):
    """An OpenID Connect issuer, as in Convex's ``auth.config``: ``{"domain", "applicationID"}``.

    A token is accepted when its ``iss`` equals ``domain`` (ignoring a trailing slash) and its
    ``aud`` contains ``applicationID``; keys come from ``<domain>/.well-known/
    openid-configuration`` → ``jwks_uri``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: Literal["oidc"] = "oidc"
    domain: HttpUrl
    application_id: str = Field(alias="applicationID", min_length=1)

    @property
    def issuer(self) -> str:
        return self.domain.rstrip("/")

    @property
    def algorithms(self) -> tuple[str, ...]:
        # Asymmetric only: a key from a public JWKS must never act as an HMAC secret.
        return ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384",
                "ES512", "EdDSA")


class CustomJwtProvider(BaseModel):
    """A custom JWT issuer: ``{"type": "customJwt", "issuer", "jwks", "algorithm",
    "applicationID"?}``. ``jwks`` is a URL, a ``data:`` URI or an inline JWKS dict; the
    ``aud`` claim is checked only when ``applicationID`` is given."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: Literal["customJwt"]
    issuer: str = Field(min_length=1)
    jwks: HttpUrl | dict[str, Any]
    algorithm: Literal["RS256", "ES256"]
    application_id: str | None = Field(None, alias="applicationID", min_length=1)

    @property
    def algorithms(self) -> tuple[str, ...]:
        return (self.algorithm,)

    @field_validator("jwks", mode="before")
    @classmethod
    def _decode_data_uri(cls, value: Any) -> Any:
        if isinstance(value, str) and value.startswith("data:"):
            return _jwks_from_data_uri(value)
        return value

    @model_validator(mode="after")
    def _check_inline_keys(self) -> CustomJwtProvider:
        if isinstance(self.jwks, dict):
            try:
                keys = PyJWKSet.from_dict(self.jwks).keys
            except (PyJWKError, PyJWKSetError, KeyError, TypeError, ValueError) as exc:
                raise ValueError(f"'jwks' is not a usable JWKS ({exc})") from None
            if not any(key.algorithm_name == self.algorithm for key in keys):
                raise ValueError(f"'jwks' holds no key for the algorithm {self.algorithm}")
        return self


def _jwks_from_data_uri(uri: str) -> Any:
    header, _, payload = uri.partition(",")
    try:
        raw = base64.b64decode(payload) if header.endswith(";base64") else unquote_to_bytes(payload)
        return json.loads(raw)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"the data: URI does not hold a JSON JWKS ({exc})") from None


def _provider_kind(value: Any) -> str:
    if isinstance(value, dict):
        return str(value.get("type", "oidc"))
    return str(getattr(value, "type", "oidc"))


AuthProvider = Annotated[
    Annotated[OidcProvider, Tag("oidc")] | Annotated[CustomJwtProvider, Tag("customJwt")],
    Discriminator(
        _provider_kind,
        custom_error_type="auth_provider_type",
        custom_error_message="'type' must be 'customJwt', or absent (or 'oidc') for an OIDC "
        "provider",
    ),
]


class ReactiveSettings(BaseModel):
    """Every setting, its type and its default. Documented in docs/reference/settings.md."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # Functions
    FUNCTIONS_MODULE: str = Field("functions", min_length=1, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    EXPOSE_ERROR_DETAILS: bool | None = None  # None: follow settings.DEBUG
    ADMIN_KEY: str | None = Field(None, min_length=16)
    # Function logs: logging below FUNCTION_LOGS_LOGGER ("" = root) and print, per call.
    FUNCTION_LOGS: bool | None = None  # None: follow settings.DEBUG
    FUNCTION_LOGS_LOGGER: str = ""
    FUNCTION_LOGS_MAX_LINES: int = Field(256, ge=1, le=100_000)
    FUNCTION_LOGS_MAX_LINE_LENGTH: int = Field(32 * 1024, ge=80)
    FUNCTION_LOGS_STREAM_SIZE: int = Field(10_000, ge=0)  # rows kept for `npx convex logs`; 0: none
    METRICS_ENABLED: bool = False  # GET /api/metrics (admin key or staff)

    # Mutations: retry policy for serialization failures and deadlocks.
    MUTATION_MAX_ATTEMPTS: int = Field(8, ge=1, le=100)
    MUTATION_RETRY_BASE_DELAY: float = Field(0.005, ge=0, le=10)
    MUTATION_RETRY_MAX_DELAY: float = Field(0.5, ge=0, le=60)

    # HTTP API
    HTTP_MAX_BODY_BYTES: int = Field(8 * 1024 * 1024, ge=1024)
    CORS_ALLOWED_ORIGINS: tuple[str, ...] = ()
    CORS_MAX_AGE: int = Field(600, ge=0)

    # Websocket sync protocol
    WEBSOCKET_ALLOWED_ORIGINS: tuple[str, ...] = ()
    WEBSOCKET_MAX_MESSAGE_BYTES: int = Field(8 * 1024 * 1024, ge=1024)
    WEBSOCKET_MAX_QUERIES: int = Field(1000, ge=1)
    WEBSOCKET_PING_INTERVAL: float = Field(15.0, gt=0, le=55)
    WEBSOCKET_MAX_MESSAGES_PER_SECOND: float = Field(200.0, gt=0)
    WEBSOCKET_MAX_PENDING_MUTATIONS: int = Field(1000, ge=1)
    # One live query's result as encoded JSON; over it that query gets a ResultTooLarge error.
    WEBSOCKET_MAX_RESULT_BYTES: int = Field(16 * 1024 * 1024, ge=1024)
    # How often a cookie-authenticated websocket's Django session is re-checked (logout,
    # flush, deactivation): the bound on how long such a socket can outlive its session.
    WEBSOCKET_SESSION_RECHECK_SECONDS: float = Field(5.0, gt=0, le=300)

    # Change capture and the Reactor
    TRACKED_APPS: tuple[str, ...] | Literal["__all__"] = "__all__"
    UNTRACKED_MODELS: tuple[str, ...] = ()
    # A live query reading a table without capture triggers: "refuse" (an UntrackedRead error)
    # or "warn" (run it; log a WARNING naming the tables once per function).
    UNTRACKED_READS: Literal["refuse", "warn"] = "refuse"
    CHANGE_LOG_RETENTION: float = Field(3600.0, gt=0)  # also bounds export cursors' age
    # Each SQL statement of a query function stops after this many seconds (PostgreSQL's
    # statement_timeout, set in queries' transactions only): a slow query then fails with
    # QueryTimeout instead of holding up its Reactor round, and with it every live query of
    # the process. None: no limit. Mutations and actions are not limited.
    QUERY_STATEMENT_TIMEOUT: float | None = Field(5.0, gt=0, le=86400)
    # Connections a Reactor round re-runs queries on (its own included): above 1, a round
    # with many invalidated queries runs them concurrently, all in the round's snapshot.
    REACTOR_RERUN_CONNECTIONS: int = Field(1, ge=1, le=64)

    # Streaming export and snapshots (docs/guides/export.md)
    EXPORT_PAGE_SIZE: int = Field(1000, ge=1, le=100_000)  # documents per HTTP page
    EXPORT_DIRECTORY: str | None = None  # CLI snapshot ZIPs; None: <tmp>/reactive-exports
    EXPORT_MAX_UPLOAD_PART_BYTES: int = Field(16 * 1024 * 1024, ge=1024)

    # Scheduler and crons (Celery). Seconds unless noted; see docs/guides/scheduling.md.
    SCHEDULER_QUEUE: str | None = None  # Celery queue for job tasks; None: the default queue
    SCHEDULER_MAX_JOBS_PER_TRANSACTION: int = Field(1000, ge=1)
    SCHEDULER_MAX_ARGS_BYTES: int = Field(1024 * 1024, ge=64)  # per job, as stored JSON
    SCHEDULER_ETA_HORIZON: float = Field(300.0, gt=0)  # later jobs are sent by the sweeper
    SCHEDULER_DISPATCH_GRACE: float = Field(30.0, gt=0)  # late by this much: sent again
    SCHEDULER_LEASE: float = Field(60.0, gt=0)  # of a running job; renewed every third of it
    SCHEDULER_SWEEP_INTERVAL: float = Field(5.0, gt=0)
    SCHEDULER_JOB_RETENTION: float = Field(7 * 86400.0, gt=0)  # finished jobs and cron runs
    SCHEDULER_CRON_TICK_INTERVAL: float = Field(1.0, gt=0)
    SCHEDULER_CRONS_MODULE: str = Field("crons", min_length=1, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    SCHEDULER_BEAT_ENTRIES: bool = True  # add the sweeper and cron tick to Celery beat

    # Server-side reactions (@on_change); docs/guides/reactions.md.
    REACTION_MAX_ATTEMPTS: int = Field(5, ge=1, le=100)  # then the reaction is parked (failed)
    REACTION_RETRY_BASE_DELAY: float = Field(1.0, ge=0, le=3600)
    REACTION_RETRY_MAX_DELAY: float = Field(300.0, ge=0, le=86400)
    REACTION_SCAN_ROWS: int = Field(1000, ge=1, le=100_000)  # log rows read per transaction
    REACTION_MAX_LAG: float = Field(86400.0, gt=0)  # log held for a reaction at most this long
    REACTION_POLL_INTERVAL: float = Field(1.0, gt=0, le=60)  # dispatcher wake-up without NOTIFY
    REACTION_DISPATCHER: bool = True  # each Celery worker runs a dispatcher thread
    REACTION_QUEUE: str | None = None  # Celery queue for reaction tasks; None: the default

    # Data migrations (@migration); docs/guides/data-migrations.md.
    DATA_MIGRATION_LEASE: float = Field(60.0, gt=0)  # no batch for this long: sent again
    DATA_MIGRATION_QUEUE: str | None = None  # Celery queue; None: the default queue

    # Auth: JWT issuers for `Authenticate` and `Authorization: Bearer`; docs/guides/auth.md.
    AUTH_PROVIDERS: tuple[AuthProvider, ...] = ()
    AUTH_LEEWAY: float = Field(10.0, ge=0, le=300)  # clock skew allowed on exp, nbf, iat
    AUTH_FETCH_TIMEOUT: float = Field(5.0, gt=0, le=60)  # discovery and JWKS requests
    AUTH_JWKS_CACHE_TTL: float = Field(300.0, gt=0)  # discovery documents and key sets
    AUTH_JWKS_REFRESH_COOLDOWN: float = Field(10.0, ge=0)  # min gap between refetches

    # File storage: docs/guides/file-storage.md. Bytes go to settings.STORAGES[STORAGE_BACKEND].
    STORAGE_BACKEND: str = Field("default", min_length=1)
    STORAGE_URL_BASE: HttpUrl | None = None  # origin for upload/serve URLs; None: path-only URLs
    STORAGE_MAX_UPLOAD_BYTES: int = Field(64 * 1024 * 1024, ge=1)
    STORAGE_ALLOWED_CONTENT_TYPES: tuple[ContentTypePattern, ...] = ("*/*",)
    STORAGE_UPLOAD_URL_TTL: float = Field(3600.0, gt=0)  # upload URLs expire after this
    STORAGE_URL_TTL: float = Field(86400.0, gt=0)  # get_url URLs live between 1x and 2x this
    STORAGE_SERVE: Literal["auto", "django", "backend"] = "auto"
    STORAGE_ORPHAN_AGE: float | None = Field(86400.0, gt=0)  # None: never delete orphans
    STORAGE_ORPHAN_SWEEP_INTERVAL: float = Field(3600.0, gt=0)

    # Schema-free documents (ctx.db): docs/guides/documents.md.
    DOCUMENTS_MAX_BYTES: int = Field(1024 * 1024, ge=64)  # one document's JSON, encoded
    DOCUMENTS_MAX_DEPTH: int = Field(16, ge=1, le=64)  # nesting of objects and arrays
    # Tables moved into models: ctx.db.table("notes") then reads and writes "app_label.Model".
    DOCUMENTS_MODELS: dict[
        Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_]{0,63}$")],
        Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*$")],
    ] = {}

    # HTTP actions (@http_action): served under this path prefix by reactive.urls.
    HTTP_ACTIONS_PREFIX: str = Field("http/", pattern=r"^([A-Za-z0-9_.~-]+/)*$")


@functools.cache
def reactive_settings() -> ReactiveSettings:
    """Return the validated ``REACTIVE`` settings; raise ImproperlyConfigured on a bad value."""
    problems = validate(getattr(settings, "REACTIVE", {}))
    if problems:
        raise ImproperlyConfigured("; ".join(problems))
    return ReactiveSettings.model_validate(getattr(settings, "REACTIVE", None) or {})


def validate(raw: object) -> list[str]:
    """Return one sentence per problem in a raw ``REACTIVE`` value (empty when it is valid)."""
    if raw is None:
        return []
    if not isinstance(raw, dict):
        return [f"settings.REACTIVE must be a dict, not {type(raw).__name__}."]
    try:
        ReactiveSettings.model_validate(raw)
    except ValidationError as exc:
        return [_sentence(error) for error in exc.errors()]
    return []


def _sentence(error: Any) -> str:
    key = _subscripts(error["loc"])
    if error["type"] == "extra_forbidden":
        known = "setting" if len(error["loc"]) == 1 else "key here"
        return f"REACTIVE{key} is not a known {known} (see docs/reference/settings.md)."
    return f"REACTIVE{key} is invalid: {error['msg']} (got {error.get('input')!r})."


def _subscripts(loc: tuple[Any, ...]) -> str:
    # The key as written in settings.py: ['AUTH_PROVIDERS'][0]['domain'].
    if loc[:1] == ("AUTH_PROVIDERS",) and len(loc) > 2:
        loc = loc[:2] + loc[3:]  # drop the provider kind pydantic inserts into the path
    return "".join(f"[{part}]" if isinstance(part, int) else f"[{part!r}]" for part in loc)


@receiver(setting_changed)
def _reset(*, setting: str, **kwargs: Any) -> None:
    if setting in {"REACTIVE", "DEBUG"}:
        reactive_settings.cache_clear()
