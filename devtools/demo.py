"""The one-command demo: ``./run demo``.

Uses PostgreSQL and Redis on their default ports if they answer, else private throwaway
instances; creates a database and a Redis key prefix unique to this run
(``callserver_demo_<pid>_<hex>``); starts callserver and pbxsim (scenario ``clinic-day`` at a
speed factor) on free ports; prints the URL to open.

SIGTERM, SIGHUP or SIGINT (Ctrl-C, closing the terminal) stops everything it started: callserver
and pbxsim (each in its own process group, SIGTERM then SIGKILL after ``CHILD_STOP_S``), its
database (dropped: only the one it created in this run), its Redis keys, the private
PostgreSQL/Redis if it started them, and its temporary directory. The children also get SIGTERM
from the kernel if the demo itself is killed with SIGKILL (``PR_SET_PDEATHSIG``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

import asyncpg
import redis

from devtools.services import Services, ensure_services, free_port, port_open

ROOT = Path(__file__).resolve().parent.parent
STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)
CHILD_STOP_S = 8.0
"""Seconds callserver/pbxsim get to exit after SIGTERM before their process group is killed."""
DB_TIMEOUT_S = 10.0
PR_SET_PDEATHSIG = 1


class DemoStopped(BaseException):
    """Raised in the main thread by the handler of SIGTERM/SIGHUP/SIGINT."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    raise DemoStopped(signum)


def _ignore_stop_signals() -> None:
    """While cleaning up, a second signal must not cut the cleanup short (it is bounded)."""
    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the demo dies, even by SIGKILL (Linux only)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)


@dataclass
class DemoRun:
    """Everything one demo run owns, so that ``cleanup`` can undo exactly that."""

    run_id: str = field(default_factory=lambda: f"{os.getpid()}_{secrets.token_hex(3)}")
    svc: Services | None = None
    tmpdir: Path | None = None
    admin_dsn: str = ""
    database: str = ""
    database_created: bool = False
    redis_prefix: str = ""
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def dsn(self) -> str:
        return self.admin_dsn.rpartition("/")[0] + "/" + self.database

    def spawn(self, cmd: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        """Start ``cmd`` in its own process group (a terminal's Ctrl-C reaches only the demo,
        which then stops the children in order)."""
        proc = subprocess.Popen(cmd, env=env, start_new_session=True, preexec_fn=_die_with_parent)
        self.procs.append(proc)
        return proc

    def run_step(self, cmd: list[str], env: dict[str, str]) -> None:
        """Run a set-up command to its end; raises SystemExit when it fails."""
        proc = self.spawn(cmd, env)
        if proc.wait() != 0:
            raise SystemExit(f"demo: {' '.join(cmd[1:4])} failed with code {proc.returncode}")
        self.procs.remove(proc)

    def cleanup(self) -> None:
        """Stop and remove everything this run started (idempotent, bounded in time)."""
        _stop_children(self.procs)
        self.procs.clear()
        if self.database_created:
            _report("database not dropped", _drop_database, self.admin_dsn, self.database)
            self.database_created = False
        if self.redis_prefix and self.svc is not None:
            _report("Redis keys not deleted", _delete_keys, self.svc.redis_url, self.redis_prefix)
            self.redis_prefix = ""
        if self.svc is not None:
            self.svc.stop()
        if self.tmpdir is not None:
            shutil.rmtree(self.tmpdir, ignore_errors=True)
            self.tmpdir = None


def _report(what: str, fn: Callable[[str, str], None], first: str, second: str) -> None:
    try:
        fn(first, second)
    except Exception as exc:  # cleanup goes on with the next resource
        print(f"demo: {what}: {exc!r}", file=sys.stderr)


def _stop_children(procs: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM every child's process group at once, wait up to CHILD_STOP_S, then SIGKILL."""
    for proc in procs:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + CHILD_STOP_S
    for proc in procs:
        try:
            proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            print(f"demo: pid {proc.pid} did not stop in time; killing it", file=sys.stderr)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


async def _admin(admin_dsn: str, sql: str) -> None:
    conn = await asyncpg.connect(admin_dsn, timeout=DB_TIMEOUT_S)
    try:
        await conn.execute(sql, timeout=DB_TIMEOUT_S)
    finally:
        await conn.close(timeout=DB_TIMEOUT_S)


def _create_database(admin_dsn: str, name: str) -> None:
    asyncio.run(_admin(admin_dsn, f'CREATE DATABASE "{name}"'))


def _drop_database(admin_dsn: str, name: str) -> None:
    asyncio.run(_admin(admin_dsn, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _delete_keys(url: str, prefix: str) -> None:
    client = redis.Redis.from_url(url, socket_timeout=DB_TIMEOUT_S)
    try:
        keys = list(client.scan_iter(match=prefix + "*", count=500))
        for i in range(0, len(keys), 500):
            client.delete(*keys[i : i + 500])
    finally:
        client.close()


def _config_text(ports: dict[str, int], run: DemoRun, token: str) -> str:
    assert run.svc is not None
    return f"""
[ami]
host = "127.0.0.1"
port = {ports["ami"]}
username = "callserver"
secret = "callserver"
reconnect_max = 2.0

[ari]
url = "http://127.0.0.1:{ports["ari"]}/ari"
username = "callserver"
password = "callserver"
app = "callserver"

[agi]
host = "127.0.0.1"
port = {ports["agi"]}

[database]
dsn = "{run.dsn}"

[redis]
url = "{run.svc.redis_url}"
prefix = "{run.redis_prefix}"

[http]
host = "127.0.0.1"
port = {ports["http"]}
api_token = "{token}"

[routing]
rules_file = "{ROOT / "devtools" / "demo-rules.toml"}"
"""


def _wait_http(port: int, proc: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"demo: callserver exited with code {proc.returncode}; see above")
        if port_open("127.0.0.1", port):
            return
        time.sleep(0.2)
    raise SystemExit("demo: callserver did not start listening in time")


def _pbxsim_cmd(args: argparse.Namespace, ports: dict[str, int]) -> list[str]:
    return [
        sys.executable, "-m", "pbxsim", "--scenario", args.scenario, "--speed", str(args.speed),
        "--ami", f"127.0.0.1:{ports['ami']}", "--ari", f"127.0.0.1:{ports['ari']}",
        "--agi", f"127.0.0.1:{ports['agi']}", "--wait-for-ami",
    ]  # fmt: skip


def _banner(args: argparse.Namespace, run: DemoRun, port: int, token: str) -> None:
    url = f"http://127.0.0.1:{port}/#token={token}"
    pids = " ".join(str(p.pid) for p in run.procs)
    print("\n" + "=" * 72)
    print(f" callserver demo is running (pbxsim '{args.scenario}' at {args.speed:g}x speed)")
    print(f"   live board:  {url}")
    print(f"   API token:   {token}   (curl -H 'Authorization: Bearer {token}' ...)")
    print(f"   calls API:   http://127.0.0.1:{port}/api/calls")
    print(f"   health:      http://127.0.0.1:{port}/healthz")
    print(f"   metrics:     http://127.0.0.1:{port}/metrics")
    print(f"   database:    {run.database} (dropped when the demo stops)")
    print(f"   processes:   demo {os.getpid()}, pbxsim + callserver {pids}")
    print(" Ctrl-C (or SIGTERM/SIGHUP) stops everything the demo started.")
    print("=" * 72 + "\n", flush=True)


def _start(args: argparse.Namespace, run: DemoRun) -> None:
    """Services, database, config, migrations, demo data, pbxsim and callserver."""
    run.tmpdir = Path(tempfile.mkdtemp(prefix="callserver-demo-"))
    run.svc = ensure_services()
    run.admin_dsn = run.svc.pg_dsn
    run.database = f"callserver_demo_{run.run_id}"
    _create_database(run.admin_dsn, run.database)
    run.database_created = True
    print(f"demo: database {run.database} created (dropped when the demo stops)", flush=True)
    run.redis_prefix = f"callserver-demo-{run.run_id}:"
    http_port = args.port if not port_open("127.0.0.1", args.port) else free_port()
    ports = {"ami": free_port(), "ari": free_port(), "agi": free_port(), "http": http_port}
    token = secrets.token_urlsafe(16)
    conf = run.tmpdir / "callserver.toml"
    conf.write_text(_config_text(ports, run, token))
    py = sys.executable
    env = dict(os.environ, PYTHONUNBUFFERED="1", TMPDIR=str(run.tmpdir))
    run.run_step([py, "-m", "callserver", "migrate", "--config", str(conf)], env)
    run.run_step([py, "-m", "crm_bridge", "seed-demo", "--dsn", run.dsn], env)
    run.spawn(_pbxsim_cmd(args, ports), env)
    server = run.spawn([py, "-m", "callserver", "run", "--config", str(conf)], env)
    _wait_http(ports["http"], server)
    _banner(args, run, http_port, token)


def main(argv: list[str] | None = None) -> int:
    """Run the demo until a stop signal or a child's exit. Returns the exit status:
    128 + the signal number when stopped by one, 0 when pbxsim's scenario ended, else 1."""
    parser = argparse.ArgumentParser(prog="./run demo")
    parser.add_argument("--speed", type=float, default=30.0, help="pbxsim speed factor")
    parser.add_argument("--port", type=int, default=8080, help="HTTP port of the board")
    parser.add_argument("--scenario", default="clinic-day")
    args = parser.parse_args(argv)
    for sig in STOP_SIGNALS:
        signal.signal(sig, _raise_stop)
    run = DemoRun()
    status = 1
    try:
        _start(args, run)
        while all(p.poll() is None for p in run.procs):
            time.sleep(0.5)
        codes = [p.returncode for p in run.procs if p.returncode is not None]
        print(f"demo: a process exited ({codes}); stopping the rest", file=sys.stderr)
        status = 0 if codes == [0] else 1  # pbxsim's scenario ended: not an error
    except DemoStopped as stop:
        print(f"\ndemo: {signal.Signals(stop.signum).name}, stopping…", file=sys.stderr)
        status = 128 + stop.signum
    finally:
        _ignore_stop_signals()
        run.cleanup()
    print("demo: stopped, everything it started is gone", file=sys.stderr, flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
