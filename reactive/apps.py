"""The Django app: discovers every installed app's functions once the registry is ready."""

from __future__ import annotations

from django.apps import AppConfig, apps


class ReactiveConfig(AppConfig):
    name = "reactive"
    label = "reactive"
    verbose_name = "Reactive"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import checks  # noqa: F401 - registers the system checks
        from .conf import reactive_settings
        from .registry import registry

        registry.discover(apps.get_app_configs(), reactive_settings().FUNCTIONS_MODULE)
