"""Insights over a window: scrape a server's ``/api/metrics`` twice and rank what changed in
between, the functions that conflicted most and the slowest ones (``reactive_insights``)."""

from __future__ import annotations

import time
import urllib.request
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

Key = tuple[str, ...]


@dataclass(frozen=True)
class FunctionStats:
    function: str
    calls: float
    errors: float
    mean_seconds: float
    p95_seconds: float | None  # upper bound of the bucket holding the 95th percentile


@dataclass(frozen=True)
class Insights:
    window: float
    conflicts: list[tuple[str, str, float, float]]  # function, sqlstate, retries, failures
    slowest: list[FunctionStats]


def scrape(url: str, admin_key: str, timeout: float = 10) -> dict[str, dict[Key, float]]:
    """``{sample name: {label values: value}}`` from ``url``/api/metrics."""
    request = urllib.request.Request(url.rstrip("/") + "/api/metrics",
                                     headers={"Authorization": f"Convex {admin_key}"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        text = response.read().decode()
    samples: dict[str, dict[Key, float]] = defaultdict(dict)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            key = tuple(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            samples[sample.name][key] = sample.value
    return samples


def collect(url: str, admin_key: str, window: float, top: int = 10) -> Insights:
    """Scrape now and after ``window`` seconds (once, for totals since start, when 0)."""
    before: dict[str, dict[Key, float]] = {}
    if window > 0:
        before = scrape(url, admin_key)
        time.sleep(window)
    return compare(before, scrape(url, admin_key), window, top)


def compare(before: dict[str, dict[Key, float]], after: dict[str, dict[Key, float]],
            window: float, top: int) -> Insights:
    def delta(name: str) -> dict[Key, float]:
        old = before.get(name, {})
        return {k: v - old.get(k, 0.0) for k, v in after.get(name, {}).items()}

    retries, failures = (delta("reactive_mutation_retries_total"),
                         delta("reactive_mutation_conflicts_total"))
    conflicts = sorted(
        ((_label(k, "function"), _label(k, "sqlstate"), retries.get(k, 0.0),
          failures.get(k, 0.0)) for k in set(retries) | set(failures)),
        key=lambda row: (-(row[2] + row[3]), row[0]))
    conflicts = [row for row in conflicts if row[2] + row[3] > 0][:top]
    return Insights(window, conflicts, _slowest(delta, top))


def _slowest(delta: Callable[[str], dict[Key, float]], top: int) -> list[FunctionStats]:
    sums, counts = delta("reactive_function_duration_seconds_sum"), delta(
        "reactive_function_duration_seconds_count")
    calls = delta("reactive_function_calls_total")
    buckets = delta("reactive_function_duration_seconds_bucket")
    stats = []
    for key, count in counts.items():
        if count <= 0:
            continue
        function = _label(key, "function")
        errors = sum(v for k, v in calls.items()
                     if _label(k, "function") == function and _label(k, "outcome") == "error")
        stats.append(FunctionStats(function, count, errors, sums.get(key, 0.0) / count,
                                   _p95(buckets, function, count)))
    return sorted(stats, key=lambda s: -s.mean_seconds)[:top]


def _p95(buckets: dict[Key, float], function: str, count: float) -> float | None:
    bounds = sorted((float(_label(k, "le")), v) for k, v in buckets.items()
                    if _label(k, "function") == function)
    for bound, cumulative in bounds:
        if cumulative >= 0.95 * count:
            return bound
    return None


def _label(key: Key, name: str) -> str:
    prefix = f"{name}="
    return next((part[len(prefix):] for part in key if part.startswith(prefix)), "")
