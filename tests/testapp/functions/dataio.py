"""Functions for the function-log and export tests: named `testapp/dataio:<name>`."""

from __future__ import annotations

import logging

from reactive import FunctionError, MutationCtx, QueryCtx, SyncActionCtx, action, mutation, query
from tests.testapp.models import Note

logger = logging.getLogger("tests.testapp.dataio")


@query
def chatty(ctx: QueryCtx, word: str, times: int = 1) -> int:
    for n in range(times):
        print(f"said {word} {n}")
    logger.warning("careful %s", word)
    logger.error("bad %s", word)
    return times


@mutation
def noisy_write(ctx: MutationCtx, body: str) -> str:
    print("writing", body)
    if body == "fail":
        logger.warning("refusing %s", body)
        raise FunctionError({"refused": body})
    return str(Note.objects.create(body=body).pk)


@action
def shout(ctx: SyncActionCtx, word: str) -> int:
    print("action says", word)
    return int(ctx.run_query("testapp/dataio:chatty", word=word))
