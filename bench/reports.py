"""Reports and board benchmark.

1. Reports: a throwaway PostgreSQL database with 1,000,000 inbound calls over 8 weeks
   (generated with ``generate_series`` in SQL: 20 DIDs / 5 sources / 4 campaigns / 2 clinics,
   300,000 distinct callers, 82% answered, a routing decision per call, 50,000 outbound
   callbacks, 50,000 CRM patients with 30,000 appointments). Times, wall-clock, the production
   queries (``dashboards.reports.Reports``): the main marketer report over all 8 weeks
   (every call), one week, and the staffing table over the last 4 weeks.
2. Board: the real live model + board hub behind aiohttp, 100 supervisors' WebSockets
   (in a separate process), 100 calls/s through the model (~6 domain events per call).
   Lag = from an event's publication to the arrival, at a supervisor, of the first board
   that includes it (the board carries the count of events it has applied).
Budgets (issue 13): report ≤ 2 s, board update lag p99 ≤ 1 s.

Usage: .venv/bin/python bench/reports.py [--calls 1000000] [--supervisors 100] [--rate 100]
                                          [--seconds 20]
Last line: ``reports report_s=… staffing_s=… board_lag_p99_ms=…``
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import statistics
import sys
import time
import uuid
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp
import asyncpg
from aiohttp import web

from callserver.config import load_config
from callserver.core.bus import EventBus
from callserver.core.model.live import LiveModel
from callserver.core.model.records import MemberInfo
from callserver.plugins import load_plugins, migration_sources
from callserver.store.migrate import apply_migrations, core_sources
from dashboards.board import BoardSettings, LiveBoard
from dashboards.config import DashboardsConfig
from dashboards.hub import BoardHub
from dashboards.overload import OverloadDetector
from dashboards.plugin import _report_settings
from dashboards.reports import ReportFilters, Reports
from dashboards.rollup import Rollup
from devtools.services import ensure_services, free_port

DAYS = 56
GENERATE = """
WITH g AS (
    SELECT i,
           date_trunc('day', now() AT TIME ZONE 'Europe/Moscow') - interval '{days} days'
             + (i % {days}) * interval '1 day' + interval '8 hours'
             + ((i * 7) % 43200) * interval '1 second' AS local_start,
           (i * 31) % 100 < 82 AS ans, i % 20 <> 0 AS queued,
           (i * 17) % 60 AS wait, 60 + (i * 13) % 300 AS talk
    FROM generate_series(1::bigint, {n}) AS i
)
INSERT INTO calls (id, direction, caller, did, ad_source, queue, agent, state, started_at,
                   queued_at, answered_at, ended_at, wait_seconds, talk_seconds, updated_at)
SELECT 'b' || i, 'inbound', '+7916' || lpad(((i * 7919) % 300000)::text, 7, '0'),
       '+7495000' || lpad((i % 20)::text, 4, '0'),
       (ARRAY['yandex', 'google', '2gis', 'vk', 'site'])[1 + i % 5],
       CASE WHEN queued THEN 'reception' ELSE '' END,
       CASE WHEN queued AND ans THEN 'PJSIP/op' || (100 + i % 40) ELSE '' END,
       CASE WHEN queued AND ans THEN 'ended' WHEN queued THEN 'abandoned' ELSE 'ended' END,
       s, s + interval '2 seconds',
       CASE WHEN queued AND ans THEN s + (2 + wait) * interval '1 second' END,
       s + (2 + wait + CASE WHEN queued AND ans THEN talk ELSE 0 END) * interval '1 second',
       CASE WHEN queued AND ans THEN wait END, CASE WHEN queued AND ans THEN talk END, s
FROM (SELECT *, local_start AT TIME ZONE 'Europe/Moscow' AS s FROM g) AS x
"""
DECISIONS = """
INSERT INTO route_decisions (uniqueid, linkedid, origin, did, ad_source, campaign, paid, clinic,
    queue, mode, rule_version, profile_status, patient_id, decided_at)
SELECT id, id, 'agi', did, ad_source,
       (ARRAY['implants', 'checkup', 'kids', 'brand'])[1 + right(did, 2)::int % 4], true,
       CASE WHEN right(did, 2)::int < 10 THEN 'center' ELSE 'north' END, 'reception', 'queue',
       'v1', 'found', CASE WHEN right(caller, 5)::int % 3 = 0 THEN '1' ELSE '' END, started_at
FROM calls WHERE direction = 'inbound'
"""
CALLBACKS = """
INSERT INTO calls (id, direction, caller, did, agent, state, started_at, answered_at, ended_at,
                   talk_seconds, updated_at)
SELECT 'cb' || id, 'outbound', '101', caller, 'PJSIP/op' || (100 + right(caller, 2)::int % 40),
       'ended', ended_at + interval '10 minutes',
       CASE WHEN right(id, 1)::int % 2 = 0 THEN ended_at + interval '10 minutes 8 seconds' END,
       ended_at + interval '11 minutes', 52, ended_at + interval '11 minutes'
FROM calls WHERE direction = 'inbound' AND answered_at IS NULL LIMIT {n}
"""
CRM = """
INSERT INTO crm_patients (id, full_name) SELECT k, 'Пациент ' || k FROM generate_series(1, 50000) k;
INSERT INTO crm_patient_phones (phone, patient_id)
SELECT '+7916' || lpad(((k * 7919) % 300000)::text, 7, '0'), k FROM generate_series(1, 50000) k;
INSERT INTO crm_appointments (patient_id, starts_at, status, created_at)
SELECT k, now() - (k % 50) * interval '1 day',
       (ARRAY['came', 'no_show', 'booked', 'cancelled'])[1 + k % 4],
       now() - (k % 50) * interval '1 day' - interval '2 days'
FROM generate_series(1, 30000) k;
"""


async def build(dsn: str, n: int) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        sources = migration_sources(load_plugins(load_config(env={})))
        await apply_migrations(conn, [*core_sources(), *sources])
        t = time.perf_counter()
        await conn.execute(GENERATE.format(n=n, days=DAYS))
        await conn.execute(DECISIONS)
        await conn.execute(CALLBACKS.format(n=n // 20))
        await conn.execute(CRM)
        await conn.execute("ANALYZE")
        total = await conn.fetchval("SELECT count(*) FROM calls")
        print(f"generated {total:,} calls (+decisions, CRM) in {time.perf_counter() - t:.1f} s")
    finally:
        await conn.close()
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2)
    try:
        rollup = Rollup(pool, interval=60, margin=900, callback_window_hours=24,
                        booking_window_hours=72, timeout=1800)  # fmt: skip
        t = time.perf_counter()
        rows = await rollup.run_once()
        print(f"rollup, first pass over every call: {rows:,} facts in "
              f"{time.perf_counter() - t:.1f} s")
        t = time.perf_counter()
        await rollup.run_once()
        print(f"rollup, a routine pass with nothing new: {time.perf_counter() - t:.2f} s")
        # steady state: autovacuum (tuned for this table in the migration) has set the
        # visibility map the report's index-only scan needs; here it is done at once
        t = time.perf_counter()
        await pool.execute("VACUUM (ANALYZE) dashboards_call_facts")
        print(f"vacuum of the rollup (autovacuum's job in production): "
              f"{time.perf_counter() - t:.1f} s")
    finally:
        await pool.close()


async def timed(label: str, make: Any, runs: int = 3) -> float:
    times = []
    result: Any = None
    for _ in range(runs):
        t = time.perf_counter()
        result = await make()
        times.append(time.perf_counter() - t)
    median = statistics.median(times)
    print(f"{label:<44} median {median:6.3f} s  (runs: {', '.join(f'{x:.3f}' for x in times)})")
    return median if result is not None else float("nan")


async def reports_bench(dsn: str) -> tuple[float, float]:
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2)
    try:
        rep = Reports(pool, _report_settings(DashboardsConfig()))
        today = datetime.now(rep.s.tz).date()
        whole = ReportFilters(today - timedelta(days=DAYS + 1), today)
        week = ReportFilters(today - timedelta(days=7), today)
        report_s = await timed("marketer report, 8 weeks (all calls), by source",
                               lambda: rep.marketer(whole, "source"))  # fmt: skip
        total = (await rep.marketer(whole, "source"))["total"]
        print(f"  → {total['calls']:,} calls, {total['unique_callers']:,} callers, "
              f"{total['booked']:,} booked, {total['called_back']:,} called back")
        await timed("marketer report, 1 week, by campaign", lambda: rep.marketer(week, "campaign"))
        await timed("heatmap, 8 weeks", lambda: rep.heatmap(whole))
        await timed("operator KPIs, 1 week", lambda: rep.operators(week))
        staffing_s = await timed("staffing table, last 4 weeks",
                                 lambda: rep.staffing(today, weeks=4))  # fmt: skip
        return report_s, staffing_s
    finally:
        await pool.close()


# ---- board ----------------------------------------------------------------------------------


def supervisors(url: str, count: int, seconds: float, out: Any, ready: Any) -> None:
    """Child process: ``count`` WebSocket clients; sends back (events, wall time) per board.
    Sets ``ready`` once every client has its first board (the load starts after that)."""
    first: list[int] = []

    async def one(session: aiohttp.ClientSession, seen: list[tuple[int, float]]) -> None:
        async with session.ws_connect(url) as ws:
            end = time.time() + seconds + 30
            while time.time() < end:
                msg = await ws.receive(timeout=5)
                if msg.type != aiohttp.WSMsgType.TEXT:
                    break
                now = time.time()
                head = msg.data[:200]
                seen.append((int(head.split('"events": ', 1)[1].split(",", 1)[0]), now))
                if len(seen) == 1:
                    first.append(1)
                    if len(first) == count:
                        ready.set()
                        end = time.time() + seconds + 3

    async def run() -> list[list[tuple[int, float]]]:
        results: list[list[tuple[int, float]]] = [[] for _ in range(count)]
        async with aiohttp.ClientSession() as session:
            await asyncio.gather(*(one(session, r) for r in results))
        return results

    out.put(asyncio.run(run()))


async def drive(model: LiveModel, rate: float, seconds: float) -> None:
    """``rate`` calls/s: arrive, queue, answered after 3 s (10% abandon), talk 30 s, hang up."""
    t0 = time.time()
    schedule: list[tuple[float, int, str, str]] = []
    i = 0
    while time.time() - t0 < seconds:
        now = time.time()
        while i < (now - t0) * rate:
            uid = f"c{i}"
            schedule += [(now + 3, i, uid, "answer" if i % 10 else "abandon"),
                         (now + 33 if i % 10 else now + 3.1, i, uid, "hangup")]  # fmt: skip
            model.channel_created(uid, uid, f"PJSIP/trunk-{uid}", caller=f"+7916{i:07d}",
                                  context="from-trunk", at=now)  # fmt: skip
            model.caller_joined_queue(uid, uid, "reception", 1, at=now)
            i += 1
        schedule.sort()
        while schedule and schedule[0][0] <= now:
            _, n, uid, what = schedule.pop(0)
            if what == "answer":
                model.agent_connected(uid, "reception", f"PJSIP/op{100 + n % 40}", at=now)
            elif what == "abandon":
                model.caller_abandoned(uid, "reception", position=1, at=now)
            else:
                model.channel_hungup(uid, at=now)
        await asyncio.sleep(0.01)


async def board_bench(dsn: str, count: int, rate: float, seconds: float) -> float:
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2)
    bus = EventBus()
    model = LiveModel(bus)
    cfg = DashboardsConfig()
    board = LiveBoard(model, BoardSettings.from_config(cfg),
                      lambda q: OverloadDetector(q, cfg.thresholds()))  # fmt: skip
    published: list[float] = []
    bus.subscribe(board.on_event)
    bus.subscribe(lambda e: published.append(time.time()))
    for k in range(40):
        model.member_status(MemberInfo("reception", f"PJSIP/op{100 + k}", f"Оператор {k}",
                                       "not_inuse"), at=time.time())  # fmt: skip
    hub = BoardHub(board, pool=pool, live=model, clock=time.time,
                   push_interval=cfg.push_interval, sample_interval=3600,
                   on_transition=lambda t: None)  # fmt: skip
    base_events = board.events
    app = web.Application()
    app.router.add_get("/ws", hub.serve)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    await hub.start()
    ctx = mp.get_context("spawn")
    out: Any = ctx.Queue()
    ready = ctx.Event()
    proc = ctx.Process(target=supervisors,
                       args=(f"ws://127.0.0.1:{port}/ws", count, seconds, out, ready))
    proc.start()
    try:
        assert await asyncio.to_thread(ready.wait, 120), "supervisors did not connect"
        await drive(model, rate, seconds)
        results = await asyncio.to_thread(out.get, True, seconds + 60)
    finally:
        proc.join(10)
        await hub.aclose()
        await runner.cleanup()
        await pool.close()
    lags = _lags(results, published, base_events)
    if os.environ.get("BENCH_LAG_TRACE"):
        for seen in results[:2]:
            print([(e, round(at - published[0], 2)) for e, at in seen][:80])
    p50, p99 = _pct(lags, 0.5), _pct(lags, 0.99)
    print(f"board: {count} supervisors, {rate:g} calls/s for {seconds:g} s, "
          f"{len(published):,} events, {sum(len(r) for r in results):,} boards received, "
          f"tick {hub.tick_seconds * 1000:.1f} ms")
    print(f"board update lag: p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms, "
          f"max {max(lags) * 1000:.0f} ms")
    return p99


def _lags(results: list[list[tuple[int, float]]], published: list[float], base: int
          ) -> list[float]:  # fmt: skip
    """Per board received: the age of the oldest event it was first to show this client
    (``published[k]`` is when event number k + 1 was published, as ``board.events`` counts).
    A client's first board (on connecting, before the load starts) only sets its baseline."""
    lags = []
    for seen in results:
        if not seen:
            continue
        shown = max(base, seen[0][0])
        for events, at in seen[1:]:
            if events > shown:
                lags.append(at - published[shown])  # event number shown + 1
                shown = events
    return lags


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def run(args: argparse.Namespace) -> None:
    svc = ensure_services()
    db = f"bench_reports_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = await asyncpg.connect(svc.pg_dsn)
    await admin.execute(f'CREATE DATABASE "{db}"')
    dsn = svc.pg_dsn.rpartition("/")[0] + "/" + db
    try:
        await build(dsn, args.calls)
        report_s, staffing_s = await reports_bench(dsn)
        lag_p99 = await board_bench(dsn, args.supervisors, args.rate, args.seconds)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        await admin.close()
        svc.stop()
    print(f"budgets: report ≤ 2 s, board lag p99 ≤ 1000 ms; today {date.today()}")
    print(f"reports report_s={report_s:.3f} staffing_s={staffing_s:.3f} "
          f"board_lag_p99_ms={lag_p99 * 1000:.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=1_000_000)
    parser.add_argument("--supervisors", type=int, default=100)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
