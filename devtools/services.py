"""PostgreSQL and Redis for the demo and the tests.

Uses the servers on their default ports (127.0.0.1:5432, 127.0.0.1:6379) when they answer;
otherwise starts private throwaway instances on free ports under a temporary directory and stops
them when the process exits. Works as root (PostgreSQL refuses to run as root, so its private
instance runs as the ``postgres`` system user when there is one).

Run ``python -m devtools.services`` to print the DSN and URL it would use (and keep any private
instance alive until Ctrl-C).
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field

DEFAULT_PG_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


class ServiceError(RuntimeError):
    """A service could neither be reached nor started."""


@dataclass
class Services:
    """Where PostgreSQL and Redis answer, and the private processes started for them."""

    pg_dsn: str
    redis_url: str
    _procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    _cleanups: list[list[str]] = field(default_factory=list)
    _tmpdirs: list[str] = field(default_factory=list)

    def stop(self) -> None:
        """Stop every private instance this object started and remove its directories
        (idempotent; PostgreSQL gets up to 30 s for a fast shutdown, Redis 5 s)."""
        for cmd in self._cleanups:
            with contextlib.suppress(subprocess.TimeoutExpired):
                subprocess.run(cmd, capture_output=True, check=False, timeout=30)
        self._cleanups.clear()
        for proc in self._procs:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(5)
                except subprocess.TimeoutExpired:
                    proc.kill()
        self._procs.clear()
        for d in self._tmpdirs:
            shutil.rmtree(d, ignore_errors=True)
        self._tmpdirs.clear()


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    """True when a TCP connect to host:port succeeds within ``timeout`` seconds."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _wait_port(port: int, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if port_open("127.0.0.1", port):
            return
        time.sleep(0.1)
    raise ServiceError(f"{what} did not start listening on 127.0.0.1:{port} in {timeout:.0f} s")


def _pg_bindir() -> str:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return os.path.dirname(found[-1])
    initdb = shutil.which("initdb")
    if initdb:
        return os.path.dirname(initdb)
    raise ServiceError(
        "PostgreSQL is not answering on 127.0.0.1:5432 and is not installed "
        "(apt-get install postgresql)"
    )


def _start_postgres(svc: Services) -> str:
    bindir = _pg_bindir()
    tmp = tempfile.mkdtemp(prefix="callserver-pg-")
    svc._tmpdirs.append(tmp)
    prefix: list[str] = []
    if os.geteuid() == 0:
        try:
            pw = pwd.getpwnam("postgres")
        except KeyError as exc:
            raise ServiceError("running as root needs a 'postgres' system user") from exc
        os.chown(tmp, pw.pw_uid, pw.pw_gid)
        os.chmod(tmp, 0o700)
        prefix = ["runuser", "-u", "postgres", "--"]
    data = os.path.join(tmp, "data")
    subprocess.run(
        [*prefix, f"{bindir}/initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8"],
        check=True,
        capture_output=True,
    )
    port = free_port()
    opts = f"-p {port} -k {tmp} -c listen_addresses=127.0.0.1 -c fsync=off"
    # registered before the start: a signal while pg_ctl waits may leave the server running
    svc._cleanups.append([*prefix, f"{bindir}/pg_ctl", "-D", data, "-m", "fast", "-w", "stop"])
    subprocess.run(
        [*prefix, f"{bindir}/pg_ctl", "-D", data, "-o", opts, "-l", f"{tmp}/log", "-w", "start"],
        check=True,
        capture_output=True,
        start_new_session=True,
    )
    _wait_port(port, "private PostgreSQL")
    return f"postgresql://postgres@127.0.0.1:{port}/postgres"


def _start_redis(svc: Services) -> str:
    exe = shutil.which("redis-server") or "/usr/bin/redis-server"
    if not os.path.exists(exe):
        raise ServiceError(
            "Redis is not answering on 127.0.0.1:6379 and is not installed "
            "(apt-get install redis-server)"
        )
    port = free_port()
    tmp = tempfile.mkdtemp(prefix="callserver-redis-")
    svc._tmpdirs.append(tmp)
    proc = subprocess.Popen(
        [
            exe,
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            tmp,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # a terminal's Ctrl-C reaches the owner, which stops it in order
    )
    svc._procs.append(proc)
    _wait_port(port, "private Redis")
    return f"redis://127.0.0.1:{port}/0"


def ensure_services(*, prefer_default: bool = True) -> Services:
    """Return reachable PostgreSQL and Redis, starting private ones where needed.

    ``CALLSERVER_TEST_PG_DSN`` / ``CALLSERVER_TEST_REDIS_URL`` force given servers;
    ``CALLSERVER_PRIVATE_SERVICES=1`` forces private instances even when the default ports answer
    (what a fresh machine sees). Private instances are stopped at interpreter exit. Raises
    ServiceError when neither works.
    """
    if os.environ.get("CALLSERVER_PRIVATE_SERVICES", "") not in ("", "0"):
        prefer_default = False
    svc = Services(pg_dsn="", redis_url="")
    atexit.register(svc.stop)
    forced_pg = os.environ.get("CALLSERVER_TEST_PG_DSN")
    forced_redis = os.environ.get("CALLSERVER_TEST_REDIS_URL")
    if forced_pg:
        svc.pg_dsn = forced_pg
    elif prefer_default and port_open("127.0.0.1", 5432):
        svc.pg_dsn = DEFAULT_PG_DSN
    else:
        svc.pg_dsn = _start_postgres(svc)
    if forced_redis:
        svc.redis_url = forced_redis
    elif prefer_default and port_open("127.0.0.1", 6379):
        svc.redis_url = DEFAULT_REDIS_URL
    else:
        svc.redis_url = _start_redis(svc)
    return svc


def main() -> None:
    svc = ensure_services()
    print(f"postgres {svc.pg_dsn}")
    print(f"redis    {svc.redis_url}", flush=True)
    if svc._procs or svc._cleanups:
        with contextlib.suppress(KeyboardInterrupt):
            signal.pause()
    svc.stop()


if __name__ == "__main__":
    main()
