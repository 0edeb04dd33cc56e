"""The ground-truth fault harness: pbxsim traffic through callserver while things break.

callserver runs as its own process (so it can be ``kill -9``-ed and restarted) with PostgreSQL,
Redis, AMI and ARI reached through TCP proxies the harness cuts, and a REST CRM (``FakeCrm``)
the harness takes down. pbxsim (own process) writes its ledger. Afterwards every call is
reconciled (``devtools.reconcile``) against PostgreSQL, the CRM and Redis.

``run_chaos(plan)`` is used by ``bench/chaos.py`` (≥ 5 minutes, every fault) and by the test
suite's short form.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import asyncpg

from devtools.fake_crm import FakeCrm
from devtools.reconcile import Report, read_ledger, reconcile
from devtools.services import Services, free_port, port_open
from devtools.tcp_proxy import TcpProxy

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Fault:
    at: float
    """Seconds after the traffic starts."""
    kind: str
    """``ami``, ``ari``, ``postgres``, ``redis``, ``crm`` (down for ``seconds``), ``kill``
    (``kill -9``, restarted after ``seconds``)."""
    seconds: float


@dataclass(frozen=True)
class Plan:
    rate: float
    """Calls per second of the base traffic."""
    seconds: float
    """How long pbxsim generates calls."""
    faults: tuple[Fault, ...]
    bursts: tuple[tuple[float, float, float], ...] = ()
    """Extra traffic ``(start_s, seconds, calls_per_s)``."""
    drain_timeout: float = 180.0


@dataclass
class Outcome:
    report: Report
    faults: int
    rss_max_mb: float
    crm_redelivered: int
    log: list[str] = field(default_factory=list)


@dataclass
class _Stack:
    svc: Services
    tmp: Path
    db: str
    dsn: str
    ports: dict[str, int]
    proxies: dict[str, TcpProxy]
    crm: FakeCrm
    ledger: Path
    conf: Path
    prefix: str
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    rss_max: float = 0.0


def _config(st: _Stack) -> str:
    p = st.ports
    pg = st.dsn.replace(st.dsn.split("@", 1)[1].split("/", 1)[0],
                        f"127.0.0.1:{st.proxies['postgres'].port}")  # fmt: skip
    return f"""
[ami]
port = {st.proxies["ami"].port}
secret = "callserver"
reconnect_max = 2.0
[ari]
url = "http://127.0.0.1:{st.proxies["ari"].port}/ari"
password = "callserver"
reconnect_max = 2.0
[agi]
port = {p["agi"]}
[database]
dsn = "{pg}"
# Asterisk's cdr/queue_log: pbxsim --cdr-dsn writes them into this same database (a clinic
# points cdr_dsn at the database cdr_pgsql and the realtime queue_log write)
cdr_dsn = "{pg}"
catchup_interval = 5.0
[redis]
url = "redis://127.0.0.1:{st.proxies["redis"].port}/0"
prefix = "{st.prefix}"
[http]
port = {p["http"]}
api_token = "chaos"
[routing]
rules_file = "{ROOT / "devtools" / "demo-rules.toml"}"
[crm]
backend = "rest"
lookup_url_template = "http://127.0.0.1:{st.crm.port}/lookup?phone={{phone}}"
webhook_url = "http://127.0.0.1:{st.crm.port}/webhook"
hmac_secret = "chaos"
outbox_backoff_base = 0.5
outbox_backoff_max = 10.0
outbox_max_attempts = 100
"""


async def _setup(svc: Services) -> _Stack:
    tmp = Path(tempfile.mkdtemp(prefix="callserver-chaos-"))
    db = f"chaos_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    conn = await asyncpg.connect(svc.pg_dsn)
    await conn.execute(f'CREATE DATABASE "{db}"')
    await conn.close()
    dsn = svc.pg_dsn.rpartition("/")[0] + "/" + db
    ports = {k: free_port() for k in ("ami", "ari", "agi", "http")}
    pg_host, pg_port = svc.pg_dsn.split("@", 1)[1].split("/", 1)[0].rsplit(":", 1)
    redis_host, redis_port = svc.redis_url.split("//", 1)[1].split("/", 1)[0].rsplit(":", 1)
    proxies = {
        "postgres": TcpProxy(pg_host, int(pg_port)),
        "redis": TcpProxy(redis_host, int(redis_port)),
        "ami": TcpProxy("127.0.0.1", ports["ami"]),
        "ari": TcpProxy("127.0.0.1", ports["ari"]),
    }
    for proxy in proxies.values():
        await proxy.restore()
    crm = FakeCrm()
    await crm.start()
    st = _Stack(svc, tmp, db, dsn, ports, proxies, crm, tmp / "ledger.jsonl",
                tmp / "callserver.toml", f"chaos:{uuid.uuid4().hex[:8]}:")  # fmt: skip
    st.conf.write_text(_config(st))
    migrate = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "callserver", "migrate", "--config", str(st.conf),
        stdout=asyncio.subprocess.DEVNULL, cwd=ROOT,
    )  # fmt: skip
    if await migrate.wait() != 0:
        raise RuntimeError("callserver migrate failed")
    return st


def _start_callserver(st: _Stack) -> None:
    with (st.tmp / "callserver.log").open("ab") as log:  # the child keeps its own copy
        st.procs["callserver"] = subprocess.Popen(
            [sys.executable, "-m", "callserver", "--log-level", "WARNING", "run", "--config",
             str(st.conf)], stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
        )  # fmt: skip


def _start_pbxsim(st: _Stack, plan: Plan) -> None:
    bursts = [a for b in plan.bursts for a in ("--burst", ":".join(str(x) for x in b))]
    with (st.tmp / "pbxsim.log").open("ab") as log:
        _popen_pbxsim(st, plan, bursts, log)


def _popen_pbxsim(st: _Stack, plan: Plan, bursts: list[str], log: IO[bytes]) -> None:
    p = st.ports
    st.procs["pbxsim"] = subprocess.Popen(
        [sys.executable, "-m", "pbxsim", "--scenario", "load", "--rate", str(plan.rate),
         "--duration", str(plan.seconds), *bursts, "--speed", "1", "--ledger", str(st.ledger),
         "--cdr-dsn", st.dsn,
         "--ami", f"127.0.0.1:{p['ami']}", "--ari", f"127.0.0.1:{p['ari']}",
         "--agi", f"127.0.0.1:{p['agi']}", "--wait-for-ami", "--keep-running",
         "--log-level", "WARNING"], stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
    )  # fmt: skip


async def _wait_port(port: int, proc: subprocess.Popen[bytes], within: float = 60) -> None:
    deadline = time.monotonic() + within
    while not port_open("127.0.0.1", port):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"process {proc.pid} did not start listening on {port}")
        await asyncio.sleep(0.2)


async def _inject(st: _Stack, fault: Fault, log: Callable[[str], None]) -> None:
    log(f"fault {fault.kind} for {fault.seconds:g} s")
    if fault.kind == "kill":
        st.procs["callserver"].send_signal(signal.SIGKILL)
        st.procs["callserver"].wait()
        await asyncio.sleep(fault.seconds)
        _start_callserver(st)
        await _wait_port(st.ports["http"], st.procs["callserver"])
    elif fault.kind == "crm":
        st.crm.down = True
        await asyncio.sleep(fault.seconds)
        st.crm.down = False
    else:
        proxy = st.proxies[fault.kind]
        await proxy.cut()
        await asyncio.sleep(fault.seconds)
        await proxy.restore()
    log(f"fault {fault.kind} over")


def _rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


async def _watch_rss(st: _Stack, stop: asyncio.Event) -> None:
    while not stop.is_set():
        proc = st.procs.get("callserver")
        if proc is not None:
            st.rss_max = max(st.rss_max, _rss_mb(proc.pid))
        await asyncio.sleep(1.0)


async def _drained(st: _Stack, within: float) -> None:
    """Wait (at most ``within`` seconds) until pbxsim's calls all ended in PostgreSQL and the
    outbox delivered everything."""
    deadline = time.monotonic() + within
    conn = await asyncpg.connect(st.dsn)
    try:
        while time.monotonic() < deadline:
            calls = read_ledger(st.ledger) if st.ledger.exists() else []
            open_rows = await conn.fetchval("SELECT count(*) FROM calls WHERE ended_at IS NULL")
            pending = await conn.fetchval(
                "SELECT count(*) FROM crm_outbox WHERE status IN ('pending', 'delivering')")
            if calls and open_rows == 0 and pending == 0:
                return
            await asyncio.sleep(1.0)
    finally:
        await conn.close()


async def run_chaos(plan: Plan, svc: Services, log: Callable[[str], None] = print) -> Outcome:
    st = await _setup(svc)
    stop = asyncio.Event()
    watcher = asyncio.create_task(_watch_rss(st, stop))
    try:
        _start_pbxsim(st, plan)
        await _wait_port(st.ports["ami"], st.procs["pbxsim"])
        _start_callserver(st)
        await _wait_port(st.ports["http"], st.procs["callserver"])
        t0 = time.monotonic()
        for fault in sorted(plan.faults, key=lambda f: f.at):
            await asyncio.sleep(max(0.0, t0 + fault.at - time.monotonic()))
            await _inject(st, fault, log)
        await asyncio.sleep(max(0.0, t0 + plan.seconds + 15 - time.monotonic()))
        log("traffic over; waiting for callserver to catch up")
        await _drained(st, plan.drain_timeout)
        report = await _reconcile(st)
        redelivered = sum(n - 1 for n in st.crm.deliveries.values() if n > 1)
        return Outcome(report, len(plan.faults), st.rss_max, redelivered)
    finally:
        stop.set()
        await watcher
        await _teardown(st)


async def _reconcile(st: _Stack) -> Report:
    ledger = read_ledger(st.ledger)
    report = await reconcile(ledger, st.dsn, redis_url=st.svc.redis_url, redis_prefix=st.prefix)
    # the REST CRM is the truth for the CRM: every call's record arrived, once
    report.crm_missing = [str(c["linkedid"]) for c in ledger
                          if not st.crm.records.get(str(c["linkedid"]))]  # fmt: skip
    report.crm_duplicated = [cid for cid, keys in st.crm.records.items() if len(keys) > 1]
    return report


async def _teardown(st: _Stack) -> None:
    for name in ("callserver", "pbxsim"):
        proc = st.procs.get(name)
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    for proxy in st.proxies.values():
        await _quietly(proxy.cut)
    await st.crm.aclose()
    if not os.environ.get("CHAOS_KEEP_LOGS"):
        shutil.rmtree(st.tmp, ignore_errors=True)
    if os.environ.get("CHAOS_KEEP_DB"):
        print(f"chaos: database {st.db} kept")
        return
    conn = await asyncpg.connect(st.svc.pg_dsn)
    await conn.execute(f'DROP DATABASE IF EXISTS "{st.db}" WITH (FORCE)')
    await conn.close()


async def _quietly(step: Callable[[], Awaitable[None]]) -> None:
    with contextlib.suppress(OSError, AssertionError, RuntimeError):
        await step()
