"""FastAGI route decisions on the production path, wall-clock, beside panoramisk.

The server process is callserver itself (``CallServer`` with its default plugins; AMI and ARI
off): the production FastAGI ``route`` handler (``routing.agi_handler.make_route_handler``:
every ``ROUTE_*`` variable), the real CRM lookup (embedded CRM in PostgreSQL with 10,000
patients, through the Redis cache; about half the callers are known), the live model, the
demo rules (open around the clock) and the real decision log (``route_decisions`` in
PostgreSQL). The peer, panoramisk 1.4's FastAGI ``Application``, serves the same production
handler of the same server (an adapter gives it the session's environment and
``set_variable``), so both do identical work per call.

Clients (one process, pinned to CPU 1): Asterisk-like FastAGI peers over real TCP sockets sending
the full agi_* environment and answering every command ``200 result=1``. Open-loop arrivals at
100, 500 and 1,000 calls/s (latency from the scheduled start to the server's close), then a
closed loop (64 concurrent sessions) for the maximum sustained calls/s, wall-clock. The server's
CPU-seconds per call are printed above the last line, named as such.

Usage: .venv/bin/python bench/route.py [--seconds 3]
Last line: ``route p99_ms_at_500=… wall_calls_per_s=… panoramisk_wall_calls_per_s=… ratio=…``
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import multiprocessing as mp
import os
import random
import resource
import statistics
import sys
import time
import uuid
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import asyncpg
import redis.asyncio as aioredis

from bench.crm_lookup import load, mobile
from devtools.services import ensure_services

RULES = Path(__file__).resolve().parents[1] / "devtools" / "demo-rules.toml"
RATES = (100, 500, 1000)
CONCURRENCY = 64
PATIENTS = 10_000
DIDS = ("74951234567", "74957654321", "74959990000")


def _pin(cpu: int) -> None:
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {cpu})


def _env(i: int) -> bytes:
    rnd = random.Random(i)
    n = rnd.randrange(1, 2 * PATIENTS)  # about half are known patients
    caller = mobile(n).lstrip("+") if n <= PATIENTS else f"7903{n:07d}"
    did = rnd.choice(DIDS)
    env = {
        "agi_network": "yes", "agi_network_script": "route",
        "agi_request": "agi://127.0.0.1:4573/route", "agi_channel": f"PJSIP/trunk-{i:08x}",
        "agi_language": "en", "agi_type": "PJSIP", "agi_uniqueid": f"{os.getpid()}.{i}",
        "agi_version": "22.10.1", "agi_callerid": caller, "agi_calleridname": caller,
        "agi_callingpres": "0", "agi_callingani2": "0", "agi_callington": "0",
        "agi_callingtns": "0", "agi_dnid": did, "agi_rdnis": "unknown",
        "agi_context": "route-inbound", "agi_extension": did, "agi_priority": "5",
        "agi_enhanced": "0.0", "agi_accountcode": "", "agi_threadid": "140300078802624",
        "agi_arg_1": did, "agi_arg_2": "source-a", "agi_arg_3": "",
        "agi_arg_4": rnd.choice(("", "", "1", "2", "5")),
    }  # fmt: skip
    return ("".join(f"{k}: {v}\n" for k, v in env.items()) + "\n").encode()


# ---------------------------------------------------------------------------- server side


def _config(setup: dict[str, Any], agi_port: int) -> Any:
    from callserver.config import load_config

    return load_config(None, env={
        "CALLSERVER_AMI_ENABLED": "false",
        "CALLSERVER_ARI_ENABLED": "false",
        "CALLSERVER_AGI_ENABLED": "true" if agi_port else "false",
        "CALLSERVER_AGI_PORT": str(agi_port),
        "CALLSERVER_DATABASE_DSN": setup["dsn"],
        "CALLSERVER_REDIS_URL": setup["redis_url"],
        "CALLSERVER_REDIS_PREFIX": setup["prefix"],
        "CALLSERVER_HTTP_PORT": str(setup["http_port"]),
        "CALLSERVER_HTTP_API_TOKEN": "bench",
        "CALLSERVER_ROUTING_RULES_FILE": str(RULES),
    })  # fmt: skip


class _PanoramiskSession:
    """What the production handler needs of an ``AgiSession``, over a panoramisk request."""

    def __init__(self, request: Any) -> None:
        from callserver.asterisk.agi_codec import build_environment

        self._request = request
        self.env = build_environment(request.headers)

    async def set_variable(self, name: str, value: str) -> None:
        from callserver.asterisk.agi_codec import quote_arg

        await self._request.send_command(f"SET VARIABLE {name} {quote_arg(value)}")


async def _panoramisk(handler: Any) -> tuple[int, Any]:
    from panoramisk.fast_agi import Application

    async def route(request: Any) -> None:
        await handler(_PanoramiskSession(request))

    app = Application()
    app.add_route("route", route)
    srv = await asyncio.start_server(app.handler, "127.0.0.1", 0)

    async def close() -> None:
        srv.close()

    return srv.sockets[0].getsockname()[1], close


async def _serve(kind: str, setup: dict[str, Any], conn: Connection) -> None:
    from callserver.app import CallServer

    agi_port = setup["agi_port"] if kind == "ours" else 0
    server = await CallServer.create(_config(setup, agi_port))
    await server.start()
    async with asyncio.timeout(60):
        await server.database.ready.wait()
    await asyncio.sleep(0.5)  # the plugins' after-database components start
    if kind == "ours":
        port, closer = agi_port, None
    else:
        (handler,) = [c.agi_handlers["route"] for c in server.contributions
                      if "route" in c.agi_handlers]
        port, closer = await _panoramisk(handler)
    conn.send(port)
    await asyncio.get_running_loop().run_in_executor(None, _control, conn)
    if closer is not None:
        await closer()
    await server.aclose()


def _control(conn: Connection) -> None:
    """Answer ``cpu`` with this process's CPU seconds (user + system) until ``stop``."""
    while conn.recv() != "stop":
        usage = resource.getrusage(resource.RUSAGE_SELF)
        conn.send(usage.ru_utime + usage.ru_stime)


def server_main(kind: str, setup: dict[str, Any], conn: Connection) -> None:
    _pin(0)
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(_serve(kind, setup, conn))


# ---------------------------------------------------------------------------- client side


class _Peer(asyncio.Protocol):
    """One Asterisk-like session: send the environment, answer each command line, time it."""

    def __init__(self, env: bytes, done: asyncio.Future[tuple[float, int]], t0: float) -> None:
        self.env, self.done, self.t0 = env, done, t0
        self.buf = b""
        self.commands = 0
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(self.env)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        n = self.buf.count(b"\n")
        if n:
            self.buf = self.buf[self.buf.rfind(b"\n") + 1 :]
            self.commands += n
            assert self.transport is not None
            self.transport.write(b"200 result=1\n" * n)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result((time.perf_counter() - self.t0, self.commands))


async def _one(port: int, env: bytes, t0: float) -> tuple[float, int]:
    loop = asyncio.get_running_loop()
    done: asyncio.Future[tuple[float, int]] = loop.create_future()
    await loop.create_connection(lambda: _Peer(env, done, t0), "127.0.0.1", port)
    async with asyncio.timeout(10):
        return await done


async def _open_loop(port: int, rate: int, seconds: float, envs: list[bytes]) -> dict[str, float]:
    start = time.perf_counter() + 0.05
    n = int(rate * seconds)

    async def at(i: int) -> tuple[float, int]:
        t = start + i / rate
        await asyncio.sleep(max(0.0, t - time.perf_counter()))
        return await _one(port, envs[i % len(envs)], t)

    results = await asyncio.gather(*(at(i) for i in range(n)), return_exceptions=True)
    ok = [r for r in results if isinstance(r, tuple)]
    lat = sorted(r[0] * 1000 for r in ok)
    return {
        "rate": rate, "calls": n, "failed": n - len(ok),
        "p50_ms": statistics.median(lat), "p99_ms": lat[int(len(lat) * 0.99) - 1],
        "commands_per_call": sum(r[1] for r in ok) / max(1, len(ok)),
    }  # fmt: skip


async def _closed_loop(port: int, seconds: float, envs: list[bytes]) -> dict[str, float]:
    stop = time.perf_counter() + seconds
    lat: list[float] = []
    failed = 0

    async def worker(w: int) -> None:
        nonlocal failed
        i = w
        while time.perf_counter() < stop:
            try:
                r = await _one(port, envs[i % len(envs)], time.perf_counter())
                lat.append(r[0] * 1000)
            except (OSError, TimeoutError):
                failed += 1
            i += CONCURRENCY

    t0 = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(CONCURRENCY)))
    elapsed = time.perf_counter() - t0
    lat.sort()
    return {"calls_per_s": len(lat) / elapsed, "calls": len(lat), "failed": failed,
            "seconds": elapsed,
            "p99_ms": lat[int(len(lat) * 0.99) - 1]}  # fmt: skip


async def _client(port: int, seconds: float, phase: str) -> Any:
    envs = [_env(i) for i in range(30_000)]  # a unique uniqueid per call, as Asterisk
    if phase == "max":
        return await _closed_loop(port, seconds, envs)
    await _open_loop(port, 200, 0.5, envs)  # warm-up
    return [await _open_loop(port, r, seconds, envs) for r in RATES]


def client_main(port: int, seconds: float, phase: str, conn: Connection) -> None:
    _pin(1)
    result = asyncio.run(_client(port, seconds, phase))
    if phase == "max":
        usage = resource.getrusage(resource.RUSAGE_SELF)
        result["client_cpu_s"] = usage.ru_utime + usage.ru_stime
    conn.send(result)


def _client_run(ctx: Any, port: int, seconds: float, phase: str) -> Any:
    parent, child = ctx.Pipe()
    client = ctx.Process(target=client_main, args=(port, seconds, phase, child))
    client.start()
    result = parent.recv()
    client.join()
    return result


def run(kind: str, seconds: float, setup: dict[str, Any]) -> dict[str, Any]:
    """One server process; open-loop rates, then the closed loop with the server's CPU time
    measured around it (calls per server CPU-second: capacity of one core, robust against
    other processes competing for the core)."""
    ctx = mp.get_context("spawn")
    srv_parent, srv_child = ctx.Pipe()
    server = ctx.Process(target=server_main, args=(kind, setup, srv_child))
    server.start()
    port = srv_parent.recv()
    rates = _client_run(ctx, port, seconds, "rates")
    srv_parent.send("cpu")
    cpu0 = srv_parent.recv()
    best = _client_run(ctx, port, seconds, "max")
    srv_parent.send("cpu")
    best["calls_per_cpu_s"] = best["calls"] / max(1e-9, srv_parent.recv() - cpu0)
    srv_parent.send("stop")
    server.join(10)
    return {"rates": rates, "max": best}


KINDS = ("ours", "panoramisk")


def _listen_overflows() -> int:
    """TcpExt ListenOverflows (SYNs dropped because an accept queue was full; each costs the
    caller a 1 s SYN retransmission), or -1 where /proc/net/netstat is missing."""
    try:
        lines = Path("/proc/net/netstat").read_text().splitlines()
    except OSError:
        return -1
    for names, values in zip(lines[::2], lines[1::2], strict=False):
        if names.startswith("TcpExt:"):
            table = dict(zip(names.split()[1:], values.split()[1:], strict=True))
            return int(table.get("ListenOverflows", "0"))
    return -1


async def _prepare(patients: int) -> dict[str, Any]:
    """A throwaway database migrated by callserver itself, the CRM loaded with ``patients``."""
    from callserver.config import load_config
    from callserver.plugins import load_plugins, migration_sources
    from callserver.store.migrate import apply_migrations, core_sources
    from devtools.services import free_port

    svc = ensure_services()
    db = f"route_bench_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = await asyncpg.connect(svc.pg_dsn)
    await admin.execute(f'CREATE DATABASE "{db}"')
    await admin.close()
    dsn = svc.pg_dsn.rpartition("/")[0] + "/" + db
    sources = [*core_sources(), *migration_sources(load_plugins(load_config(env={})))]
    conn = await asyncpg.connect(dsn)
    await apply_migrations(conn, sources)
    await load(conn, patients)
    await conn.close()
    return {"dsn": dsn, "db": db, "admin_dsn": svc.pg_dsn, "redis_url": svc.redis_url,
            "prefix": f"route_bench:{uuid.uuid4().hex[:8]}:", "agi_port": free_port(),
            "http_port": free_port(), "services": svc}  # fmt: skip


async def _cleanup(setup: dict[str, Any]) -> int:
    conn = await asyncpg.connect(setup["dsn"])
    decisions = int(await conn.fetchval("SELECT count(*) FROM route_decisions"))
    await conn.close()
    admin = await asyncpg.connect(setup["admin_dsn"])
    await admin.execute(f'DROP DATABASE IF EXISTS "{setup["db"]}" WITH (FORCE)')
    await admin.close()
    redis = aioredis.from_url(setup["redis_url"])
    keys = [k async for k in redis.scan_iter(match=setup["prefix"] + "*", count=1000)]
    if keys:
        await redis.delete(*keys)
    await redis.aclose()
    return decisions


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=3.0, help="duration of each load step")
    args = ap.parse_args()
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs; server on CPU 0, "
          f"clients on CPU 1; {args.seconds:.0f} s per step; load average "
          f"{os.getloadavg()[0]:.2f} before the run")  # fmt: skip
    setup = asyncio.run(_prepare(PATIENTS))
    services = setup.pop("services")
    results = {}
    try:
        for kind in KINDS:
            overflows = _listen_overflows()
            res = results[kind] = run(kind, args.seconds, setup)
            _report(kind, res, _listen_overflows() - overflows)
    finally:
        decisions = asyncio.run(_cleanup(setup))
        services.stop()
    print(f"decision log: {decisions} route decisions in PostgreSQL (both servers, all steps)")
    ours = results["ours"]
    p99_500 = next(r["p99_ms"] for r in ours["rates"] if r["rate"] == 500)
    cpu = {k: 1e6 / v["max"]["calls_per_cpu_s"] for k, v in results.items()}
    print(f"server CPU per call (CPU-seconds, not wall-clock): ours {cpu['ours']:.0f} us, "
          f"panoramisk {cpu['panoramisk']:.0f} us")  # fmt: skip
    wall = {k: v["max"]["calls_per_s"] for k, v in results.items()}
    print(f"route p99_ms_at_500={p99_500:.2f} wall_calls_per_s={wall['ours']:.0f} "
          f"panoramisk_wall_calls_per_s={wall['panoramisk']:.0f} "
          f"ratio={wall['ours'] / wall['panoramisk']:.2f}")  # fmt: skip


def _report(kind: str, res: dict[str, Any], overflows: int) -> None:
    for r in res["rates"]:
        print(f"{kind:11} {r['rate']:5d} calls/s  p50 {r['p50_ms']:6.2f} ms  p99 "
              f"{r['p99_ms']:7.2f} ms  failed {r['failed']:.0f}  "
              f"commands/call {r['commands_per_call']:.1f}")  # fmt: skip
    m = res["max"]
    print(f"{kind:11}   max {m['calls_per_s']:7.0f} calls/s wall-clock (closed loop, "
          f"{CONCURRENCY} sessions)  p99 {m['p99_ms']:.2f} ms  failed {m['failed']:.0f}  "
          f"listen-queue overflows {overflows}")  # fmt: skip
    print(f"{kind:11}   server CPU: {m['calls_per_cpu_s']:.0f} calls per CPU-second; busy: "
          f"server {100 * m['calls_per_s'] / m['calls_per_cpu_s']:.0f}%, client "
          f"{100 * m['client_cpu_s'] / m['seconds']:.0f}% of a core")  # fmt: skip


if __name__ == "__main__":
    main()
