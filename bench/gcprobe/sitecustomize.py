"""Put this directory on a server's ``PYTHONPATH`` to have it report every full (generation 2)
garbage collection on stderr as ``reactive-gcprobe <start> <ms>``: ``start`` on
``time.perf_counter()`` (CLOCK_MONOTONIC, the clock the benchmarks time commits with), ``ms``
how long the collection stopped the process. Benchmarks only (``bench/fanout.py``)."""

import gc
import sys
import time

_started = [0.0]


def _probe(phase: str, info: dict) -> None:
    if phase == "start":
        _started[0] = time.perf_counter()
    elif info["generation"] == 2:
        ms = (time.perf_counter() - _started[0]) * 1000
        sys.stderr.write(f"reactive-gcprobe {_started[0]:.6f} {ms:.1f}\n")
        sys.stderr.flush()


gc.callbacks.append(_probe)
