"""reactive.W070/W071: search and vector columns without a usable index are reported."""

from __future__ import annotations

from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVectorField
from django.db import models
from django.test.utils import isolate_apps
from pgvector.django import HnswIndex, VectorField

from reactive.checks import check_search_indexes, search_index_warnings


@isolate_apps("tests.testapp")
def test_unindexed_search_and_vector_columns_warn_and_indexed_ones_do_not() -> None:
    class Bare(models.Model):
        document = SearchVectorField(null=True)
        embedding = VectorField(dimensions=3, null=True)

        class Meta:
            app_label = "testapp"

        def __str__(self) -> str:
            return "bare"

    class Indexed(models.Model):
        document = SearchVectorField(null=True)
        embedding = VectorField(dimensions=3, null=True)

        class Meta:
            app_label = "testapp"
            indexes = [GinIndex(fields=["document"], name="indexed_doc"),
                       HnswIndex(fields=["embedding"], name="indexed_emb",
                                 opclasses=["vector_l2_ops"])]

        def __str__(self) -> str:
            return "indexed"

    warnings = search_index_warnings([Bare, Indexed])
    assert sorted(w.id for w in warnings) == ["reactive.W070", "reactive.W071"]
    assert all(w.obj is Bare for w in warnings)
    assert "Bare.embedding" in next(w.msg for w in warnings if w.id == "reactive.W071")


def test_the_test_project_has_its_search_indexes() -> None:
    assert check_search_indexes() == []
