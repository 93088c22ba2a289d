"""The module paths of 0.1, importable for one more release with a ``DeprecationWarning``.

0.2 moved the flat modules into subpackages. ``import reactive.runtime`` (or any path in
``MOVED``) still works: a meta-path finder hands back the module at its new home under the old
name and warns once per path. Remove this module, and its installation in ``reactive/__init__``,
in 0.3.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import warnings
from types import ModuleType
from typing import Any

MOVED = {
    "reactive.arguments": "reactive.functions.arguments",
    "reactive.context": "reactive.functions.context",
    "reactive.cronruns": "reactive.scheduling.cron_tick",
    "reactive.crons": "reactive.scheduling.crons",
    "reactive.definitions": "reactive.functions.definitions",
    "reactive.jobs": "reactive.scheduling.runner",
    "reactive.jwt": "reactive.auth.jwt",
    "reactive.listener": "reactive.capture.listener",
    "reactive.matcher": "reactive.capture.matcher",
    "reactive.pagination": "reactive.functions.pagination",
    "reactive.protocol": "reactive.live.protocol",
    "reactive.reactor": "reactive.live.reactor",
    "reactive.readsets": "reactive.capture.readsets",
    "reactive.registry": "reactive.functions.registry",
    "reactive.retries": "reactive.scheduling.retry",
    "reactive.runtime": "reactive.functions.runtime",
    "reactive.scheduler": "reactive.functions.scheduler",
    "reactive.serialization": "reactive.functions.convert",
    "reactive.session": "reactive.live.session",
    "reactive.sweeper": "reactive.scheduling.sweeper",
    "reactive.transaction": "reactive.functions.transaction",
    "reactive.views": "reactive.http.views",
}
# Old modules whose name is now a package: their public names, forwarded by the package from
# the modules that hold them now (the first that has the name).
FORWARDED = {
    "reactive.auth": ("reactive.auth.identity",),
    "reactive.capture": ("reactive.capture.triggers", "reactive.capture.log"),
}


def _warn(old: str, new: str) -> None:
    warnings.warn(
        f"{old} moved to {new} in django-reactivity 0.2; import it from there "
        "(the old path goes away in 0.3).",
        DeprecationWarning,
        stacklevel=3,
    )


class _Alias(importlib.abc.Loader):
    def __init__(self, new: str) -> None:
        self.new = new

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        return importlib.import_module(self.new)

    def exec_module(self, module: ModuleType) -> None:
        """The module was executed under its new name already."""


class MovedModuleFinder(importlib.abc.MetaPathFinder):
    """Finds an old module path from ``MOVED`` and loads its new module under that name."""

    def find_spec(
        self, fullname: str, path: Any = None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        new = MOVED.get(fullname)
        if new is None:
            return None
        _warn(fullname, new)
        return importlib.machinery.ModuleSpec(fullname, _Alias(new))


def install() -> None:
    """Make the old paths importable (idempotent).

    First in line, so that a stale ``reactive/runtime.py`` left by an old install cannot shadow
    the module that is really in use; it answers for the old names alone.
    """
    if not any(isinstance(finder, MovedModuleFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, MovedModuleFinder())


def forwarded(package: str, name: str) -> Any:
    """A package's module ``__getattr__``: a public name the old flat module had, with a warning."""
    if not name.startswith("_"):
        for new in FORWARDED[package]:
            module = importlib.import_module(new)
            if hasattr(module, name):
                _warn(f"{package}.{name}", f"{new}.{name}")
                return getattr(module, name)
    raise AttributeError(f"module {package!r} has no attribute {name!r}")
