"""The whole production pipeline at a steady call rate: callserver's own CPU per call.

callserver runs as its own process (``python -m callserver run``, every shipped plugin): AMI
ingest, FastAGI routing with its decision log, the PostgreSQL call writer, Redis live state, the
live WebSocket with a client connected (this process), and the CRM outbox delivering to the
embedded CRM. pbxsim (scenario ``load``, real time, in its own process) feeds it queued calls
at ``--rate`` calls/s (each ~170-185 AMI events, like a real Asterisk queue call). After a
warm-up, a window of ``--seconds`` is measured:

  calls_per_s       calls ended in the window (CallEnded frames on the live WebSocket)
  cpu_ms_per_call   callserver's CPU time (user + system, /proc/PID/stat) in the window ÷ calls
  write_lag_p99_ms  p99 of ``callserver_db_write_lag_seconds`` sampled every 500 ms (each
                    sample is a /metrics request the server answers: sampled sparingly)
  dropped           events or calls callserver dropped (writer, CRM queue, Redis, bad AMI),
                    plus calls seen ending on the WebSocket that PostgreSQL lacks after the drain

``--profile FILE`` runs callserver under cProfile (its CPU figures are then inflated) and
prints the top functions by own time: where the CPU goes.

Usage: .venv/bin/python bench/pipeline.py [--rate 60] [--seconds 30] [--profile out.prof]
Last line: ``pipeline calls_per_s=… cpu_ms_per_call=… write_lag_p99_ms=… dropped=…``
(budget: ≤ 3 ms CPU per call at 60 calls/s, write lag p99 ≤ 500 ms, nothing dropped).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import pstats
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiohttp
import asyncpg

from devtools.services import Services, ensure_services, free_port, port_open

ROOT = Path(__file__).resolve().parents[1]
TICKS = os.sysconf("SC_CLK_TCK")
DROP_METRICS = (
    "callserver_db_dropped_events_total",
    "callserver_db_dropped_calls_total",
    "callserver_crm_events_dropped_total",
    "callserver_ami_bad_events_total",
)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


@dataclass
class Run:
    svc: Services
    db: str
    dsn: str
    token: str
    ports: dict[str, int]
    conf: Path
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)


def _config(run: Run, redis_url: str) -> str:
    p = run.ports
    return f"""
[ami]
port = {p["ami"]}
secret = "callserver"
[ari]
url = "http://127.0.0.1:{p["ari"]}/ari"
password = "callserver"
[agi]
port = {p["agi"]}
[database]
dsn = "{run.dsn}"
[redis]
url = "{redis_url}"
prefix = "pipeline-bench:{uuid.uuid4().hex[:8]}:"
[http]
port = {p["http"]}
api_token = "{run.token}"
[routing]
rules_file = "{ROOT / "devtools" / "demo-rules.toml"}"
"""


async def _create_db(svc: Services) -> tuple[str, str]:
    db = f"pipeline_bench_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    conn = await asyncpg.connect(svc.pg_dsn)
    await conn.execute(f'CREATE DATABASE "{db}"')
    await conn.close()
    return db, svc.pg_dsn.rpartition("/")[0] + "/" + db


async def _drop_db(svc: Services, db: str) -> None:
    conn = await asyncpg.connect(svc.pg_dsn)
    await conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
    await conn.close()


def _start(run: Run, rate: float, duration: float, profile: str | None) -> None:
    py, env = sys.executable, dict(os.environ, PYTHONUNBUFFERED="1")
    subprocess.run([py, "-m", "callserver", "migrate", "--config", str(run.conf)], check=True,
                   env=env, stdout=subprocess.DEVNULL)  # fmt: skip
    subprocess.run([py, "-m", "crm_bridge", "seed-demo", "--dsn", run.dsn], check=True, env=env,
                   stdout=subprocess.DEVNULL)  # fmt: skip
    p = run.ports
    run.procs.append(subprocess.Popen(
        [py, "-m", "pbxsim", "--scenario", "load", "--rate", str(rate), "--duration",
         str(duration), "--speed", "1", "--ami", f"127.0.0.1:{p['ami']}", "--ari",
         f"127.0.0.1:{p['ari']}", "--agi", f"127.0.0.1:{p['agi']}", "--wait-for-ami",
         "--log-level", "WARNING"], env=env,
    ))  # fmt: skip
    head = [py, "-m", "cProfile", "-o", profile] if profile else [py]
    run.procs.append(subprocess.Popen(
        [*head, "-m", "callserver", "--log-level", "WARNING", "run", "--config", str(run.conf)],
        env=env,
    ))  # fmt: skip
    deadline = time.monotonic() + 60
    while not port_open("127.0.0.1", p["http"]):
        if time.monotonic() > deadline or run.procs[-1].poll() is not None:
            raise SystemExit("pipeline: callserver did not start")
        time.sleep(0.2)


async def _metrics(session: aiohttp.ClientSession, port: int) -> dict[str, float]:
    async with session.get(f"http://127.0.0.1:{port}/metrics") as resp:
        text = await resp.text()
    out: dict[str, float] = {}
    for m in re.finditer(r"^([a-z_]+)(?:\{[^}]*\})? ([0-9.eE+-]+)$", text, re.M):
        out[m.group(1)] = out.get(m.group(1), 0.0) + float(m.group(2))
    return out


@dataclass
class Window:
    calls: int = 0
    cpu: float = 0.0
    seconds: float = 0.0
    lags: list[float] = field(default_factory=list)


async def _measure(
    run: Run, warmup: float, seconds: float
) -> tuple[Window, dict[str, float], int]:
    pid, port, ended, lost = run.procs[-1].pid, run.ports["http"], [0], [0]
    async with aiohttp.ClientSession() as session:

        async def read() -> None:
            """Count CallEnded frames; a socket the server closes (or that fails) is opened
            again and counted in ``lost`` (a run whose one socket died used to report 0 calls)."""
            url = f"http://127.0.0.1:{port}/ws/live?token={run.token}"
            while True:
                try:
                    async with session.ws_connect(url) as ws:
                        async for msg in ws:
                            if msg.type != aiohttp.WSMsgType.TEXT:
                                break
                            if '"CallEnded"' in msg.data and json.loads(msg.data).get(
                                    "type") == "CallEnded":  # fmt: skip
                                ended[0] += 1
                except (aiohttp.ClientError, OSError, ValueError) as exc:
                    print(f"live WebSocket failed: {exc!r}", flush=True)
                lost[0] += 1
                await asyncio.sleep(0.2)

        reader = asyncio.create_task(read())
        await asyncio.sleep(warmup)
        w = Window()
        c0, cpu0, t0 = ended[0], cpu_seconds(pid), time.monotonic()
        while time.monotonic() - t0 < seconds:
            w.lags.append((await _metrics(session, port)).get("callserver_db_write_lag_seconds", 0))
            await asyncio.sleep(0.5)
        w.calls, w.cpu, w.seconds = ended[0] - c0, cpu_seconds(pid) - cpu0, time.monotonic() - t0
        await asyncio.sleep(3.0)  # let the writer and the outbox drain
        final = await _metrics(session, port)
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)
    if lost[0]:
        print(f"the live WebSocket was closed {lost[0]} time(s) and opened again: frames sent"
              " meanwhile are not counted", flush=True)
    return w, final, ended[0]


async def _missing_calls(run: Run, ended: int) -> int:
    """Calls the live WebSocket saw end that PostgreSQL does not hold as ended."""
    conn = await asyncpg.connect(run.dsn)
    stored = int(await conn.fetchval("SELECT count(*) FROM calls WHERE ended_at IS NOT NULL"))
    await conn.close()
    return max(0, ended - stored)


def _stop(run: Run) -> None:
    for proc in reversed(run.procs):
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
    for proc in reversed(run.procs):
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()


def _print_profile(path: str) -> None:
    stats = pstats.Stats(path)
    stats.sort_stats("tottime").print_stats(25)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rate", type=float, default=60.0, help="offered calls/s")
    ap.add_argument("--seconds", type=float, default=30.0, help="measuring window")
    ap.add_argument("--warmup", type=float, default=12.0)
    ap.add_argument("--profile", help="run callserver under cProfile, write the stats here")
    args = ap.parse_args()
    svc = ensure_services()
    db, dsn = asyncio.run(_create_db(svc))
    ports = {k: free_port() for k in ("ami", "ari", "agi", "http")}
    tmp = Path(tempfile.mkdtemp(prefix="pipeline-bench-"))
    run = Run(svc, db, dsn, secrets.token_hex(8), ports, tmp / "callserver.toml")
    run.conf.write_text(_config(run, svc.redis_url))
    try:
        _start(run, args.rate, args.warmup + args.seconds + 5, args.profile)
        window, final, ended = asyncio.run(_measure(run, args.warmup, args.seconds))
    finally:
        _stop(run)
    missing = asyncio.run(_missing_calls(run, ended))
    asyncio.run(_drop_db(svc, db))
    svc.stop()
    dropped = int(sum(final.get(name, 0) for name in DROP_METRICS)) + missing
    lags = sorted(window.lags) or [0.0]
    p99 = lags[min(len(lags) - 1, int(0.99 * len(lags)))] * 1000
    calls_per_s = window.calls / window.seconds
    cpu_ms = 1000 * window.cpu / max(1, window.calls)
    print(f"offered {args.rate:g} calls/s; window {window.seconds:.1f} s; {window.calls} calls "
          f"ended; callserver CPU {window.cpu:.2f} s = {100 * window.cpu / window.seconds:.0f}% "
          f"of a core; AMI events seen {final.get('callserver_ami_events_total', 0):.0f}")
    per_call = final.get("callserver_domain_events_total", 0) / max(1, ended)
    print(f"domain events per call (whole run): {per_call:.1f}")
    for name in DROP_METRICS:
        print(f"  {name} = {final.get(name, 0):.0f}")
    if args.profile:
        _print_profile(args.profile)
    print(f"pipeline calls_per_s={calls_per_s:.1f} cpu_ms_per_call={cpu_ms:.2f} "
          f"write_lag_p99_ms={p99:.0f} dropped={dropped}")  # fmt: skip


if __name__ == "__main__":
    main()
