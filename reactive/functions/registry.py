"""The function registry: discovery of ``<app>/functions.py`` and ``<app>/functions/*.py``
(HTTP actions found there go to the route table), Convex path naming, and lookup by name with
the public/internal rule."""

from __future__ import annotations

import importlib
import importlib.util
import logging
import pkgutil
from collections.abc import Iterable, Iterator
from types import ModuleType

from django.apps import AppConfig

from reactive.exceptions import DefinitionError, FunctionNotFound
from reactive.functions.definitions import NAME_RE, AnyDefinition, FunctionDefinition
from reactive.functions.http_actions import HttpAction, routes
from reactive.suggest import close_names, phrase

logger = logging.getLogger(__name__)


def canonical_name(path: str) -> str:
    """Normalise a client's udfPath the way Convex does.

    Split on the last ``:``; a missing export means ``default``; a ``.js`` suffix on the
    module is dropped. ``"chat:list"``, ``"chat.js:list"`` and ``"chat"`` →
    ``"chat:list"``, ``"chat:list"``, ``"chat:default"``.
    """
    module, sep, export = path.rpartition(":")
    if not sep:
        module, export = path, "default"
    module = module.removesuffix(".js").strip("/")
    return f"{module}:{export}"


class Registry:
    """Every function the project defines, by Convex path."""

    def __init__(self) -> None:
        self._functions: dict[str, AnyDefinition] = {}
        self._origins: dict[str, str] = {}

    def __iter__(self) -> Iterator[AnyDefinition]:
        return iter(sorted(self._functions.values(), key=lambda d: d.name))

    def __len__(self) -> int:
        return len(self._functions)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and canonical_name(name) in self._functions

    def register(self, definition: AnyDefinition, name: str | None = None) -> AnyDefinition:
        """Add ``definition`` under ``name`` (or its own name); a taken name raises."""
        name = name or definition.explicit_name or definition.name
        if not NAME_RE.match(name):
            raise DefinitionError(f"{name!r} is not a valid function path such as 'chat:send'.")
        origin = f"{definition.func.__module__}.{definition.func.__qualname__}"
        existing = self._functions.get(name)
        if existing is not None and existing is not definition:
            raise DefinitionError(
                f"Two functions are named '{name}': {self._origins[name]} and {origin}. "
                "Rename one, or pass name= to the decorator."
            )
        definition.name = name
        definition.prepare()
        self._functions[name] = definition
        self._origins[name] = origin
        return definition

    def unregister(self, name: str) -> None:
        self._functions.pop(name, None)
        self._origins.pop(name, None)

    def get(self, name: str, *, internal: bool = False) -> AnyDefinition:
        """Return the function called ``name``; only public ones unless ``internal``.

        Raises FunctionNotFound (with the same message for unknown and for internal
        functions, so clients cannot probe for internal names).
        """
        if not isinstance(name, str) or len(name) > 512:
            raise FunctionNotFound(str(name)[:512])
        definition = self._functions.get(canonical_name(name))
        if definition is None or not (internal or definition.is_public):
            visible = [d.name for d in self._functions.values() if internal or d.is_public]
            raise FunctionNotFound(name, _suggestion(canonical_name(name), visible))
        return definition

    def discover(self, app_configs: Iterable[AppConfig], module_name: str) -> None:
        """Import ``<app>.<module_name>`` (and its submodules) for each app and register.

        This app is skipped: ``reactive.functions`` is the runtime, not a functions module.
        """
        for app_config in app_configs:
            if app_config.name == "reactive":
                continue
            root = f"{app_config.name}.{module_name}"
            if importlib.util.find_spec(app_config.name) is None or not _has_module(root):
                continue
            for module, subpath in _walk(root):
                self._register_module(module, f"{app_config.label}{subpath}")
        logger.debug("functions discovered count=%d", len(self._functions))

    def _register_module(self, module: ModuleType, module_path: str) -> None:
        for attr, value in vars(module).items():
            if isinstance(value, FunctionDefinition) and value.func.__module__ == module.__name__:
                self.register(value, value.explicit_name or f"{module_path}:{attr}")
            elif isinstance(value, HttpAction) and value.func.__module__ == module.__name__:
                routes.add(value, f"{module_path}:{attr}")


def _suggestion(name: str, visible: list[str]) -> str:
    """Close names in the same module when it exists (a shared 'module:' prefix would make
    every name of a module look close), else close names among all."""
    module, _, export = name.rpartition(":")
    exports = [n.rpartition(":")[2] for n in visible if n.rpartition(":")[0] == module]
    if exports:
        return phrase([f"{module}:{e}" for e in close_names(export, exports)])
    return phrase(close_names(name, visible))


def _has_module(dotted: str) -> bool:
    try:
        return importlib.util.find_spec(dotted) is not None
    except ModuleNotFoundError:
        return False


def _walk(root: str) -> Iterator[tuple[ModuleType, str]]:
    """Yield the root module and, for a package, every submodule with its '/sub/path'."""
    module = importlib.import_module(root)
    yield module, ""
    if hasattr(module, "__path__"):
        for info in pkgutil.walk_packages(module.__path__, prefix=f"{root}."):
            sub = importlib.import_module(info.name)
            yield sub, "/" + info.name[len(root) + 1 :].replace(".", "/")


registry = Registry()
