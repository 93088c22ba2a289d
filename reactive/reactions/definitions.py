"""``@on_change`` and the ``Change`` a handler receives; the registry of reactions.

Options are checked when the decorator is applied; whether the model's table is tracked is
checked at start-up (``reactive.E020``), since that needs the app registry.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

from django.db.models import Model, Q

from reactive.exceptions import DefinitionError

M = TypeVar("M", bound=Model)
Op = Literal["insert", "update", "delete", "truncate"]
OPS: dict[str, str] = {"insert": "I", "update": "U", "delete": "D", "truncate": "T"}
DEFAULT_OPS: tuple[Op, ...] = ("insert", "update", "delete")


@dataclass(frozen=True)
class Change(Generic[M]):
    """One committed change of a row, as a handler sees it.

    ``old`` and ``new`` are model instances built from the row images Postgres logged (``old``
    is None for an insert, ``new`` for a delete, both for a truncate). ``txid`` is the writing
    transaction's id; ``log_id`` the change's id in the log.
    """

    op: Op
    old: M | None
    new: M | None
    txid: int
    log_id: int
    table: str


class OnChange(Generic[M]):
    """A registered reaction: ``func(ctx, change)`` (or ``func(ctx, changes)`` with ``batch``)
    for each committed change of ``model`` whose old or new row matches ``where``."""

    def __init__(
        self, func: Callable[..., Any], model: type[M], *, where: Q | None,
        ops: tuple[str, ...], batch: int | None, name: str, action: bool = False,
    ) -> None:
        self.func = func
        self.action = action
        self.is_async = inspect.iscoroutinefunction(func)
        self.model = model
        self.where = where
        self.ops = ops
        self.op_codes = tuple(OPS[op] for op in ops)
        self.batch = batch
        self.name = name
        self.__doc__ = func.__doc__

    def __repr__(self) -> str:
        return f"<on_change {self.name} on {self.model._meta.label}>"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.func(*args, **kwargs)

    @property
    def per_transaction(self) -> int:
        """How many matching changes one transaction handles."""
        return self.batch or 1


class Registry:
    """Every reaction, by name."""

    def __init__(self) -> None:
        self._reactions: dict[str, OnChange[Any]] = {}

    def __iter__(self) -> Iterator[OnChange[Any]]:
        return iter(sorted(self._reactions.values(), key=lambda r: r.name))

    def __contains__(self, name: object) -> bool:
        return name in self._reactions

    def add(self, reaction: OnChange[Any]) -> None:
        existing = self._reactions.get(reaction.name)
        if existing is not None and existing.func.__qualname__ != reaction.func.__qualname__:
            raise DefinitionError(
                f"Two reactions are named '{reaction.name}': {_origin(existing.func)} and "
                f"{_origin(reaction.func)}. Rename one, or pass name= to @on_change."
            )
        self._reactions[reaction.name] = reaction

    def get(self, name: str) -> OnChange[Any]:
        try:
            return self._reactions[name]
        except KeyError:
            known = ", ".join(sorted(self._reactions)) or "none"
            raise DefinitionError(f"No reaction is named {name!r} (known: {known}).") from None


registry = Registry()


def on_change(
    model: type[M], *, where: Q | None = None, ops: Iterable[Op] = DEFAULT_OPS,
    batch: int | None = None, name: str | None = None, action: bool = False,
) -> Callable[[Callable[..., Any]], OnChange[M]]:
    """Run the decorated function for every committed change of ``model`` that matches.

    The handler runs as a mutation: ``func(ctx: MutationCtx, change: Change[Model])``, or with
    ``batch=N`` ``func(ctx, changes: list[Change[Model]])`` with up to N changes. Changes come
    from the change log, so writes by any means fire it. ``where`` (a ``Q`` over the model's
    own fields) must match the old or the new row; ``ops`` picks among insert, update, delete
    and truncate. With ``action=True`` the handler is an action (``async def`` with an
    ``ActionCtx``, or a plain function with a ``SyncActionCtx``): no transaction, writes go
    through ``ctx.run_mutation``, and each change is handled at least once (not exactly once).
    Raises DefinitionError for bad options when applied.
    """
    _check_model(model)
    chosen = _check_ops(ops)
    if where is not None and not isinstance(where, Q):
        raise DefinitionError(f"@on_change where= must be a Q object, not {where!r}.")
    if batch is not None and (isinstance(batch, bool) or not isinstance(batch, int)
                              or batch < 1):
        raise DefinitionError(f"@on_change batch= must be a whole number of at least 1 "
                              f"(or None for one change per call), not {batch!r}.")

    if not isinstance(action, bool):
        raise DefinitionError(f"@on_change action= must be True or False, not {action!r}.")

    def wrap(func: Callable[..., Any]) -> OnChange[M]:
        if not callable(func) or (inspect.iscoroutinefunction(func) and not action):
            raise DefinitionError(
                f"@on_change must decorate a plain function (it runs as a mutation), not "
                f"{func!r}; pass action=True to make an async handler an action, or schedule "
                "an action from it with ctx.scheduler."
            )
        reaction = OnChange(func, model, where=where, ops=chosen, batch=batch,
                            name=name or _default_name(func), action=action)
        registry.add(reaction)
        return reaction

    return wrap


def _check_model(model: Any) -> None:
    if not (isinstance(model, type) and issubclass(model, Model)):
        raise DefinitionError(f"@on_change needs a model class, not {model!r}.")
    meta = model._meta
    if meta.abstract or meta.proxy or not meta.managed:
        raise DefinitionError(
            f"@on_change({meta.label}): the model is abstract, a proxy or unmanaged, so its "
            "table has no change capture; react to the concrete managed model instead."
        )


def _check_ops(ops: Iterable[Op]) -> tuple[str, ...]:
    chosen = (ops,) if isinstance(ops, str) else tuple(ops)
    unknown = [op for op in chosen if op not in OPS]
    if unknown or not chosen:
        raise DefinitionError(
            f"@on_change ops= must be some of {', '.join(OPS)}; got {list(chosen)!r}."
        )
    return chosen


def _default_name(func: Callable[..., Any]) -> str:
    from django.apps import apps

    config = apps.get_containing_app_config(func.__module__) if apps.apps_ready else None
    return f"{config.label if config else func.__module__}:{func.__name__}"


def _origin(func: Callable[..., Any]) -> str:
    return f"{func.__module__}.{func.__qualname__}"
