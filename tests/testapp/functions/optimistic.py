"""Functions for the React bindings' optimistic updates (tests/test_react_optimistic.py):
`testapp/optimistic:<name>`. Accounts stand for counters; a prefix keeps each test's own."""

from __future__ import annotations

import time
from typing import Any

from django.db import transaction
from django.db.models import F

from reactive import MutationCtx, QueryCtx, mutation, query
from reactive.functions.pagination import PaginationOptions
from tests.testapp.models import Account

HOOK_SECONDS = 0.05  # an on_commit hook this slow delays the worker thread's return


@query
def balance(ctx: QueryCtx, name: str) -> int:
    account = Account.objects.filter(name=name).first()
    return account.balance if account else 0


@mutation
def deposit(ctx: MutationCtx, name: str, amount: int, hook: bool = False) -> None:
    """Add ``amount``; with ``hook``, also register a (slow) ``transaction.on_commit`` hook."""
    Account.objects.get_or_create(name=name)
    Account.objects.filter(name=name).update(balance=F("balance") + amount)
    if hook:
        transaction.on_commit(lambda: time.sleep(HOOK_SECONDS))


@query
def accounts(ctx: QueryCtx, pagination_opts: PaginationOptions, prefix: str) -> Any:
    """The accounts named with ``prefix``, newest first (so an insert lands at the top)."""
    return ctx.paginate(Account.objects.filter(name__startswith=prefix).order_by("-id"),
                        pagination_opts)


@mutation
def open_account(ctx: MutationCtx, name: str, hook: bool = False) -> str:
    account = Account.objects.create(name=name)
    if hook:
        transaction.on_commit(lambda: time.sleep(HOOK_SECONDS))
    return str(account.pk)


@mutation
def bump(ctx: MutationCtx, name: str, hook: bool = False) -> None:
    """One more on the account's balance (a like counter)."""
    Account.objects.filter(name=name).update(balance=F("balance") + 1)
    if hook:
        transaction.on_commit(lambda: time.sleep(HOOK_SECONDS))
