"""``@migration``: the decorator, the ``DataMigrationDefinition`` it returns, the registry.

Options are checked when the decorator is applied; whether the model's table is tracked (the
final pass reads its changes from the log) is checked at start-up (``reactive.E021``) and
again when the migration runs.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

from django.db.models import Manager, Model, QuerySet

from reactive.exceptions import DataMigrationError, DefinitionError

M = TypeVar("M", bound=Model)


class DataMigrationDefinition(Generic[M]):
    """A registered data migration: ``func(ctx, row)`` for each row of ``queryset``."""

    def __init__(self, func: Callable[..., Any], queryset: QuerySet[M], *, batch_size: int,
                 name: str) -> None:
        self.func = func
        self.queryset = queryset
        self.batch_size = batch_size
        self.name = name
        self.__doc__ = func.__doc__

    def __repr__(self) -> str:
        return f"<migration {self.name} on {self.model._meta.label}>"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.func(*args, **kwargs)

    @property
    def model(self) -> type[M]:
        return self.queryset.model


class Registry:
    """Every data migration, by name (``<app_label>:<function>``)."""

    def __init__(self) -> None:
        self._migrations: dict[str, DataMigrationDefinition[Any]] = {}

    def __iter__(self) -> Iterator[DataMigrationDefinition[Any]]:
        return iter(sorted(self._migrations.values(), key=lambda m: m.name))

    def add(self, definition: DataMigrationDefinition[Any]) -> None:
        existing = self._migrations.get(definition.name)
        if existing is not None and existing.func.__qualname__ != definition.func.__qualname__:
            raise DefinitionError(
                f"Two data migrations are named '{definition.name}': {existing.func.__module__}"
                f".{existing.func.__qualname__} and {definition.func.__module__}."
                f"{definition.func.__qualname__}. Rename one, or pass name= to @migration."
            )
        self._migrations[definition.name] = definition

    def get(self, name: str) -> DataMigrationDefinition[Any]:
        """The migration called ``name``; raise DataMigrationError listing the known ones."""
        found = self._migrations.get(name) if isinstance(name, str) else None
        if found is None:
            known = ", ".join(sorted(self._migrations)) or "none"
            raise DataMigrationError(
                f"No data migration is named {str(name)[:200]!r}. Known: {known}. Names are "
                "'<app_label>:<function>' (see manage.py reactive_migrations list)."
            )
        return found


registry = Registry()


def migration(
    queryset: QuerySet[M] | Manager[M], *, batch_size: int = 100, name: str | None = None,
) -> Callable[[Callable[..., Any]], DataMigrationDefinition[M]]:
    """Declare a data migration: run the decorated ``func(ctx, row)`` once for each row of
    ``queryset``, in batches of ``batch_size`` rows per SERIALIZABLE transaction.

    ``ctx`` is a ``MutationCtx``. Run it with ``manage.py reactive_migrations run NAME`` or
    ``reactive.operations.RunDataMigration``. Raises DefinitionError for a queryset that does
    not yield model instances, a sliced one, an unmanaged model, or a bad ``batch_size``.
    """
    if isinstance(queryset, Manager):
        queryset = queryset.all()
    if not isinstance(queryset, QuerySet):
        raise DefinitionError(f"@migration needs a QuerySet such as Order.objects.filter(...), "
                              f"not {queryset!r}.")
    meta = queryset.model._meta
    if meta.abstract or meta.proxy or not meta.managed:
        raise DefinitionError(
            f"@migration over {meta.label}: the model is unmanaged or a proxy, so its table is "
            "not tracked by change capture; migrate the concrete managed model."
        )
    query = queryset.query
    if query.is_sliced or query.distinct or query.values_select or getattr(
        queryset, "_fields", None
    ):
        raise DefinitionError(
            f"@migration over {meta.label}: the queryset must yield model instances, unsliced "
            "and without distinct()/values(); the migration orders and batches it by primary key."
        )
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise DefinitionError(f"@migration batch_size must be a whole number of at least 1, "
                              f"not {batch_size!r}.")

    def wrap(func: Callable[..., Any]) -> DataMigrationDefinition[M]:
        if not callable(func) or inspect.iscoroutinefunction(func):
            raise DefinitionError(f"@migration must decorate a plain function (each batch is a "
                                  f"mutation), not {func!r}.")
        definition = DataMigrationDefinition(func, queryset, batch_size=batch_size,
                                             name=name or _default_name(func))
        registry.add(definition)
        return definition

    return wrap


def _default_name(func: Callable[..., Any]) -> str:
    from django.apps import apps

    config = apps.get_containing_app_config(func.__module__) if apps.apps_ready else None
    return f"{config.label if config else func.__module__}:{func.__name__}"
