"""reactive.E100: the ctx.db documents table must stay tracked."""

from __future__ import annotations

import pytest

from reactive.checks import check_documents
from reactive.conf import reactive_settings


@pytest.fixture(autouse=True)
def _fresh_settings() -> object:
    reactive_settings.cache_clear()
    yield None
    reactive_settings.cache_clear()


def test_documents_table_tracked_by_default_passes() -> None:
    assert check_documents() == []


@pytest.mark.parametrize("override", [{"UNTRACKED_MODELS": ["reactive.Document"]},
                                      {"TRACKED_APPS": ["testapp"]}])
def test_untracking_the_documents_table_is_an_error(settings: object,
                                                    override: dict[str, object]) -> None:
    settings.REACTIVE = {**settings.REACTIVE, **override}  # type: ignore[attr-defined]
    reactive_settings.cache_clear()
    [error] = check_documents()
    assert error.id == "reactive.E100" and "ctx.db" in error.msg


@pytest.mark.parametrize("value", [{"bad name": "testapp.MovedNote"}, {"notes": "nodot"},
                                   {"notes": 3}])
def test_a_malformed_documents_models_setting_is_refused(value: object) -> None:
    from reactive.conf import validate

    [problem] = validate({"DOCUMENTS_MODELS": value})
    assert "DOCUMENTS_MODELS" in problem
