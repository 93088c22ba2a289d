"""Run every benchmark in its own process, one after the other, and print their JSON lines.

Extra arguments are not forwarded: run a script directly to change its duration or clients.
Exits non-zero if any benchmark failed.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHMARKS = ["mutation_throughput.py", "contention.py", "scheduler_latency.py",
              "push_latency.py", "precision.py", "capacity.py", "peer_dcrf.py", "fanout.py"]


def main() -> int:
    failed = []
    for script in BENCHMARKS:
        print(f"==> {script}", file=sys.stderr, flush=True)
        done = subprocess.run(
            [sys.executable, str(HERE / script)], stdout=subprocess.PIPE, text=True, timeout=600
        )
        lines = done.stdout.strip().splitlines()
        if done.returncode != 0 or not lines:
            failed.append(script)
            print(f"{script} failed with exit code {done.returncode}", file=sys.stderr)
            continue
        print(lines[-1], flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
