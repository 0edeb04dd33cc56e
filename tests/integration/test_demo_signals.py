"""``./run demo`` stops cleanly on SIGTERM, SIGHUP and SIGINT (issue 8, item 7).

Each test starts ``python -m devtools.demo`` in its own session (as a terminal would start it),
waits until its board answers, records every process it started (its descendants, and a private
PostgreSQL by its data directory), sends the signal and checks that every one of those processes
is gone, its temporary directory is empty, its own database is dropped and its Redis keys are
deleted, while a database and keys of "another demo" that existed before are untouched.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO

import asyncpg
import pytest
import redis

from devtools.services import Services, free_port

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0
Proc = tuple[int, str]
"""(pid, start time in clock ticks): a pid reused by a new process is not the same process."""


def _stat(pid: int) -> tuple[int, str, str] | None:
    """(ppid, state, start time) of a live process, or None."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = text[text.rindex(")") + 2 :].split()
    return int(fields[1]), fields[0], fields[19]


def _table() -> dict[int, tuple[int, str, str]]:
    out = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (st := _stat(int(entry))) is not None:
            out[int(entry)] = st
    return out


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _started_by(demo_pid: int, tmp: Path) -> dict[Proc, str]:
    """The demo's descendants, plus processes run from its temp dir (a private PostgreSQL
    daemonises, so its parent is not the demo) and their descendants."""
    table = _table()
    roots = {demo_pid} | {pid for pid in table if str(tmp) in _cmdline(pid)}
    found: set[int] = set()
    frontier = roots
    while frontier:
        found |= frontier
        frontier = {pid for pid, st in table.items() if st[0] in frontier} - found
    found.discard(demo_pid)
    return {(pid, table[pid][2]): _cmdline(pid) for pid in found if pid in table}


def _alive(procs: Iterable[Proc]) -> set[Proc]:
    alive = set()
    for pid, start in procs:
        st = _stat(pid)
        if st is not None and st[2] == start and st[1] != "Z":
            alive.add((pid, start))
    return alive


def _output(log: IO[bytes]) -> str:
    log.seek(0)
    return log.read().decode(errors="replace")


def _wait_output(proc: subprocess.Popen[bytes], log: IO[bytes], pattern: str) -> str:
    """The demo's output once ``pattern`` appears in it."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"demo exited early:\n{_output(log)}"
        if re.search(pattern, text := _output(log)):
            return text
        time.sleep(0.1)
    raise AssertionError(f"no {pattern!r} from the demo in {START_TIMEOUT_S} s:\n{_output(log)}")


def _database(text: str) -> str:
    found = re.search(r"database:? +(callserver_demo_\w+)", text)
    assert found, text
    return found.group(1)


def _wait_started(proc: subprocess.Popen[bytes], log: IO[bytes]) -> tuple[int, str]:
    """The board's port and the demo's database, once the board answers /healthz."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"demo exited early:\n{_output(log)}"
        text = _output(log)
        board = re.search(r"live board:\s+http://127\.0\.0\.1:(\d+)/", text)
        database = re.search(r"database:\s+(callserver_demo_\w+)", text)
        if board and database:
            port = int(board.group(1))
            try:  # answering at all is enough: 503 while pbxsim has not connected yet
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5).close()
            except urllib.error.HTTPError as exc:
                assert exc.code == 503, exc
            return port, database.group(1)
        time.sleep(0.2)
    raise AssertionError(f"demo did not start in {START_TIMEOUT_S} s:\n{_output(log)}")


async def _admin(dsn: str, sql: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        return await conn.fetch(sql)
    finally:
        await conn.close()


def _databases(admin_dsn: str) -> set[str]:
    rows = asyncio.run(_admin(admin_dsn, "SELECT datname FROM pg_database"))
    return {r["datname"] for r in rows}


def _with_db(dsn: str, name: str) -> str:
    return dsn.rpartition("/")[0] + "/" + name


@pytest.fixture
def demo_tmp() -> Iterator[Path]:
    """TMPDIR for the demo, readable by the ``postgres`` user (a private PostgreSQL lives in
    it when the demo runs as root), removed afterwards."""
    path = Path(tempfile.mkdtemp(prefix="cstest-demo-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def other_demo(services: Services) -> Iterator[tuple[str, str]]:
    """A database and a Redis key of another demo run on the same host: must survive."""
    suffix = f"{os.getpid()}_{os.urandom(3).hex()}"
    name, key = f"callserver_demo_{suffix}", f"callserver-demo-{suffix}:calls"
    asyncio.run(_admin(services.pg_dsn, f'CREATE DATABASE "{name}"'))
    asyncio.run(_admin(_with_db(services.pg_dsn, name), "CREATE TABLE mine AS SELECT 42 AS x"))
    client = redis.Redis.from_url(services.redis_url)
    client.set(key, "theirs")
    yield name, key
    client.delete(key)
    client.close()
    asyncio.run(_admin(services.pg_dsn, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _run_demo(
    env: dict[str, str],
    tmp: Path,
    sig: signal.Signals,
    *,
    to_group: bool = False,
    during: str = "",
) -> tuple[str, dict[Proc, str]]:
    """Start the demo, stop it with ``sig``; returns its database and the processes it had
    started (with their command lines). ``to_group``: to its process group, as a terminal does;
    ``during``: as soon as this pattern is in its output (else once the board answers)."""
    env = dict(env, TMPDIR=str(tmp), PYTHONUNBUFFERED="1")
    cmd = [sys.executable, "-m", "devtools.demo", "--port", str(free_port()), "--speed", "30"]
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            if during:
                database = _database(_wait_output(proc, log, during))
            else:
                _, database = _wait_started(proc, log)
            started = _started_by(proc.pid, tmp)
            assert during or len(started) >= 2, "pbxsim and callserver are running"
            if to_group:
                os.killpg(proc.pid, sig)
            else:
                os.kill(proc.pid, sig)
            code = proc.wait(STOP_TIMEOUT_S)
        finally:  # a failed test still lets the demo clean up (a SIGKILL would leak its pg)
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(STOP_TIMEOUT_S)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
        text = _output(log)
    assert code == 128 + sig, text
    assert "everything it started is gone" in text
    return database, started


def _assert_all_gone(started: dict[Proc, str], tmp: Path) -> None:
    deadline = time.monotonic() + 5
    while _alive(started) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = _alive(started)
    assert not left, f"left running: {[started[p] for p in left]}"
    assert list(tmp.iterdir()) == [], f"temporary files left: {list(tmp.iterdir())}"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=["TERM", "HUP"])
def test_a_signal_stops_the_demo_and_drops_only_its_own_database(
    services: Services, demo_tmp: Path, other_demo: tuple[str, str], sig: signal.Signals
) -> None:
    database, started = _run_demo(_shared_env(services), demo_tmp, sig)
    _assert_all_gone(started, demo_tmp)
    _assert_only_its_own_data_gone(services, database, other_demo)


def _assert_only_its_own_data_gone(
    services: Services, database: str, other_demo: tuple[str, str]
) -> None:
    databases = _databases(services.pg_dsn)
    assert database not in databases
    other_db, other_key = other_demo
    assert other_db in databases
    rows = asyncio.run(_admin(_with_db(services.pg_dsn, other_db), "SELECT x FROM mine"))
    assert [r["x"] for r in rows] == [42]
    client = redis.Redis.from_url(services.redis_url)
    try:
        prefix = database.replace("callserver_demo_", "callserver-demo-") + ":"
        assert list(client.scan_iter(match=prefix + "*")) == []
        assert client.get(other_key) == b"theirs"
    finally:
        client.close()


def test_ctrl_c_stops_the_demo_and_its_private_postgres_and_redis(demo_tmp: Path) -> None:
    """SIGINT to the demo's process group, as a terminal's Ctrl-C; private services forced."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLSERVER_TEST_")}
    env["CALLSERVER_PRIVATE_SERVICES"] = "1"
    _, started = _run_demo(env, demo_tmp, signal.SIGINT, to_group=True)
    commands = " ".join(started.values())
    assert "postgres" in commands and "redis-server" in commands, commands
    _assert_all_gone(started, demo_tmp)


def _shared_env(services: Services) -> dict[str, str]:
    env = dict(os.environ)
    env.update(CALLSERVER_TEST_PG_DSN=services.pg_dsn, CALLSERVER_TEST_REDIS_URL=services.redis_url)
    env.pop("CALLSERVER_PRIVATE_SERVICES", None)
    return env


def test_sigterm_while_the_demo_is_still_starting_leaves_nothing_behind(
    services: Services, demo_tmp: Path, other_demo: tuple[str, str]
) -> None:
    """SIGTERM right after the migrations, while the demo CRM is being seeded."""
    database, started = _run_demo(
        _shared_env(services), demo_tmp, signal.SIGTERM, during=r"applied \d+ migration"
    )
    _assert_all_gone(started, demo_tmp)
    _assert_only_its_own_data_gone(services, database, other_demo)
