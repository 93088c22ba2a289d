"""``manage.py reactive_functions``: list every function with its kind, visibility and args,
and every HTTP action; ``--check``: list the live queries seen reading untracked tables,
failing if any is refused."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from reactive.conf import reactive_settings
from reactive.functions import untracked
from reactive.functions.http_actions import routes
from reactive.functions.registry import registry


class Command(BaseCommand):
    help = (
        "List the registered functions (name, kind, visibility, argument schema) and the "
        "HTTP actions (methods and path)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true", help="Print one JSON document.")
        parser.add_argument(
            "--system", action="store_true",
            help="Also list the package's own _system/ functions (what the Convex CLI calls).")
        parser.add_argument(
            "--check", action="store_true",
            help="List live queries seen reading tables without capture triggers (by any "
            "process, recorded in reactive_untrackedread); exit 1 if any would be refused.")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["check"]:
            self._check()
            return
        rows: list[dict[str, Any]] = [
            {
                "name": definition.name,
                "kind": str(definition.kind),
                "visibility": str(definition.visibility),
                "args": definition.arguments.json_schema(),
            }
            for definition in registry
            if options["system"] or not definition.name.startswith("_system/")
        ]
        prefix = "/" + reactive_settings().HTTP_ACTIONS_PREFIX
        rows += [
            {
                "name": f"{'|'.join(sorted(action.methods))} {prefix}{action.path.lstrip('/')}"
                + ("*" if action.prefix else ""),
                "kind": "http",
                "visibility": "public",
                "handler": action.name,
                "args": {},
            }
            for action in routes
        ]
        if options["json"]:
            self.stdout.write(json.dumps(rows, indent=2))
            return
        width = max((len(row["name"]) for row in rows), default=4)
        for row in rows:
            schema = row["args"]
            required = set(schema.get("required", []))
            params = ", ".join(
                f"{name}{'' if name in required else '?'}: {_type(spec)}"
                for name, spec in schema.get("properties", {}).items()
            )
            self.stdout.write(
                f"{row['name']:<{width}}  {row['kind']:<8}  {row['visibility']:<8}  ({params})"
            )
        self.stdout.write(f"{len(rows)} functions and HTTP actions")


    def _check(self) -> None:
        refused = set()
        definitions = {definition.name: definition for definition in registry}
        for function, table, seen in untracked.recorded():
            definition = definitions.get(function)
            verdict = untracked.mode(definition) if definition is not None else seen
            if verdict == "refuse":
                refused.add(function)
            self.stdout.write(f"{verdict:<6}  {function}  {table}")
        if refused:
            raise CommandError(
                f"{len(refused)} function(s) read untracked tables and are refused live: "
                f"{', '.join(sorted(refused))}. Track the tables, or opt in with "
                "@query(untracked_reads='warn') / REACTIVE['UNTRACKED_READS'] = 'warn'.")
        self.stdout.write("no live query is refused for reading untracked tables")


def _type(spec: dict[str, Any]) -> str:
    if "type" in spec:
        return str(spec["type"])
    if "enum" in spec:
        return " | ".join(json.dumps(v) for v in spec["enum"])
    if "anyOf" in spec:
        return " | ".join(_type(s) for s in spec["anyOf"])
    if "$ref" in spec:
        return str(spec["$ref"]).rsplit("/", 1)[-1]
    return "any"
