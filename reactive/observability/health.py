"""The health report the admin's "health" page shows: Reactor and scheduler figures, the worst
conflicts and slowest functions (as ``reactive_insights`` ranks them), read from the metrics
registry, and the reactions' and data migrations' states read from their tables."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.utils import timezone
from prometheus_client.registry import CollectorRegistry

from reactive.observability import insights
from reactive.observability.metrics import exposition_registry, multiprocess

Samples = dict[str, dict[insights.Key, float]]


@dataclass(frozen=True)
class Health:
    scope: str  # whose counts: "this process" or "all processes" (multiprocess mode)
    rounds: float
    phases_ms: list[tuple[str, float]]  # mean per round
    round_ms: float | None
    lag_ms: float | None  # mean commit → push
    lag_p95_ms: float | None  # upper bound of the bucket holding the 95th percentile
    reruns_per_round: float | None
    gauges: dict[str, float]  # sessions, subscriptions, change log, scheduler
    conflicts: list[tuple[str, str, float, float]]  # function, sqlstate, retries, gave up
    slowest: list[dict[str, Any]]  # function, calls, errors, mean_ms, p95_ms
    reactions: list[dict[str, Any]]
    migrations: list[dict[str, Any]]


def samples_of(registry: CollectorRegistry) -> Samples:
    """``{sample name: {label values: value}}``, as :func:`insights.scrape` returns them."""
    samples: Samples = {}
    for family in registry.collect():
        for sample in family.samples:
            key = tuple(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            samples.setdefault(sample.name, {})[key] = sample.value
    return samples


def report(top: int = 10) -> Health:
    """Everything the page shows, now (totals since each process started)."""
    samples = samples_of(exposition_registry())

    def one(name: str, key: insights.Key = ()) -> float:
        return samples.get(name, {}).get(key, 0.0)

    rounds = one("reactive_reactor_round_seconds_count")
    phases = sorted(((key[0].removeprefix("phase="), _mean(total, rounds) or 0.0) for key, total
                     in samples.get("reactive_reactor_round_phase_seconds_sum", {}).items()),
                    key=lambda item: _order(item[0]))
    lag_count = one("reactive_reactor_push_lag_seconds_count")
    gauges = {name: one(name) for name in (
        "reactive_reactor_sessions", "reactive_reactor_subscriptions",
        "reactive_change_log_rows", "reactive_scheduler_due_jobs",
        "reactive_scheduler_due_lag_seconds", "reactive_scheduler_running_jobs")}
    gauges["start_lag_p95"] = one("reactive_scheduler_start_lag_seconds", ("quantile=0.95",))
    for state in ("success", "failed"):
        gauges[f"finished_{state}"] = one("reactive_scheduler_finished_jobs", (f"state={state}",))
    ranked = insights.compare({}, samples, 0, top)
    return Health(
        scope="all processes" if multiprocess() else "this process",
        rounds=rounds,
        phases_ms=[(phase, mean * 1000) for phase, mean in phases],
        round_ms=_ms(_mean(one("reactive_reactor_round_seconds_sum"), rounds)),
        lag_ms=_ms(_mean(one("reactive_reactor_push_lag_seconds_sum"), lag_count)),
        lag_p95_ms=_ms(_p95(samples.get("reactive_reactor_push_lag_seconds_bucket", {}),
                            lag_count)),
        reruns_per_round=_mean(one("reactive_reactor_reruns_per_round_sum"), rounds),
        gauges=gauges,
        conflicts=ranked.conflicts,
        slowest=[{"function": f.function, "calls": f.calls, "errors": f.errors,
                  "mean_ms": f.mean_seconds * 1000, "p95_ms": _ms(f.p95_seconds)}
                 for f in ranked.slowest],
        reactions=_reactions(),
        migrations=_migrations(),
    )


def _reactions() -> list[dict[str, Any]]:
    from reactive.models import Reaction

    now = timezone.now()
    return [{"name": r.name, "state": r.get_state_display(), "handled": r.handled,
             "lag": (now - r.cursor_at).total_seconds(), "error": r.error.splitlines()[-1:]}
            for r in Reaction.objects.order_by("name")]


def _migrations() -> list[dict[str, Any]]:
    from reactive.models import DataMigration

    return [{"name": m.name, "state": m.get_state_display(), "done": m.done, "total": m.total,
             "heartbeat": m.heartbeat_at, "error": m.error.splitlines()[-1:]}
            for m in DataMigration.objects.order_by("-updated_at")[:50]]


def _order(phase: str) -> int:
    # The Reactor's order of phases (reactive.live.reactor.PHASES; a sibling: not imported).
    order = ("inbox", "begin", "log", "match", "rerun", "commit", "encode", "send")
    return order.index(phase) if phase in order else len(order)


def _mean(total: float, count: float) -> float | None:
    return total / count if count else None


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1000


def _p95(buckets: Mapping[insights.Key, float], count: float) -> float | None:
    bounds = sorted((float(dict(p.split("=", 1) for p in key)["le"]), v)
                    for key, v in buckets.items())
    return next((bound for bound, cumulative in bounds if count and cumulative >= 0.95 * count),
                None)
