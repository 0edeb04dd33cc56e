"""CRM lookup benchmark: the embedded CRM with 100,000 patients, through the Redis cache.

Builds a throwaway PostgreSQL database (bulk-loaded with COPY: 100,000 patients, ~115,000
phones, ~200,000 appointments, ~20,000 treatment-plan items), then times ``CrmService.lookup``
(normalise → Redis GET → on a miss the embedded CRM query → Redis SET) one call at a time:
  miss  first lookup of a number: cache empty, full card query against PostgreSQL
  hit   the same numbers again: served from Redis
  raw   ``EmbeddedCrm.lookup`` alone (no cache), for reference
Budgets (DESIGN/issue 4): p99 ≤ 2 ms on a hit, ≤ 15 ms on a miss.

Usage: .venv/bin/python bench/crm_lookup.py [--patients 100000] [--samples 5000]
Last line: ``crm_lookup hit_p99_ms=… miss_p99_ms=…``
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import asyncpg
import redis.asyncio as aioredis

import crm_bridge
from callserver.store.migrate import MigrationSource, apply_migrations
from crm_bridge.cache import RedisLookupCache
from crm_bridge.embedded import EmbeddedCrm
from crm_bridge.outbox import Outbox
from crm_bridge.service import CrmService
from devtools.services import ensure_services

MIGRATIONS = [MigrationSource("crm_bridge", Path(crm_bridge.__file__).parent / "migrations")]


def mobile(i: int) -> str:
    return f"+79{(i * 7919 + 12345) % 10**9:09d}"  # 7919 is coprime with 10**9: all distinct


async def load(conn: asyncpg.Connection, n: int) -> None:
    rng = random.Random(1)
    now = datetime.now(UTC)
    await conn.execute("INSERT INTO crm_clinics (name) VALUES ('A'), ('B'), ('C')")
    await conn.execute("INSERT INTO crm_specialties (name) VALUES ('терапевт'), ('хирург')")
    await conn.copy_records_to_table(
        "crm_doctors", records=[(i, 1 + i % 3, f"Доктор {i}") for i in range(1, 31)],
        columns=("id", "clinic_id", "full_name"),
    )  # fmt: skip
    await conn.copy_records_to_table(
        "crm_doctor_specialties", records=[(i, 1 + i % 2) for i in range(1, 31)],
        columns=("doctor_id", "specialty_id"),
    )  # fmt: skip
    patients = [
        (i, f"Пациент {i}", date(1950, 1, 1) + timedelta(days=i % 20000), rng.random() < 0.05,
         f"PJSIP/op{101 + i % 6}" if i % 3 == 0 else "", 1 + i % 3, Decimal(i % 7 * 500))
        for i in range(1, n + 1)
    ]  # fmt: skip
    await conn.copy_records_to_table(
        "crm_patients", records=patients,
        columns=("id", "full_name", "birth_date", "vip", "coordinator", "clinic_id", "balance"),
    )  # fmt: skip
    phones = [(mobile(i), i) for i in range(1, n + 1)]
    phones += [(f"+7495{i:07d}", i) for i in range(1, n + 1) if i % 7 == 0]
    await conn.copy_records_to_table(
        "crm_patient_phones", records=phones, columns=("phone", "patient_id")
    )
    appts = []
    for i in range(1, n + 1):
        appts.append((i, 1 + i % 30, 1 + i % 3, "101", now - timedelta(days=1 + i % 300), "came"))
        if i % 2:
            appts.append(
                (i, 1 + i % 30, 1 + i % 3, "204", now + timedelta(hours=1 + i % 500), "booked")
            )
    await conn.copy_records_to_table(
        "crm_appointments", records=appts,
        columns=("patient_id", "doctor_id", "clinic_id", "room", "starts_at", "status"),
    )  # fmt: skip
    plans = [(i // 5, i, "План") for i in range(5, n + 1, 5)]
    await conn.copy_records_to_table(
        "crm_treatment_plans", records=plans, columns=("id", "patient_id", "title")
    )
    items = [(pid, "имплантат 46", Decimal(45000)) for pid, _, _ in plans]
    await conn.copy_records_to_table(
        "crm_treatment_plan_items", records=items, columns=("plan_id", "description", "price")
    )
    await conn.execute("ANALYZE")


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def line(name: str, samples: list[float]) -> str:
    ms = [s * 1000 for s in samples]
    return (f"{name:<6} n={len(ms):>6}  p50={statistics.median(ms):6.3f} ms  "
            f"p99={pct(ms, 0.99):6.3f} ms  max={max(ms):7.3f} ms")  # fmt: skip


async def timed(fn: Callable[[str], Awaitable[object]], phones: list[str]) -> list[float]:
    out = []
    for p in phones:
        t0 = time.perf_counter()
        await fn(p)
        out.append(time.perf_counter() - t0)
    return out


async def run(n: int, samples: int) -> tuple[float, float]:
    svc = ensure_services()
    db = f"crm_bench_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = await asyncpg.connect(svc.pg_dsn)
    await admin.execute(f'CREATE DATABASE "{db}"')
    dsn = svc.pg_dsn.rpartition("/")[0] + "/" + db
    prefix = f"crm_bench:{uuid.uuid4().hex[:8]}:"
    redis = aioredis.from_url(svc.redis_url)
    pool = None
    try:
        conn = await asyncpg.connect(dsn)
        t0 = time.perf_counter()
        await apply_migrations(conn, MIGRATIONS)
        await load(conn, n)
        await conn.close()
        print(f"loaded {n:,} patients in {time.perf_counter() - t0:.1f} s (COPY)")
        pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2)
        assert pool is not None
        crm = EmbeddedCrm(pool)
        service = CrmService(crm, Outbox(pool), RedisLookupCache(redis, prefix=prefix))
        rng = random.Random(2)
        warm = [mobile(rng.randint(1, n)) for _ in range(300)]
        await timed(crm.lookup, warm)
        picks = rng.sample(range(1, n + 1), samples)
        numbers = [mobile(i) for i in picks]
        raw = await timed(crm.lookup, [mobile(rng.randint(1, n)) for _ in range(samples)])
        miss = await timed(service.lookup, numbers)
        hit = await timed(service.lookup, numbers)
        card = await service.lookup(numbers[0])
        assert card is not None and card.id == str(picks[0])  # a real card, not a miss
        assert card.next_appointment is not None or picks[0] % 2 == 0
        for name, s in (("raw", raw), ("miss", miss), ("hit", hit)):
            print(line(name, s))
        return pct(hit, 0.99) * 1000, pct(miss, 0.99) * 1000
    finally:
        if pool is not None:
            await pool.close()
        keys = [k async for k in redis.scan_iter(match=prefix + "*", count=1000)]
        for i in range(0, len(keys), 1000):
            await redis.delete(*keys[i : i + 1000])
        await redis.aclose()
        await admin.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        await admin.close()
        svc.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--patients", type=int, default=100_000)
    parser.add_argument("--samples", type=int, default=5_000)
    args = parser.parse_args()
    hit_p99, miss_p99 = asyncio.run(run(args.patients, args.samples))
    verdict = "within" if hit_p99 <= 2 and miss_p99 <= 15 else "OVER"
    print(f"budget hit p99 ≤ 2 ms, miss p99 ≤ 15 ms: {verdict}")
    print(f"crm_lookup hit_p99_ms={hit_p99:.3f} miss_p99_ms={miss_p99:.3f}")


if __name__ == "__main__":
    main()
