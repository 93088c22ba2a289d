"""Django settings for the test suite. The conftest points DATABASES at the private server it
starts; a server process started by a test gets DATABASE_URL/REDIS_URL in its environment."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import dj_database_url

SECRET_KEY = "tests-only-not-secret"
REACTION_TEST_QUEUE = "reactions"  # see REACTION_QUEUE below

DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]
USE_TZ = True
TIME_ZONE = "UTC"
ROOT_URLCONF = "tests.urls"
ASGI_APPLICATION = "tests.asgi.application"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.postgres",
    "channels",
    "reactive",
    "tests.testapp",
]

MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:1/reactive_tests")
    )
}
if "TEST_DATABASE_NAME" not in os.environ:
    DATABASES["default"]["TEST"] = {"NAME": "test_reactive"}

# Path-only storage URLs in this process, with CORS origins set: what reactive.W030 warns about.
SILENCED_SYSTEM_CHECKS = ["reactive.W030"]

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:1/0")

# Stored files (FileSystemStorage): a server process started by a test shares the test's root.
MEDIA_ROOT = os.environ.get("REACTIVE_TEST_MEDIA_ROOT") or tempfile.mkdtemp(prefix="reactive-mf-")

REACTIVE = {
    "ADMIN_KEY": "tests-admin-key-0123456789",
    "EXPOSE_ERROR_DETAILS": True,
    "FUNCTION_LOGS": True,
    "FUNCTION_LOGS_MAX_LINES": 20,
    # bench/log_stream.py compares servers with the shared log stream on and off (0).
    "FUNCTION_LOGS_STREAM_SIZE": int(os.environ.get("REACTIVE_LOG_STREAM_SIZE", "10000")),
    "EXPORT_PAGE_SIZE": 40,  # small pages, so the export tests page
    "METRICS_ENABLED": True,
    "CORS_ALLOWED_ORIGINS": ["http://allowed.example"],
    "MUTATION_RETRY_BASE_DELAY": 0.002,
    "MUTATION_RETRY_MAX_DELAY": 0.05,
    # Short scheduler timings so that lost tasks and dead workers show up within a test.
    "SCHEDULER_DISPATCH_GRACE": 1.0,
    "SCHEDULER_LEASE": 3.0,
    "SCHEDULER_SWEEP_INTERVAL": 0.5,
    # bench/many_queries.py starts servers with several (tests: the default, 1).
    "REACTOR_RERUN_CONNECTIONS": int(os.environ.get("REACTIVE_RERUN_CONNECTIONS", "1")),
    # Reactions retry quickly and park after three attempts; stalled migrations resend soon.
    "REACTION_MAX_ATTEMPTS": 3,
    "REACTION_RETRY_BASE_DELAY": 0.05,
    "REACTION_RETRY_MAX_DELAY": 0.2,
    "REACTION_POLL_INTERVAL": 0.2,
    "DATA_MIGRATION_LEASE": 3.0,
    # Only workers started for reaction and data-migration tests run the dispatcher, and
    # their drains and migrations go to a queue only those workers consume: the shared
    # worker (alive after any test that used it) never takes one, so a test that kills its
    # reacting worker mid-handler or mid-batch kills the run it started.
    "REACTION_DISPATCHER": os.environ.get("REACTIVE_TEST_DISPATCHER") == "1",
    "REACTION_QUEUE": REACTION_TEST_QUEUE if os.environ.get("REACTIVE_TEST_DISPATCHER") == "1"
    else None,
    "DATA_MIGRATION_QUEUE": REACTION_TEST_QUEUE,  # sent by the tests too, not only dispatchers
    # JWTs signed with the test-only key in tests/keys (see tests/test_jwt_auth.py).
    "AUTH_PROVIDERS": [
        {
            "type": "customJwt",
            "issuer": "https://issuer.tests.invalid",
            "jwks": json.loads((Path(__file__).parent / "keys/rs256-test.jwks.json").read_text()),
            "algorithm": "RS256",
            "applicationID": "django-reactivity-tests",
        }
    ],
}

# Celery: the standard Django wiring (tests/celery_app.py); the broker is the test Redis.
CELERY_BROKER_URL = REDIS_URL
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BROKER_TRANSPORT_OPTIONS = {"socket_connect_timeout": 2}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"reactive": {"handlers": ["console"], "level": "WARNING"}},
}
