"""``manage.py reactive_run <name> '<json args>'``: run one function and print its result."""

from __future__ import annotations

import json
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from reactive.exceptions import BadRequest
from reactive.functions.arguments import decode_wire_args
from reactive.functions.runtime import Call, runtime
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
        identity = ADMIN if options["admin"] else _user_identity(options["user"])
        outcome = runtime.call(Call(options["name"], arguments, identity, internal=True))
        if not outcome.ok:
            detail = ""
            if outcome.has_error_data:
                detail = f"\nerror data: {json.dumps(outcome.error_data)}"
            raise CommandError(f"{outcome.error}{detail}", returncode=1)
        self.stdout.write(json.dumps(outcome.value, indent=2, ensure_ascii=False))


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
