"""The public API: ``reactive.__all__`` is what docs/reference/api.md lists, every name imports
in a fresh interpreter without touching models, and the 0.1 module paths still work, warning."""

from __future__ import annotations

import importlib
import json
import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from reactive.compat import FORWARDED, MOVED

API_DOC = Path(__file__).resolve().parents[1] / "docs" / "reference" / "api.md"

# Names that import models on first use (reactive.__getattr__), so not before django.setup().
LAZY = ["StoredFile"]

FRESH = f"""
import json, sys
import reactive
names = {{name: type(getattr(reactive, name)).__name__ for name in reactive.__all__
         if name not in {LAZY!r}}}
loaded = sorted(m for m in sys.modules if m.startswith("reactive.models"))
print(json.dumps({{"all": reactive.__all__, "types": names, "models": loaded}}))
"""


def documented_names() -> set[str]:
    rows = re.findall(r"^\| `(\w+)` \|", API_DOC.read_text(), flags=re.MULTILINE)
    assert rows, f"no names found in {API_DOC}"
    return set(rows)


def test_public_api_matches_the_documented_list_in_a_fresh_interpreter() -> None:
    # Given a new interpreter that has not configured Django
    result = subprocess.run(
        [sys.executable, "-W", "error::DeprecationWarning", "-c", FRESH],
        capture_output=True, text=True, timeout=60, check=True,
    )
    report = json.loads(result.stdout)
    # Then every exported name exists, the list is the documented one, and no model was imported
    assert set(report["all"]) == documented_names()
    assert len(report["all"]) == len(set(report["all"]))
    assert report["models"] == []


@pytest.mark.parametrize(("old", "new"), sorted(MOVED.items()))
def test_old_module_paths_import_the_new_module_with_a_warning(old: str, new: str) -> None:
    sys.modules.pop(old, None)
    with pytest.warns(DeprecationWarning, match=re.escape(new)):
        module = importlib.import_module(old)
    assert module is importlib.import_module(new)


@pytest.mark.parametrize(("package", "target"),
                         [(p, t) for p, targets in sorted(FORWARDED.items()) for t in targets])
def test_old_names_of_modules_that_became_packages_are_forwarded(package: str,
                                                                 target: str) -> None:
    old = importlib.import_module(package)
    new = importlib.import_module(target)
    public = [name for name in vars(new) if not name.startswith("_") and callable(vars(new)[name])
              and getattr(vars(new)[name], "__module__", None) == target]
    name = public[0]
    with pytest.warns(DeprecationWarning, match=re.escape(f"{target}.{name}")):
        assert getattr(old, name) is getattr(new, name)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(AttributeError):
            _ = old.no_such_name


def test_lazy_names_resolve_once_django_is_set_up() -> None:
    import reactive
    from reactive.models import StoredFile

    assert reactive.StoredFile is StoredFile
    assert set(LAZY) <= set(reactive.__all__)
    with pytest.raises(AttributeError):
        _ = reactive.NoSuchName  # type: ignore[attr-defined]
