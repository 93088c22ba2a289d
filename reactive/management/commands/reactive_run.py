"""``manage.py reactive_run <name> '<json args>'``: run one function and print its result."""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from reactive.exceptions import BadRequest, ReactiveError
from reactive.functions.arguments import decode_wire_args
from reactive.functions.outcome import failure
from reactive.functions.runtime import Call, runtime
from reactive.probe import DOWN_HINT, database_problem
from reactive.types import ADMIN, ANONYMOUS, Identity


class Command(BaseCommand):
    help = (
        "Run a query, mutation or action (internal ones too) and print its result as "
        "Convex-encoded JSON. Exits non-zero with the error when the function fails."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", help="Function path, e.g. chat:send")
        parser.add_argument(
            "json_args", nargs="?", default="{}", metavar="args", help="Arguments as a JSON object"
        )
        who = parser.add_mutually_exclusive_group()
        who.add_argument("--user", help="Run as this user (username or primary key).")
        who.add_argument("--admin", action="store_true", help="Run with the admin identity.")

    def handle(self, *args: Any, **options: Any) -> None:
        arguments = _parse_args(options["json_args"])
        problem = database_problem()
        if problem is not None:
            raise CommandError(f"{problem}\n{DOWN_HINT}")
        identity = ADMIN if options["admin"] else _user_identity(options["user"])
        with _without_expected_tracebacks(enabled=not options.get("traceback")):
            outcome = runtime.call(Call(options["name"], arguments, identity, internal=True))
        if not outcome.ok:
            detail = ""
            if outcome.has_error_data:
                detail = f"\nerror data: {json.dumps(outcome.error_data)}"
            raise CommandError(f"{outcome.error}{detail}", returncode=1)
        self.stdout.write(json.dumps(outcome.value, indent=2, ensure_ascii=False))


@contextlib.contextmanager
def _without_expected_tracebacks(*, enabled: bool) -> Iterator[None]:
    """Drop the runtime's log record of a ReactiveError (a query that writes, a conflict): this
    command prints the error's message itself, and the traceback only buries it. Crashes in
    user code keep their traceback; ``--traceback`` keeps every one."""

    def keep(record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], ReactiveError))

    logger = logging.getLogger(failure.__module__)  # where the runtime logs failures
    if enabled:
        logger.addFilter(keep)
    try:
        yield
    finally:
        logger.removeFilter(keep)


def _parse_args(raw: str) -> dict[str, Any]:
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise CommandError(f"Arguments must be a JSON object, e.g. '{{\"a\": 1}}': {exc}") from None
    if not isinstance(data, dict):
        raise CommandError(f"Arguments must be a JSON object, not {type(data).__name__}.")
    try:
        return decode_wire_args(data)
    except BadRequest as exc:
        raise CommandError(str(exc)) from None


def _user_identity(user: str | None) -> Identity:
    if user is None:
        return ANONYMOUS
    model = get_user_model()
    match = model._default_manager.filter(**{model.USERNAME_FIELD: user}).first()
    if match is None and user.isdigit():
        match = model._default_manager.filter(pk=user).first()
    if match is None:
        raise CommandError(f"No user with username or id {user!r}.")
    return Identity(user_id=str(match.pk))
