"""Another process that writes: a child Python with its own psycopg connection, fed SQL
statements one JSON line at a time, so a test can interleave its writes with its own."""

from __future__ import annotations

import json
import subprocess
import sys
from types import TracebackType
from typing import Any

CHILD = """
import json, sys
import psycopg
with psycopg.connect(sys.argv[1], autocommit=True) as conn:
    for line in sys.stdin:
        sql, params = json.loads(line)
        try:
            conn.execute(sql, params)
            print(json.dumps(None), flush=True)
        except psycopg.Error as exc:
            print(json.dumps(str(exc)), flush=True)
"""


class WriterProcess:
    """``execute(sql, params)`` runs in the child and returns once it committed (autocommit);
    a database error there is raised here."""

    def __init__(self, dsn: str, timeout: float = 30.0) -> None:
        self.timeout = timeout
        self._proc = subprocess.Popen(
            [sys.executable, "-c", CHILD, dsn], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            text=True,
        )

    def execute(self, sql: str, params: list[Any]) -> None:
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._proc.stdin.write(json.dumps([sql, params], default=str) + "\n")
        self._proc.stdin.flush()
        line = self._proc.stdout.readline()  # the child answers every line, or has died
        if not line:
            raise RuntimeError(f"the writer process exited with {self._proc.wait(self.timeout)}")
        error = json.loads(line)
        if error is not None:
            raise RuntimeError(f"the writer process failed: {error}")

    def __enter__(self) -> WriterProcess:
        return self

    def __exit__(self, *exc: tuple[type[BaseException] | None, BaseException | None,
                                   TracebackType | None]) -> None:
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._proc.stdin.close()  # the child's loop ends, its connection closes
        try:
            self._proc.wait(self.timeout)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(self.timeout)
        self._proc.stdout.close()
