"""The decorators users write (``@query``, ``@mutation``, ``@action`` and their ``internal_``
twins) and the ``FunctionDefinition`` object each returns."""

from __future__ import annotations

import functools
import inspect
import re
from collections.abc import Callable
from typing import Any, Generic, ParamSpec, TypeVar, overload

from reactive.exceptions import DefinitionError
from reactive.functions.arguments import ArgumentsSchema, ReturnsSchema
from reactive.types import FunctionKind, Visibility

P = ParamSpec("P")
R = TypeVar("R")

# Where each module-level function was defined: (module, qualname) -> "file:line".
_DEFINED_AT: dict[tuple[str, str], str] = {}

# "module/path:export", the Convex udfPath form; the module part may be nested with "/".
UNTRACKED_READS_CHOICES = (None, "refuse", "warn")
NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(/[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*$")


class FunctionDefinition(Generic[P, R]):
    """A registered query, mutation or action.

    Calling the object calls the wrapped Python function directly (handy in unit tests); the
    runtime goes through :mod:`reactive.functions.runtime`, which adds validation, transactions and
    retries. ``name`` is set at discovery from the module path unless given with ``name=``.
    """

    def __init__(
        self,
        func: Callable[P, R],
        *,
        kind: FunctionKind,
        visibility: Visibility,
        name: str | None = None,
        returns: Any = None,
        untracked_reads: str | None = None,
    ) -> None:
        if not callable(func):
            raise DefinitionError(f"@{kind} must decorate a function, not {func!r}.")
        if name is not None and not NAME_RE.match(name):
            raise DefinitionError(
                f"name={name!r} for {func.__qualname__} is not a function path such as "
                "'chat:send' or 'chat/rooms:create'."
            )
        if untracked_reads not in UNTRACKED_READS_CHOICES:
            raise DefinitionError(
                f"untracked_reads={untracked_reads!r} for {func.__qualname__}: expected "
                "'refuse', 'warn' or None (REACTIVE['UNTRACKED_READS'] decides)."
            )
        if untracked_reads is not None and kind is not FunctionKind.QUERY:
            raise DefinitionError(
                f"untracked_reads= applies to queries only, not to {kind} {func.__qualname__}."
            )
        is_async = inspect.iscoroutinefunction(func)
        if is_async and kind is not FunctionKind.ACTION:
            raise DefinitionError(
                f"{func.__module__}.{func.__qualname__}: only actions may be 'async def'; "
                f"a {kind} runs inside a database transaction and must be synchronous."
            )
        _refuse_redefinition(func)
        functools.update_wrapper(self, func)
        self.func = func
        self.kind = kind
        self.visibility = visibility
        self.explicit_name = name
        self.name: str = name or f"{func.__module__}:{func.__name__}"
        self.returns = returns
        self.untracked_reads = untracked_reads
        self.is_async = is_async
        self._arguments: ArgumentsSchema | None = None
        self._returns: ReturnsSchema | None = None

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        return self.func(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<{self.visibility} {self.kind} {self.name}>"

    @property
    def is_public(self) -> bool:
        return self.visibility is Visibility.PUBLIC

    @property
    def arguments(self) -> ArgumentsSchema:
        """The argument validator, built on first use (``prepare()`` builds it at start-up)."""
        if self._arguments is None:
            self._arguments = ArgumentsSchema(self.func, self.name)
        return self._arguments

    @property
    def returns_schema(self) -> ReturnsSchema | None:
        if self.returns is not None and self._returns is None:
            self._returns = ReturnsSchema(self.returns)
        return self._returns

    def prepare(self) -> None:
        """Build the validators now, so a bad signature fails start-up, not a request."""
        _ = self.arguments, self.returns_schema


def _refuse_redefinition(func: Callable[..., Any]) -> None:
    """A second ``def send`` in one module would silently replace the first; refuse it.

    The same file and line again is a re-import (``importlib.reload``), not a second definition.
    Functions defined inside functions (tests, factories) are not tracked.
    """
    code = getattr(func, "__code__", None)
    if code is None or "<locals>" in func.__qualname__:
        return
    key = (func.__module__, func.__qualname__)
    here = f"{code.co_filename}:{code.co_firstlineno}"
    first = _DEFINED_AT.setdefault(key, here)
    if first != here:
        raise DefinitionError(
            f"'{func.__qualname__}' is defined twice in module {func.__module__}: at {first} "
            f"and at {here}; the second would silently replace the first. Rename one of them."
        )


AnyDefinition = FunctionDefinition[Any, Any]
# How callers name a function: its "module:export" name, or the decorated object itself.
FunctionRef = str | AnyDefinition


class FunctionDecorator:
    """What ``@query`` and friends are: usable bare or with keyword-only options.

    ``name=`` overrides the path derived from the module ('app:function'); ``returns=``
    validates the result against a type before it is sent; ``untracked_reads=`` ("refuse" or
    "warn", queries only) overrides ``REACTIVE['UNTRACKED_READS']`` for this function.
    """

    def __init__(self, kind: FunctionKind, visibility: Visibility) -> None:
        self.kind = kind
        self.visibility = visibility
        prefix = "internal_" if visibility is Visibility.INTERNAL else ""
        self.__name__ = self.__qualname__ = f"{prefix}{kind}"

    def __repr__(self) -> str:
        return f"<decorator {self.__name__}>"

    @overload
    def __call__(self, func: Callable[P, R], /) -> FunctionDefinition[P, R]: ...

    @overload
    def __call__(
        self, *, name: str | None = None, returns: Any = None, untracked_reads: str | None = None
    ) -> Callable[[Callable[P, R]], FunctionDefinition[P, R]]: ...

    def __call__(  # type: ignore[misc]  # mypy cannot match ParamSpec overloads here
        self, func: Callable[P, R] | None = None, /, *, name: str | None = None,
        returns: Any = None, untracked_reads: str | None = None,
    ) -> FunctionDefinition[P, R] | Callable[[Callable[P, R]], FunctionDefinition[P, R]]:
        def wrap(f: Callable[P, R]) -> FunctionDefinition[P, R]:
            return FunctionDefinition(
                f, kind=self.kind, visibility=self.visibility, name=name, returns=returns,
                untracked_reads=untracked_reads,
            )

        return wrap if func is None else wrap(func)


query = FunctionDecorator(FunctionKind.QUERY, Visibility.PUBLIC)
mutation = FunctionDecorator(FunctionKind.MUTATION, Visibility.PUBLIC)
action = FunctionDecorator(FunctionKind.ACTION, Visibility.PUBLIC)
internal_query = FunctionDecorator(FunctionKind.QUERY, Visibility.INTERNAL)
internal_mutation = FunctionDecorator(FunctionKind.MUTATION, Visibility.INTERNAL)
internal_action = FunctionDecorator(FunctionKind.ACTION, Visibility.INTERNAL)
