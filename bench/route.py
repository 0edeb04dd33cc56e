"""FastAGI route decision benchmark: connect → environment → lookup → rules → SET VARIABLE → close.

Servers (one process each, pinned to CPU 0), all making the real routing decision (RouteRequest
from the environment, CRM lookup through an in-memory PatientDirectory of 10,000 patients, live
state, the example rules, call tracking record):
  ours             callserver's FastAgiServer; the decision's queue, priority and mode set with
                   3 SET VARIABLE round trips (the issue's workload; the last line's figures)
  panoramisk       panoramisk 1.4 FastAGI ``Application`` with the equivalent async route
  ours-full        routing's production ``route`` handler: every ROUTE_* variable it sets
                   (6-9 SET VARIABLE round trips depending on the call, 7.4 on this mix)
  panoramisk-full  panoramisk with the same decision and the same commands
Clients (one process, pinned to CPU 1): Asterisk-like FastAGI peers over real TCP sockets sending
the full agi_* environment and answering every command ``200 result=1``. Open-loop arrivals at
100, 500 and 1,000 calls/s (latency from the scheduled start to the server's close, so a slow
server cannot hide queueing), then a closed loop (64 concurrent sessions) for the maximum
sustained calls/s. That maximum is reported as calls per server CPU-second during the closed
loop, i.e. what one fully used core sustains (the budget is "on one core"). The wall-clock rate is
printed too, with how busy each process was: when other processes share the machine the server
gets only part of its core, and the wall-clock rate and the latencies show that contention, not
the server's capacity (the run prints the load average first).

Usage: .venv/bin/python bench/route.py [--seconds 3]
Last line: ``route p99_ms_at_500=… max_calls_per_s=… panoramisk_max_calls_per_s=…``
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import multiprocessing as mp
import os
import random
import resource
import statistics
import sys
import time
from collections.abc import Collection
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

RULES = Path(__file__).resolve().parents[1] / "routing" / "rules.example.toml"
RATES = (100, 500, 1000)
CONCURRENCY = 64
NOON_MSK = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
DIDS = ("74951234567", "74957654321", "74959990000")


def _pin(cpu: int) -> None:
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {cpu})


def _env(i: int) -> bytes:
    rnd = random.Random(i)
    caller = f"7916{rnd.randrange(0, 20_000):07d}"  # about half are known patients
    did = rnd.choice(DIDS)
    env = {
        "agi_network": "yes", "agi_network_script": "route",
        "agi_request": "agi://127.0.0.1:4573/route", "agi_channel": f"PJSIP/trunk-{i:08x}",
        "agi_language": "en", "agi_type": "PJSIP", "agi_uniqueid": f"1795413075.{i}",
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


def _service() -> Any:
    from routing.models import CallerProfile, LiveSnapshot, QueueLive
    from routing.overrides import OverrideBook
    from routing.reload import RulesHolder
    from routing.service import RoutingPorts, RoutingService

    ops = tuple(f"PJSIP/op{n}" for n in range(101, 131))
    patients = {
        f"+7916{n:07d}": CallerProfile(
            f"p{n}",
            coordinator=ops[n % 30],
            last_operator=ops[n % 7],
            vip=n % 50 == 0,
            language="ru",
        )
        for n in range(0, 20_000, 2)
    }

    class Directory:
        async def lookup(self, phone_e164: str) -> CallerProfile | None:
            return patients.get(phone_e164)

    snap = LiveSnapshot({
        "reception": QueueLive(frozenset(ops[:20]), frozenset(ops[:20:2]), 20.0),
        "doctors": QueueLive(frozenset(ops[10:]), frozenset(ops[10::3]), 40.0),
    })  # fmt: skip

    class Live:
        async def snapshot(self, queues: Collection[str]) -> LiveSnapshot:
            return snap

    return RoutingService(
        RulesHolder(RULES), OverrideBook(), RoutingPorts(directory=Directory(), live=Live()),
        clock=lambda: NOON_MSK,
    )  # fmt: skip


async def _three_sets(set_variable: Any, decision: Any) -> None:
    """The issue's workload: the decision's queue, priority and mode (3 round trips)."""
    await set_variable("ROUTE_QUEUE", decision.queue)
    await set_variable("ROUTE_PRIORITY", str(decision.priority))
    await set_variable("ROUTE_MODE", decision.mode)


async def _ours(kind: str, service: Any) -> tuple[int, Any]:
    from callserver.asterisk.agi_server import AgiSession, FastAgiServer
    from routing.agi_handler import make_route_handler, request_from_agi

    async def ours3(session: AgiSession) -> None:
        decision = await service.route(request_from_agi(session.env))
        await _three_sets(session.set_variable, decision)

    handler = make_route_handler(service) if kind == "ours-full" else ours3
    server = FastAgiServer("127.0.0.1", 0, {"route": handler})
    await server.start()
    return server.port, server.aclose


async def _panoramisk(kind: str, service: Any) -> tuple[int, Any]:
    from panoramisk.fast_agi import Application

    from callserver.asterisk.agi_codec import build_environment, quote_arg
    from routing.agi_handler import request_from_agi, variables_to_send

    async def pset(request: Any, name: str, value: str) -> None:
        await request.send_command(f"SET VARIABLE {name} {quote_arg(value)}")

    async def route(request: Any) -> None:
        decision = await service.route(request_from_agi(build_environment(request.headers)))
        for name, value in variables_to_send(decision):
            await pset(request, name, value)

    async def route3(request: Any) -> None:
        decision = await service.route(request_from_agi(build_environment(request.headers)))
        await _three_sets(lambda n, v: pset(request, n, v), decision)

    app = Application()
    app.add_route("route", route if kind == "panoramisk-full" else route3)
    srv = await asyncio.start_server(app.handler, "127.0.0.1", 0)

    async def close() -> None:
        srv.close()

    return srv.sockets[0].getsockname()[1], close


async def _serve(kind: str, conn: Connection) -> None:
    service = _service()
    await service.start(install_sighup=False)
    port, closer = await (_ours if kind.startswith("ours") else _panoramisk)(kind, service)
    conn.send(port)
    await asyncio.get_running_loop().run_in_executor(None, _control, conn)
    await closer()
    await service.aclose()


def _control(conn: Connection) -> None:
    """Answer ``cpu`` with this process's CPU seconds (user + system) until ``stop``."""
    while conn.recv() != "stop":
        usage = resource.getrusage(resource.RUSAGE_SELF)
        conn.send(usage.ru_utime + usage.ru_stime)


def server_main(kind: str, conn: Connection) -> None:
    _pin(0)
    if os.environ.get("BENCH_GC") == "off":  # diagnostics: is a p99 spike a GC pause?
        gc.disable()
    asyncio.run(_serve(kind, conn))


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
    envs = [_env(i) for i in range(5000)]
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


def run(kind: str, seconds: float) -> dict[str, Any]:
    """One server process; open-loop rates, then the closed loop with the server's CPU time
    measured around it (calls per server CPU-second: capacity of one core, robust against
    other processes competing for the core)."""
    ctx = mp.get_context("spawn")
    srv_parent, srv_child = ctx.Pipe()
    server = ctx.Process(target=server_main, args=(kind, srv_child))
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


KINDS = ("ours", "panoramisk", "ours-full", "panoramisk-full")


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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=3.0, help="duration of each load step")
    ap.add_argument("--only", nargs="*", default=list(KINDS), choices=KINDS)
    args = ap.parse_args()
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs; server on CPU 0, "
          f"clients on CPU 1; {args.seconds:.0f} s per step; load average "
          f"{os.getloadavg()[0]:.2f} before the run")  # fmt: skip
    results = {}
    for kind in args.only:
        overflows = _listen_overflows()
        res = results[kind] = run(kind, args.seconds)
        overflows = _listen_overflows() - overflows
        for r in res["rates"]:
            print(f"{kind:16} {r['rate']:5d} calls/s  p50 {r['p50_ms']:6.2f} ms  p99 "
                  f"{r['p99_ms']:7.2f} ms  failed {r['failed']:.0f}  "
                  f"commands/call {r['commands_per_call']:.1f}")  # fmt: skip
        m = res["max"]
        print(
            f"{kind:16}   max {m['calls_per_s']:7.0f} calls/s (closed loop, {CONCURRENCY} "
            f"sessions)  p99 {m['p99_ms']:.2f} ms  failed {m['failed']:.0f}  "
            f"listen-queue overflows {overflows}"
        )
        print(f"{kind:16}   server CPU: {m['calls_per_cpu_s']:.0f} calls per CPU-second "
              f"({1e6 / m['calls_per_cpu_s']:.0f} us/call); busy: server "
              f"{100 * m['calls_per_s'] / m['calls_per_cpu_s']:.0f}%, client "
              f"{100 * m['client_cpu_s'] / m['seconds']:.0f}% of a core")  # fmt: skip
    if not {"ours", "panoramisk"} <= set(results):
        return
    ours = results["ours"]
    p99_500 = next(r["p99_ms"] for r in ours["rates"] if r["rate"] == 500)
    mx = {k: v["max"]["calls_per_cpu_s"] for k, v in results.items()}
    print(f"max calls/s ours/panoramisk: 3 SETs {mx['ours'] / mx['panoramisk']:.2f}x")
    if {"ours-full", "panoramisk-full"} <= set(mx):
        full = mx["ours-full"] / mx["panoramisk-full"]
        print(f"max calls/s ours/panoramisk: full handler {full:.2f}x")
    wall = {k: v["max"]["calls_per_s"] for k, v in results.items()}
    cap = {k: v["max"]["calls_per_cpu_s"] for k, v in results.items()}
    print(f"wall-clock closed loop: ours {wall['ours']:.0f}, panoramisk {wall['panoramisk']:.0f} "
          f"calls/s")  # fmt: skip
    print(f"route p99_ms_at_500={p99_500:.2f} max_calls_per_s={cap['ours']:.0f} "
          f"panoramisk_max_calls_per_s={cap['panoramisk']:.0f}")  # fmt: skip


if __name__ == "__main__":
    main()
