"""The ``REACTIVE`` settings dict: defaults, validation, and the frozen object code reads.

Read settings at use time with ``reactive_settings()``; the cache is dropped when Django's
``setting_changed`` fires (``override_settings`` in tests). Problems are reported by the system
checks (``reactive.E001``) and raise ``ImproperlyConfigured`` naming the key when read.
"""

from __future__ import annotations

import functools
from typing import Any, Literal

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver
from pydantic import BaseModel, ConfigDict, Field, ValidationError


class ReactiveSettings(BaseModel):
    """Every setting, its type and its default. Documented in docs/reference/settings.md."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # Functions
    FUNCTIONS_MODULE: str = Field("functions", min_length=1, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    EXPOSE_ERROR_DETAILS: bool | None = None  # None: follow settings.DEBUG
    ADMIN_KEY: str | None = Field(None, min_length=16)

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

    # Change capture and the Reactor
    TRACKED_APPS: tuple[str, ...] | Literal["__all__"] = "__all__"
    UNTRACKED_MODELS: tuple[str, ...] = ()
    CHANGE_LOG_RETENTION: float = Field(3600.0, gt=0)

    # Scheduler and crons (Celery). Seconds unless noted; see docs/guides/scheduling.md.
    SCHEDULER_QUEUE: str | None = None  # Celery queue for job tasks; None: the default queue
    SCHEDULER_MAX_JOBS_PER_TRANSACTION: int = Field(1000, ge=1)
    SCHEDULER_MAX_ARGS_BYTES: int = Field(1024 * 1024, ge=64)  # per job, as stored JSON
    SCHEDULER_ETA_HORIZON: float = Field(300.0, gt=0)  # later jobs are sent by the sweeper
    SCHEDULER_DISPATCH_GRACE: float = Field(30.0, gt=0)  # late by this much: sent again
    SCHEDULER_ACTION_LEASE: float = Field(60.0, gt=0)  # renewed every third of it
    SCHEDULER_SWEEP_INTERVAL: float = Field(5.0, gt=0)
    SCHEDULER_JOB_RETENTION: float = Field(7 * 86400.0, gt=0)  # finished jobs and cron runs
    SCHEDULER_CRON_TICK_INTERVAL: float = Field(1.0, gt=0)
    SCHEDULER_CRONS_MODULE: str = Field("crons", min_length=1, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    SCHEDULER_BEAT_ENTRIES: bool = True  # add the sweeper and cron tick to Celery beat

    # Auth: OIDC / custom JWT issuers for `Authenticate` and `Authorization: Bearer`.
    AUTH_PROVIDERS: tuple[dict[str, Any], ...] = ()


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
    key = ".".join(str(part) for part in error["loc"]) or "REACTIVE"
    if error["type"] == "extra_forbidden":
        return f"REACTIVE['{key}'] is not a known setting (see docs/reference/settings.md)."
    return f"REACTIVE['{key}'] is invalid: {error['msg']} (got {error.get('input')!r})."


@receiver(setting_changed)
def _reset(*, setting: str, **kwargs: Any) -> None:
    if setting in {"REACTIVE", "DEBUG"}:
        reactive_settings.cache_clear()
