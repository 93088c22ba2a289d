"""Settings of the example chat. `make run` starts embedded Postgres and Redis and passes their
URLs in DATABASE_URL / REDIS_URL; set those yourself to use external servers."""

import os
from pathlib import Path

from reactive.embedded import service_url

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = "example-only-change-me"
DEBUG = True
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.postgres",
    "django.contrib.staticfiles",
    "channels",
    "reactive",
    "chat",
    "notes",  # schema-free documents (ctx.db): no models until the tutorial moves them
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "example_project.urls"
ASGI_APPLICATION = "example_project.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# DATABASE_URL, or the embedded server that `make run` (manage.py reactive_dev) started.
DATABASES = {"default": service_url.database(BASE_DIR / ".reactive")}
REDIS_URL = service_url.redis(BASE_DIR / ".reactive")

CELERY_BROKER_URL = REDIS_URL
CELERY_TASK_ACKS_LATE = True

# No CHANNEL_LAYERS: live queries do not use one (docs/guides/deployment.md, "Channel layers").

# The chat's pages are served by this project, so no other origin needs CORS_ALLOWED_ORIGINS or
# WEBSOCKET_ALLOWED_ORIGINS (docs/guides/deployment.md, "Origins").
REACTIVE = {
    # Images attached in the chat (docs/guides/file-storage.md): images only, 5 MiB at most.
    "STORAGE_ALLOWED_CONTENT_TYPES": ["image/*"],
    "STORAGE_MAX_UPLOAD_BYTES": 5 * 1024 * 1024,
}
# Where FileSystemStorage keeps uploaded bytes (served by reactive's signed URLs, not MEDIA_URL).
MEDIA_ROOT = os.environ.get("MEDIA_ROOT") or BASE_DIR / ".reactive" / "media"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "static_build"
# The official browser client, installed from npm by `make run` (never committed).
STATICFILES_DIRS = [("convex", BASE_DIR / "frontend" / "node_modules" / "convex" / "dist")]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

# Printed by `make run` under the URL.
REACTIVE_DEV_BANNER = "Demo logins: ada / grace, password reactive-demo (ada is an admin)."

# The outside service the `chat:summarize` action calls; a local stand-in by default.
CHAT_SUMMARIZER_URL = os.environ.get(
    "CHAT_SUMMARIZER_URL", "http://127.0.0.1:8000/stand-in/summarize"
)
