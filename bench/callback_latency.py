"""Missed call → first callback Originate, on the production path.

pbxsim (its own process, real AMI/FastAGI sockets) produces abandoned calls at a steady Poisson
rate (``callbacks-load``: every caller gives up within ~1 s, 60 operators mostly free); one
CallServer with every installed plugin, real PostgreSQL and Redis, detects each miss, creates
the job, claims it and originates the callback. Measured per job: from the QueueCallerAbandon
event's ``Timestamp`` (pbxsim's wall clock, same host) to the moment the Originate action
leaves callserver (the ``dialer`` port's observer), for the first attempt of each job.

    .venv/bin/python bench/callback_latency.py [--rate 2] [--duration 40]

Budget p99 ≤ 10 s, goal ≤ 2 s. The last line is the headline.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any, Protocol

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import asyncpg

from callserver.app import CallServer
from callserver.config import load_config
from callserver.core.events import CallAbandoned, DomainEvent
from callserver.plugin_api import Contribution, PluginDeps
from callserver.plugins import LoadedPlugin, load_plugins, order
from devtools.services import ensure_services, free_port
from tests.pbxsim_proc import run_pbxsim


class Observable(Protocol):
    def observe(self, callback: Any) -> None: ...


class Capture:
    """A bench-only plugin: records Originates leaving and abandons arriving."""

    name = "bench-capture"
    config_type: type[Any] | None = None
    migrations: Path | None = None
    requires: tuple[str, ...] = ("dialer",)
    optional: tuple[str, ...] = ()
    provides: tuple[str, ...] = ()

    def __init__(self) -> None:
        self.originated: dict[str, float] = {}
        self.abandons: list[tuple[float, float]] = []

    def validate(self, config: None) -> None:
        return None

    def build(self, config: None, deps: PluginDeps) -> Contribution:
        deps.ports.get("dialer", Observable).observe(self._originate)
        return Contribution(subscribers=[self._event])

    def _originate(self, attempt_id: str, at: float) -> None:
        self.originated[attempt_id] = at

    def _event(self, event: DomainEvent) -> None:
        if isinstance(event, CallAbandoned):
            self.abandons.append((event.at, time.time()))


def env_for(pbx: Any, dsn: str, redis_url: str) -> dict[str, str]:
    return {
        "CALLSERVER_AMI_PORT": str(pbx.ami_port), "CALLSERVER_AMI_SECRET": "callserver",
        "CALLSERVER_ARI_URL": f"http://127.0.0.1:{pbx.ari_port}/ari",
        "CALLSERVER_ARI_PASSWORD": "callserver", "CALLSERVER_AGI_PORT": str(pbx.agi_port),
        "CALLSERVER_DATABASE_DSN": dsn, "CALLSERVER_REDIS_URL": redis_url,
        "CALLSERVER_REDIS_PREFIX": f"bench-{uuid.uuid4().hex[:6]}:",
        "CALLSERVER_HTTP_PORT": str(free_port()), "CALLSERVER_HTTP_API_TOKEN": "bench",
        "CALLSERVER_CALLBACKS_BUSINESS_HOURS": "00:00-24:00",
        "CALLSERVER_CALLBACKS_BUSINESS_DAYS": "1-7",
        "CALLSERVER_CALLBACKS_PATIENT_HOURS": "00:00-24:00",
        "CALLSERVER_CALLBACKS_CALLER_ID": "74951234567",
    }  # fmt: skip


def quantile(values: list[float], q: float) -> float:
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[round(q * 100) - 1]


async def run(rate: float, duration: float) -> None:
    svc = ensure_services()
    db = f"bench_callbacks_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(svc.pg_dsn)
    await admin.execute(f'CREATE DATABASE "{db}"')
    dsn = svc.pg_dsn.rpartition("/")[0] + "/" + db
    capture = Capture()
    try:
        extra = ("--rate", str(rate), "--duration", str(duration))
        async with run_pbxsim("callbacks-load", speed=1.0, agi_port=free_port(),
                              extra=extra) as pbx:  # fmt: skip
            config = load_config(None, env=env_for(pbx, dsn, svc.redis_url))
            plugins = order([*load_plugins(config), LoadedPlugin(capture, None)])
            server = await CallServer.create(config, plugins)
            await server.start()
            try:
                await asyncio.sleep(duration + 12.0)
            finally:
                await server.aclose()
        conn = await asyncpg.connect(dsn)
        try:
            rows = await conn.fetch(
                "SELECT DISTINCT ON (j.id) j.id, j.missed_at, a.id AS attempt_id, a.result "
                "FROM callback_jobs j JOIN callback_attempts a ON a.job_id = j.id "
                "ORDER BY j.id, a.started_at")
            jobs = await conn.fetchval("SELECT count(*) FROM callback_jobs")
            results = await conn.fetch(
                "SELECT result, count(*) AS n FROM callback_attempts GROUP BY result")
        finally:
            await conn.close()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        await admin.close()
    latency = sorted(capture.originated[r["attempt_id"]] - r["missed_at"] for r in rows
                     if r["attempt_id"] in capture.originated)  # fmt: skip
    transit = [recv - at for at, recv in capture.abandons]
    print(f"rate {rate}/s for {duration:.0f} s: {len(capture.abandons)} abandons seen, "
          f"{jobs} jobs, {len(latency)} first attempts originated")
    print("attempt results: " + ", ".join(f"{r['result'] or 'dialing'}={r['n']}" for r in results))
    if transit:
        ms = quantile(transit, 0.5) * 1e3
        print(f"QueueCallerAbandon → bus (AMI transit + parse) p50_ms={ms:.2f}")
    if not latency:
        print("callback_latency p50_s=nan p99_s=nan")
        return
    print(f"abandon → Originate: min_s={latency[0]:.3f} max_s={latency[-1]:.3f} "
          f"mean_s={statistics.fmean(latency):.3f}")
    print(f"callback_latency p50_s={quantile(latency, .5):.3f} p99_s={quantile(latency, .99):.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=2.0, help="missed calls per second")
    parser.add_argument("--duration", type=float, default=40.0, help="seconds of arrivals")
    args = parser.parse_args()
    asyncio.run(run(args.rate, args.duration))


if __name__ == "__main__":
    main()
