"""Crons declared in code: ``from reactive import crons`` in ``<app>/crons.py``.

::

    crons.interval("purge old", "chat:purge", minutes=10)
    crons.cron("daily digest", "0 9 * * *", "chat:digest", args={"channel": "general"})
    crons.daily("backup", "ops:backup", hour=3, minute=30)

Declarations are checked when made (schedule) and at start-up (function and arguments), so a
bad one stops the project from starting. Times are UTC. Firing lives in
:mod:`reactive.scheduling.cron_tick`; this module never touches the database.
"""

from __future__ import annotations

import datetime
import importlib
import importlib.util
import logging
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from croniter import croniter
from django.apps import AppConfig

from reactive.exceptions import DefinitionError, SchedulingError
from reactive.functions.definitions import FunctionDefinition, FunctionRef
from reactive.functions.registry import Registry

logger = logging.getLogger(__name__)

DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


@dataclass(frozen=True)
class Interval:
    """Every ``seconds`` seconds, counted from the cron's first occurrence."""

    seconds: float

    def describe(self) -> str:
        return f"every {self.seconds:g}s"

    def next_after(self, previous: datetime.datetime, now: datetime.datetime) -> datetime.datetime:
        """The first occurrence after ``now`` in the series through ``previous``."""
        step = datetime.timedelta(seconds=self.seconds)
        behind = max(0, int((now - previous) / step))
        return previous + step * (behind + 1)

    def first(self, now: datetime.datetime) -> datetime.datetime:
        return now + datetime.timedelta(seconds=self.seconds)


@dataclass(frozen=True)
class CronExpression:
    """A five-field cron expression (``"m h dom mon dow"``), read in UTC by croniter."""

    expression: str

    def describe(self) -> str:
        return f"cron {self.expression}"

    def next_after(self, previous: datetime.datetime, now: datetime.datetime) -> datetime.datetime:
        return self.first(max(previous, now))

    def first(self, now: datetime.datetime) -> datetime.datetime:
        following: datetime.datetime = croniter(
            self.expression, now.astimezone(datetime.UTC)
        ).get_next(datetime.datetime)
        return following


Schedule = Interval | CronExpression


@dataclass(frozen=True)
class CronSpec:
    """One declared cron: a name, a schedule, the function and the arguments it runs with."""

    name: str
    schedule: Schedule
    function: FunctionRef
    args: Mapping[str, Any] = field(default_factory=dict)
    origin: str = ""

    @property
    def function_name(self) -> str:
        return (
            self.function.name if isinstance(self.function, FunctionDefinition) else self.function
        )

    def next_runs(
        self, now: datetime.datetime, count: int, first: datetime.datetime | None = None
    ) -> list[datetime.datetime]:
        """The next ``count`` occurrences: from ``first`` (the stored next run) when given,
        else after ``now`` (an interval then counts from ``now``)."""
        runs, at = [], first or self.schedule.first(now)
        for _ in range(count):
            runs.append(at)
            at = self.schedule.next_after(at, at)
        return runs


class CronRegistry:
    """Every cron the project declares, by name."""

    def __init__(self) -> None:
        self._specs: dict[str, CronSpec] = {}

    def __iter__(self) -> Iterator[CronSpec]:
        return iter(sorted(self._specs.values(), key=lambda spec: spec.name))

    def __len__(self) -> int:
        return len(self._specs)

    def get(self, name: str) -> CronSpec | None:
        return self._specs.get(name)

    def add(self, spec: CronSpec) -> CronSpec:
        if not isinstance(spec.name, str) or not spec.name.strip() or len(spec.name) > 200:
            raise DefinitionError(f"A cron needs a name of 1-200 characters, not {spec.name!r}.")
        if not isinstance(spec.function, str | FunctionDefinition):
            raise DefinitionError(
                f"Cron '{spec.name}' must name a function ('app:fn') or pass its definition, not "
                f"{spec.function!r}."
            )
        existing = self._specs.get(spec.name)
        if existing is not None and existing != spec:
            raise DefinitionError(
                f"Two crons are named '{spec.name}' ({existing.origin} and {spec.origin}); cron "
                "names must be unique."
            )
        self._specs[spec.name] = spec
        return spec

    def validate(self, functions: Registry) -> None:
        """Check every cron's function and arguments; DefinitionError for the first bad one."""
        from reactive.functions.scheduler import (
            prepare,  # the scheduler's own checks, run once at start-up
        )

        for spec in self:
            try:
                prepare(functions, spec.function, spec.args)
            except SchedulingError as exc:
                raise DefinitionError(f"Cron '{spec.name}' ({spec.origin}): {exc}") from exc

    def discover(self, app_configs: Iterable[AppConfig], module_name: str) -> None:
        """Import ``<app>.<module_name>`` for each installed app (declaring its crons).

        This app declares none (``reactive.crons`` is only the old path of this module).
        """
        for app_config in app_configs:
            if app_config.name == "reactive":
                continue
            dotted = f"{app_config.name}.{module_name}"
            try:
                found = importlib.util.find_spec(dotted) is not None
            except ModuleNotFoundError:
                found = False
            if found:
                importlib.import_module(dotted)
        logger.debug("crons discovered count=%d", len(self._specs))


registry = CronRegistry()
"""The crons declared with this module's functions."""


def interval(
    name: str,
    fn: FunctionRef,
    *,
    seconds: float = 0,
    minutes: float = 0,
    hours: float = 0,
    args: Mapping[str, Any] | None = None,
) -> CronSpec:
    """Run ``fn(**args)`` every ``seconds + minutes + hours``; the first run is one interval
    after the cron first appears in the database."""
    total = seconds + minutes * 60 + hours * 3600
    if not total > 0:
        raise DefinitionError(
            f"Cron '{name}' needs a positive interval (seconds=, minutes= or hours=)."
        )
    return _declare(name, Interval(float(total)), fn, args)


def cron(
    name: str, expression: str, fn: FunctionRef, *, args: Mapping[str, Any] | None = None
) -> CronSpec:
    """Run ``fn(**args)`` on a cron expression ``"minute hour day-of-month month day-of-week"``
    (UTC)."""
    if (
        not isinstance(expression, str)
        or len(expression.split()) != 5
        or not croniter.is_valid(expression)
    ):
        raise DefinitionError(
            f"Cron '{name}': {expression!r} is not a five-field cron expression "
            "('minute hour day-of-month month day-of-week', e.g. '0 9 * * 1-5')."
        )
    return _declare(name, CronExpression(expression), fn, args)


def hourly(
    name: str, fn: FunctionRef, *, minute: int = 0, args: Mapping[str, Any] | None = None
) -> CronSpec:
    """Run every hour at ``minute`` past (UTC)."""
    return cron(name, f"{_check(name, 'minute', minute, 59)} * * * *", fn, args=args)


def daily(
    name: str,
    fn: FunctionRef,
    *,
    hour: int = 0,
    minute: int = 0,
    args: Mapping[str, Any] | None = None,
) -> CronSpec:
    """Run every day at ``hour:minute`` UTC."""
    when = f"{_check(name, 'minute', minute, 59)} {_check(name, 'hour', hour, 23)}"
    return cron(name, f"{when} * * *", fn, args=args)


def weekly(
    name: str,
    fn: FunctionRef,
    *,
    day: str = "monday",
    hour: int = 0,
    minute: int = 0,
    args: Mapping[str, Any] | None = None,
) -> CronSpec:
    """Run every week on ``day`` (``"monday"`` … ``"sunday"``) at ``hour:minute`` UTC."""
    if not isinstance(day, str) or day.lower() not in DAYS:
        raise DefinitionError(f"Cron '{name}': day={day!r} is not one of {', '.join(DAYS)}.")
    dow = (DAYS.index(day.lower()) + 1) % 7  # cron counts from Sunday = 0
    when = f"{_check(name, 'minute', minute, 59)} {_check(name, 'hour', hour, 23)}"
    return cron(name, f"{when} * * {dow}", fn, args=args)


def _check(name: str, unit: str, value: int, top: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= top:
        raise DefinitionError(f"Cron '{name}': {unit}={value!r} must be an int from 0 to {top}.")
    return value


def _declare(
    name: str, schedule: Schedule, fn: FunctionRef, args: Mapping[str, Any] | None
) -> CronSpec:
    origin = _caller_module()
    return registry.add(CronSpec(name, schedule, fn, dict(args or {}), origin))


def _caller_module() -> str:
    """The module that declared the cron (the first frame outside this one), for messages."""
    frame = sys._getframe(1)
    while frame.f_back is not None and frame.f_globals.get("__name__") == __name__:
        frame = frame.f_back
    return str(frame.f_globals.get("__name__", "?"))
