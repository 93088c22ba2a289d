"""What every embedded server shares as a child process of this Python process: its port and log
file, refusing a data dir another live server holds, starting until ready or failing with no
server left, and staged shutdown on ``stop()``, at interpreter exit or in a ``with`` block."""

from __future__ import annotations

import atexit
import logging
import os
import signal
import subprocess
import time
from abc import ABC, abstractmethod
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar, Self

from reactive.embedded.ports import die_with_parent, free_port


class ChildServer(ABC):
    """A server in ``data_dir`` run as a child process of this one, on ``host:port`` only.

    ``start()`` refuses a data dir whose pid file names a live server of the same kind (we could
    not stop it) and removes a stale pid file; then spawns the server in its own process group,
    its output appended to ``log_path``, and returns once it is ready. The first of
    ``_stop_signals`` stops it from ``stop()``, at interpreter exit, and on Linux when the
    spawning thread dies; if it lingers, ``stop()`` sends the next ones, 10 s apart. A forked
    child never stops its parent's server. Not thread-safe: drive start/stop from one thread.

    Subclasses name the server with the class attributes below and supply ``_command``,
    ``_is_ready``, ``_is_server_comm`` and ``_in_use_message``; ``_make_dirs``, ``_prepare``
    and ``_child_options`` are optional hooks.
    """

    _logger: ClassVar[logging.Logger]
    _name: ClassVar[str]  # in log lines: "<name> started ..."
    _pid_file: ClassVar[str]  # the file in data_dir holding the running server's pid (line 1)
    _stop_signals: ClassVar[tuple[signal.Signals, ...]]  # the first is also the death signal
    _exited: ClassVar[str]  # RuntimeError when it exits starting; ``{code}``: its exit status
    _not_ready: ClassVar[str]  # TimeoutError when it is not ready in time; ``{timeout}``

    def __init__(
        self,
        data_dir: Path,
        *,
        port: int | None = None,
        host: str = "127.0.0.1",
        log_path: Path | None = None,
        fast: bool = False,
    ) -> None:
        """Configure without starting; pick a free port on ``host`` unless ``port`` is given.

        ``log_path`` defaults to ``<data_dir>.log`` beside the data dir (appended to).
        """
        self._data_dir = Path(data_dir).absolute()
        self._host = host
        self._port = port if port is not None else free_port(host)
        self.log_path = log_path or self._data_dir.with_name(self._data_dir.name + ".log")
        self._fast = fast
        self._proc: subprocess.Popen[bytes] | None = None
        self._owner = os.getpid()

    @property
    def data_dir(self) -> Path:
        return self._data_dir

    @property
    def port(self) -> int:
        return self._port

    @property
    def _url_host(self) -> str:
        """``host`` as a URL spells it: an IPv6 address in brackets."""
        return f"[{self._host}]" if ":" in self._host else self._host

    def start(self, timeout: float = 30) -> None:
        """Start the server and return once it is ready; idempotent while running.

        Raises RuntimeError if the data dir is in use or the server exits, TimeoutError past
        ``timeout`` seconds overall; the last two carry the log's tail. On failure no server is
        left running.
        """
        if self._proc is not None and self._proc.poll() is None:
            return
        began = time.monotonic()
        deadline = began + timeout
        self._make_dirs()
        self._refuse_if_in_use()
        self._prepare(deadline)
        self._owner = os.getpid()
        try:
            proc = self._spawn()
            self._wait_ready(proc, deadline, timeout)
        except BaseException:
            self.stop()
            raise
        atexit.register(self.stop)
        self._logger.info(
            "%s started data_dir=%s port=%d pid=%d seconds=%.2f",
            self._name,
            self._data_dir,
            self._port,
            proc.pid,
            time.monotonic() - began,
        )

    def stop(self, timeout: float = 30) -> None:
        """Send the first stop signal and wait; idempotent.

        Escalates through the other stop signals, 10 s apart, after ``timeout`` seconds.
        """
        proc, self._proc = self._proc, None
        atexit.unregister(self.stop)
        if proc is None or self._owner != os.getpid():  # a forked child must not stop it
            return
        waits = [timeout] + [10] * (len(self._stop_signals) - 1)
        for sig, wait in zip(self._stop_signals, waits, strict=True):
            if proc.poll() is not None:
                break
            proc.send_signal(sig)
            try:
                proc.wait(wait)
            except subprocess.TimeoutExpired:
                self._logger.warning(
                    "%s stop slow pid=%d signal=%s waited=%s", self._name, proc.pid, sig, wait
                )
        self._logger.info("%s stopped data_dir=%s port=%d", self._name, self._data_dir, self._port)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _make_dirs(self) -> None:
        """Create ``data_dir`` and the log's directory; runs before the in-use check."""
        self._data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)

    def _prepare(self, deadline: float) -> None:  # noqa: B027 (optional hook)
        """Ready ``data_dir`` for the server by ``deadline`` (monotonic); after the in-use check."""

    @abstractmethod
    def _command(self) -> list[str]:
        """The server's command line."""

    def _child_options(self) -> dict[str, Any]:
        """Extra ``subprocess`` options for the server (and anything else run for it)."""
        return {}

    @abstractmethod
    def _is_ready(self, proc: subprocess.Popen[bytes]) -> bool:
        """Whether the running server ``proc`` takes clients yet; called every 50 ms."""

    @abstractmethod
    def _is_server_comm(self, comm: str) -> bool:
        """Whether a process named ``comm`` (``/proc/<pid>/comm``) is this kind of server."""

    @abstractmethod
    def _in_use_message(self, pid: int, lines: list[str]) -> str:
        """Why ``start()`` refuses ``data_dir``: live server ``pid`` wrote pid file ``lines``."""

    def _refuse_if_in_use(self) -> None:
        pid_file = self._data_dir / self._pid_file
        try:
            lines = pid_file.read_text().splitlines()
            pid = int(lines[0])
        except (OSError, ValueError, IndexError):
            return
        if self._names_live_server(pid):
            raise RuntimeError(self._in_use_message(pid, lines))
        # Left by a killed server, often naming a pid reused after a container restart, which a
        # server may take for a live owner and refuse to start (PostgreSQL does).
        self._logger.warning("%s stale lock removed path=%s pid=%d", self._name, pid_file, pid)
        pid_file.unlink(missing_ok=True)

    def _names_live_server(self, pid: int) -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass  # alive, owned by another user
        try:
            comm = Path(f"/proc/{pid}/comm").read_text().strip()
        except OSError:
            return True  # cannot tell: assume it is, and refuse
        return self._is_server_comm(comm)

    def _spawn(self) -> subprocess.Popen[bytes]:
        cmd = self._command()
        with self.log_path.open("ab") as log:
            # Own process group, so a terminal's Ctrl-C reaches only us and we stop servers in
            # order; the parent-death signal covers the cases where we cannot.
            self._proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                process_group=0,
                preexec_fn=die_with_parent(self._stop_signals[0]),
                **self._child_options(),
            )
        return self._proc

    def _wait_ready(self, proc: subprocess.Popen[bytes], deadline: float, timeout: float) -> None:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(self._exited.format(code=proc.returncode) + self._tail())
            if self._is_ready(proc):
                return
            time.sleep(0.05)
        raise TimeoutError(self._not_ready.format(timeout=timeout) + self._tail())

    def _tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace").splitlines()[-lines:]
        except OSError:
            return f" No log at {self.log_path}."
        return f" Last lines of {self.log_path}:\n" + "\n".join(text)
