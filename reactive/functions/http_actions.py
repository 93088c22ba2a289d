"""``@http_action``: HTTP endpoints declared in functions modules, and the route table that
discovery fills and :mod:`reactive.http.actions` serves."""

from __future__ import annotations

import functools
import inspect
import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from reactive.exceptions import DefinitionError

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD")
PATH_RE = re.compile(r"^/[A-Za-z0-9_.~!$&'()*+,;=:@%/-]*$")

Handler = Callable[..., Any]


class HttpAction:
    """A handler ``(ctx, request) -> HttpResponse`` served at ``path`` for ``methods``.

    ``ctx`` is an ``ActionCtx`` (``async def`` handlers) or a ``SyncActionCtx`` (plain ``def``):
    ``run_query/run_mutation/run_action``, ``storage``, ``scheduler``, and ``auth`` from the
    session cookie or a Bearer JWT. With ``prefix=True`` the route matches every path that
    starts with ``path``. ``cors`` answers preflights and adds CORS headers from
    ``REACTIVE['CORS_ALLOWED_ORIGINS']``.
    """

    def __init__(
        self, func: Handler, *, path: str, methods: Iterable[str], prefix: bool, cors: bool
    ) -> None:
        where = f"@http_action({path!r})"
        if not callable(func):
            raise DefinitionError(f"{where} must decorate a function, not {func!r}.")
        if not isinstance(path, str) or not PATH_RE.match(path) or "//" in path:
            raise DefinitionError(
                f"{where}: the path must start with '/' and hold only URL path characters, "
                "such as '/hooks/payment'."
            )
        if isinstance(methods, str):
            raise DefinitionError(f"{where}: methods must be a list such as ['POST'].")
        self.methods = frozenset(str(m).upper() for m in methods)
        unknown = sorted(self.methods - set(METHODS))
        if not self.methods or unknown:
            raise DefinitionError(
                f"{where}: methods must be some of {', '.join(METHODS)}; got {sorted(methods)}."
            )
        if len(inspect.signature(func).parameters) < 2:
            raise DefinitionError(f"{where}: the handler must take (ctx, request).")
        functools.update_wrapper(self, func)
        self.func = func
        self.path = path
        self.prefix = prefix
        self.cors = cors
        self.is_async = inspect.iscoroutinefunction(func)
        self.name = f"{func.__module__}:{func.__name__}"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.func(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<http_action {'|'.join(sorted(self.methods))} {self.path}>"

    def matches(self, path: str) -> bool:
        return path.startswith(self.path) if self.prefix else path == self.path


def http_action(
    path: str, /, *, methods: Iterable[str] = ("GET",), prefix: bool = False, cors: bool = True
) -> Callable[[Handler], HttpAction]:
    """Declare an HTTP endpoint: ``@http_action("/hooks/payment", methods=["POST"])``.

    Served under ``REACTIVE['HTTP_ACTIONS_PREFIX']`` by ``reactive.urls``; options are checked
    here (DefinitionError), clashing routes at discovery.
    """

    def wrap(func: Handler) -> HttpAction:
        return HttpAction(func, path=path, methods=methods, prefix=prefix, cors=cors)

    if callable(path):
        raise DefinitionError("@http_action needs a path: @http_action('/hooks/x').")
    return wrap


class HttpRoutes:
    """Every HTTP action of the project; the longest matching route wins, exact before prefix."""

    def __init__(self) -> None:
        self._actions: list[HttpAction] = []

    def __iter__(self) -> Iterator[HttpAction]:
        return iter(sorted(self._actions, key=lambda a: (a.path, sorted(a.methods))))

    def __len__(self) -> int:
        return len(self._actions)

    def add(self, action: HttpAction, name: str | None = None) -> HttpAction:
        """Register ``action`` (named ``name`` in logs); a clashing route raises."""
        if action in self._actions:
            return action
        for other in self._actions:
            shared = action.methods & other.methods
            if other.path == action.path and other.prefix == action.prefix and shared:
                raise DefinitionError(
                    f"Two HTTP actions serve {', '.join(sorted(shared))} {action.path}: "
                    f"{other.name} and {name or action.name}."
                )
        if name:
            action.name = name
        self._actions.append(action)
        return action

    def remove(self, action: HttpAction) -> None:
        if action in self._actions:
            self._actions.remove(action)

    def match(self, path: str, method: str) -> tuple[HttpAction | None, frozenset[str]]:
        """The action for (path, method), and every method some route serves at that path."""
        candidates = sorted(
            (a for a in self._actions if a.matches(path)),
            key=lambda a: (not a.prefix, len(a.path)), reverse=True,
        )
        allowed = frozenset(m for a in candidates for m in a.methods)
        for action in candidates:
            if method in action.methods or (method == "HEAD" and "GET" in action.methods):
                return action, allowed
        return None, allowed


routes = HttpRoutes()
