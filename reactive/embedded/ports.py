"""What an embedded server's child process takes from the host: a free TCP port, an unprivileged
account when we are root, and a tie to this process's life so that no server outlives it."""

from __future__ import annotations

import ctypes
import logging
import os
import pwd
import signal
import socket
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

_log = logging.getLogger(__name__)

# From <linux/prctl.h>; see prctl(2).
_PR_SET_PDEATHSIG = 1


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port on ``host`` that nothing was listening on a moment ago.

    The kernel picks the port and it is released before returning, so another process may take
    it before the caller binds: fine for private dev and test servers, not a reservation.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def die_with_parent(sig: int = signal.SIGTERM) -> Callable[[], None] | None:
    """Return a ``preexec_fn`` after which the child gets ``sig`` when its parent dies.

    Linux only (prctl PR_SET_PDEATHSIG); elsewhere None, and ``stop()``/atexit is the only
    cleanup. The signal fires when the *thread* that spawned the child exits, so spawn servers
    from a thread that lives as long as they should. subprocess runs the hook after switching
    ``user=``, which matters: the kernel clears the death signal on every uid change.
    """
    if not sys.platform.startswith("linux"):
        return None
    parent = os.getpid()
    libc = ctypes.CDLL(None, use_errno=True)

    def preexec() -> None:
        if libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
            os._exit(127)
        if os.getppid() != parent:  # the parent died before prctl: nobody would signal us
            os._exit(1)

    return preexec


def unprivileged_account() -> pwd.struct_passwd | None:
    """Return the account to run a server as when we are root, else None.

    The ``postgres`` system user if present, else a ``reactive`` system user, created with
    ``useradd --system`` on first use. Never ``nobody``: files owned by nobody are shared with
    every other daemon running as nobody. Raises RuntimeError when useradd fails.
    """
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "reactive"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            pass
    cmd = ["useradd", "--system", "--user-group", "--no-create-home"]
    cmd += ["--shell", "/usr/sbin/nologin", "reactive"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        raise RuntimeError(
            f"Creating the `reactive` system user failed: {done.stderr.strip()}. Create an "
            "unprivileged `postgres` user (or install postgresql), or run as non-root."
        )
    _log.info("account created user=reactive")
    return pwd.getpwnam("reactive")


def require_traversable(path: Path, account: pwd.struct_passwd, purpose: str) -> None:
    """Raise PermissionError naming the first directory on ``path`` ``account`` cannot enter.

    Reads mode bits only (no ACLs). Never changes them: widening access to a user's
    directories is the user's decision, so the message says what to do instead.
    """
    groups = set(os.getgrouplist(account.pw_name, account.pw_gid))
    for directory in [*reversed(path.parents), path]:
        st = directory.stat()
        if st.st_uid == account.pw_uid:
            bit = stat.S_IXUSR
        elif st.st_gid in groups:
            bit = stat.S_IXGRP
        else:
            bit = stat.S_IXOTH
        if not st.st_mode & bit:
            raise PermissionError(
                f"User {account.pw_name!r} cannot enter {directory} "
                f"({stat.filemode(st.st_mode)}), needed for {purpose}. Use a data dir under /tmp "
                "(e.g. tempfile.mkdtemp(dir='/tmp'), chmod 0o755), or make that directory "
                "traversable yourself (chmod o+x)."
            )
