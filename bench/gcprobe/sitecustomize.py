"""Put this directory on a server's ``PYTHONPATH`` to have it report on stderr:

- every full (generation 2) garbage collection, as ``reactive-gcprobe <start> <ms>``:
  ``start`` on ``time.perf_counter()`` (CLOCK_MONOTONIC, the clock the benchmarks time commits
  with), ``ms`` how long the collection stopped the process (``bench/fanout.py``);
- on ``SIGUSR2``, after a full collection, how many objects the collector tracks, as
  ``reactive-gcobjects <count>``: what every later full collection has to walk
  (``bench/socket_floor.py``).

Benchmarks only."""

import gc
import signal
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


def _count(signum: int, frame: object) -> None:
    gc.collect()
    sys.stderr.write(f"reactive-gcobjects {len(gc.get_objects())}\n")
    sys.stderr.flush()


gc.callbacks.append(_probe)
signal.signal(signal.SIGUSR2, _count)
