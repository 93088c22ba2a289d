"""The ``ctx`` object a function receives: ``QueryCtx``, ``MutationCtx``, ``ActionCtx`` (for
``async def`` actions) and ``SyncActionCtx``, with ``ctx.auth``.

Contexts call other functions through a ``Runner`` the runtime hands them, which keeps this
module below the runtime in the layering.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any, Protocol

from reactive.auth.identity import Auth
from reactive.functions.scheduler import AsyncScheduler, Scheduler
from reactive.types import FunctionKind, Identity

if TYPE_CHECKING:
    from django.db.models import QuerySet

    from reactive.functions.db import MutationDb, QueryDb
    from reactive.functions.definitions import FunctionRef
    from reactive.functions.storage import (
        AsyncActionStorage,
        MutationStorage,
        QueryStorage,
        SyncActionStorage,
    )


class Runner(Protocol):
    """How a context calls another function (implemented by :mod:`reactive.functions.runtime`)."""

    def run(
        self, ref: FunctionRef, args: Mapping[str, Any], identity: Identity, *,
        expect: FunctionKind | None = ...,
    ) -> Any: ...

    async def arun(
        self, ref: FunctionRef, args: Mapping[str, Any], identity: Identity, *,
        expect: FunctionKind | None = ...,
    ) -> Any: ...


class _BaseCtx:
    def __init__(self, identity: Identity, runner: Runner) -> None:
        self.auth = Auth(identity)
        self._runner = runner

    @property
    def identity(self) -> Identity:
        return self.auth.identity


class QueryCtx(_BaseCtx):
    """Context of a query: read with the ORM; ``run_query`` calls another query inline.

    ``paginate`` returns one reactive page of a queryset (see :mod:`reactive.functions.pagination`).
    """

    def __init__(
        self, identity: Identity, runner: Runner, journal: Sequence[str] | None = None
    ) -> None:
        super().__init__(identity, runner)
        self._journal_in = journal or []
        self.journal_out: list[str] = []

    @cached_property
    def storage(self) -> QueryStorage:
        """File storage: ``get_url`` and ``get_metadata`` (reads, part of the read set)."""
        from reactive.functions.storage import QueryStorage

        return QueryStorage()

    @cached_property
    def db(self) -> QueryDb:
        """Schema-free document tables, read-only here (see :mod:`reactive.functions.db`)."""
        from reactive.functions.db import QueryDb

        return QueryDb(self.paginate)

    def paginate(self, queryset: QuerySet[Any], pagination_opts: Mapping[str, Any]) -> Any:
        """A page ``{page, isDone, continueCursor, splitCursor?, pageStatus?}`` of ``queryset``.

        The queryset must be ordered by fields of its model (the pk is appended to make the
        order total). Re-runs of the same subscription keep the page's end, so consecutive
        pages stay gapless while rows come and go. Raises FunctionError with
        ``paginationError: "InvalidCursor"`` for a cursor that is not of this query.
        """
        from reactive.functions.pagination import paginate

        index = len(self.journal_out)
        pinned = self._journal_in[index] if index < len(self._journal_in) else None
        result, end = paginate(queryset, pagination_opts, pinned)
        self.journal_out.append(end)
        return result

    def run_query(self, ref: FunctionRef, /, **args: Any) -> Any:
        return self._runner.run(ref, args, self.identity, expect=FunctionKind.QUERY)


class MutationCtx(QueryCtx):
    """Context of a mutation: read and write with the ORM in one SERIALIZABLE transaction.

    ``run_mutation`` runs another mutation inside the same transaction; ``scheduler`` writes
    jobs in it too, so they exist only if the mutation commits.
    """

    @cached_property
    def scheduler(self) -> Scheduler:
        return Scheduler()

    def run_mutation(self, ref: FunctionRef, /, **args: Any) -> Any:
        return self._runner.run(ref, args, self.identity, expect=FunctionKind.MUTATION)

    @cached_property
    def storage(self) -> MutationStorage:
        """File storage: also ``generate_upload_url`` and ``delete`` (in this transaction)."""
        from reactive.functions.storage import MutationStorage

        return MutationStorage()

    @cached_property
    def db(self) -> MutationDb:
        """Schema-free document tables: read, ``insert``, ``patch``, ``replace``, ``delete``."""
        from reactive.functions.db import MutationDb

        return MutationDb(self.paginate)


class ActionCtx(_BaseCtx):
    """Context of an ``async def`` action: no transaction; call queries, mutations and actions.

    Each ``run_*`` awaits a separate function call with its own transaction;
    ``await ctx.scheduler.run_after(...)`` commits each job on its own.
    """

    @cached_property
    def scheduler(self) -> AsyncScheduler:
        return AsyncScheduler()

    @cached_property
    def storage(self) -> AsyncActionStorage:
        """File storage with awaitable methods, including ``store`` and ``get``."""
        from reactive.functions.storage import AsyncActionStorage

        return AsyncActionStorage()

    async def run_query(self, ref: FunctionRef, /, **args: Any) -> Any:
        return await self._runner.arun(ref, args, self.identity, expect=FunctionKind.QUERY)

    async def run_mutation(self, ref: FunctionRef, /, **args: Any) -> Any:
        return await self._runner.arun(ref, args, self.identity, expect=FunctionKind.MUTATION)

    async def run_action(self, ref: FunctionRef, /, **args: Any) -> Any:
        return await self._runner.arun(ref, args, self.identity, expect=FunctionKind.ACTION)


class SyncActionCtx(_BaseCtx):
    """Context of a plain ``def`` action: like ``ActionCtx`` with blocking calls."""

    @cached_property
    def scheduler(self) -> Scheduler:
        return Scheduler()

    @cached_property
    def storage(self) -> SyncActionStorage:
        """File storage, including ``store`` and ``get``."""
        from reactive.functions.storage import SyncActionStorage

        return SyncActionStorage()

    def run_query(self, ref: FunctionRef, /, **args: Any) -> Any:
        return self._runner.run(ref, args, self.identity, expect=FunctionKind.QUERY)

    def run_mutation(self, ref: FunctionRef, /, **args: Any) -> Any:
        return self._runner.run(ref, args, self.identity, expect=FunctionKind.MUTATION)

    def run_action(self, ref: FunctionRef, /, **args: Any) -> Any:
        return self._runner.run(ref, args, self.identity, expect=FunctionKind.ACTION)
