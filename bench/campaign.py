"""A reminder campaign over N patients through pbxsim with C outbound channels.

The production path after the list is built: ``CampaignRunner`` claiming due calls from
PostgreSQL (``FOR UPDATE SKIP LOCKED``, the per-trunk channel count, the per-patient-day
ledger), AMI ``Originate`` of each patient into Stasis through callserver's ``AmiClient``,
the dialog, ``CampaignService.settle`` (the attempt row, the CRM appointment ``confirmed``).
pbxsim runs as its own process (scenario ``campaign``: 70 % answer after 2–8 s, 20 % ring
until the Originate's timeout, 7 % busy, 3 % congestion) at ``--speed``; the patient's side of
an answered call is the scripted patient (``campaigns.scripted``: no audio, the bot not measured),
who presses 1 after ``--think`` wall seconds.

  ideal_s            Σ(channel-busy seconds of every call) ÷ channels: the channel-limited time
  wall_s             first dial → last channel freed
  completion_ratio   wall_s ÷ ideal_s (budget ≤ 1.15)
  dials_per_s        dials ÷ wall_s
  redial gap         the k-th channel freeing → the (channels + k)-th dial (p50 / p99 / max)
  double_dials       numbers pbxsim saw dialled more than once (DialBegin on its AMI)

Usage: .venv/bin/python bench/campaign.py [--patients 10000] [--channels 30] [--speed 100]
       [--think 0.2]
Last line: ``campaign patients=… channels=… completion_ratio_to_ideal=… double_dials=…
p99_redial_gap_ms=…`` (budget ≤ 1.15× ideal, 0 double dials, gap p99 ≤ 200 ms).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import asyncpg

from campaigns.dialog import Input
from campaigns.models import parse_settings
from campaigns.runner import CampaignRunner
from campaigns.scripted import ScriptedConversation
from campaigns.store import CampaignStore
from campaigns.targets import reminder_targets
from devtools.services import ensure_services, free_port
from tests.integration.campaigns_support import Clock, Dials, ami_client, make_runner, migrate
from tests.pbxsim_proc import run_pbxsim

MSK = ZoneInfo("Europe/Moscow")
VISIT_DAY = datetime(2026, 12, 3, 0, 0, tzinfo=MSK)
SCENARIO = str(Path(__file__).resolve().parents[1] / "pbxsim" / "scenarios" / "campaign.toml")


class NoHook:
    async def send(self, event: dict[str, object]) -> None:
        return None


async def seed(pool: asyncpg.Pool, n: int) -> None:
    """One clinic, 20 doctors, ``n`` patients each with a booked visit on 3 Dec 09:00–18:59."""
    await pool.execute("""
        INSERT INTO crm_clinics (name) VALUES ('Улыбка');
        INSERT INTO crm_doctors (clinic_id, full_name)
            SELECT 1, 'Врач ' || g FROM generate_series(1, 20) g;
    """)
    await pool.execute(
        "INSERT INTO crm_patients (full_name, clinic_id) "
        "SELECT 'Пациент ' || g, 1 FROM generate_series(1, $1) g",
        n,
    )
    await pool.execute(
        "INSERT INTO crm_patient_phones (phone, patient_id) "
        "SELECT '+7999' || lpad(id::text, 7, '0'), id FROM crm_patients"
    )
    await pool.execute(
        "INSERT INTO crm_appointments (patient_id, doctor_id, clinic_id, starts_at) "
        "SELECT id, 1 + id % 20, 1, "
        "$1::timestamptz + make_interval(mins => (9 * 60 + id % 600)::int) "
        "FROM crm_patients", VISIT_DAY)  # fmt: skip


def gaps_ms(freed: list[float], dialled: list[float], channels: int) -> list[float]:
    """Per freed channel (in time order) the wait until the dial that took its place."""
    freed, dialled = sorted(freed), sorted(dialled)
    return [max(0.0, (dialled[channels + k] - f) * 1000)
            for k, f in enumerate(freed) if channels + k < len(dialled)]  # fmt: skip


def pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


async def run(args: argparse.Namespace) -> None:
    svc = ensure_services()
    name = f"bench_campaign_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(svc.pg_dsn)
    await admin.execute(f'CREATE DATABASE "{name}"')
    dsn = svc.pg_dsn.rsplit("/", 1)[0] + "/" + name
    pool = await asyncpg.create_pool(dsn, min_size=2, max_size=10)
    try:
        await measure(pool, args)
    finally:
        await pool.close()
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def build(pool: asyncpg.Pool, n: int) -> int:
    await migrate(pool)
    t0 = time.perf_counter()
    await seed(pool, n)
    settings = parse_settings({"clinic_name": "Улыбка", "rules": ["24h"], "max_attempts": 1,
                               "window": "08:00-21:00"})  # fmt: skip
    targets = await reminder_targets(pool, settings, date_from=VISIT_DAY.date(),
                                     date_to=VISIT_DAY.date() + timedelta(days=1),
                                     now=datetime(2026, 12, 1, 12, 0, tzinfo=MSK))  # fmt: skip
    store = CampaignStore(pool)
    cid = await store.create("bench", "reminder", settings, "bench")
    added = await store.add_targets(cid, targets)
    print(f"list: {added} targets built from the CRM in {time.perf_counter() - t0:.1f} s")
    return cid


async def measure(pool: asyncpg.Pool, args: argparse.Namespace) -> None:
    cid = await build(pool, args.patients)
    async with run_pbxsim(SCENARIO, speed=args.speed, agi_port=free_port()) as pbx:
        dials = Dials()
        ami = await ami_client(pbx, dials)  # type: ignore[arg-type]
        clock = Clock(datetime(2026, 12, 2, 20, 30, tzinfo=MSK))  # every 24 h reminder is due
        talk = ScriptedConversation({}, default=[Input("dtmf", "1")], think_s=args.think)
        runner, _ = make_runner(pool, ami, talk, clock, instance="bench", channels=args.channels,
                                ring_s=args.ring, poll_s=0.5, webhook=NoHook())  # fmt: skip
        await CampaignStore(pool).set_state(cid, "running")
        cpu0, load0 = time.process_time(), os.getloadavg()[0]
        await runner.start()
        try:
            async with asyncio.timeout(args.patients * 0.2 + 120):
                while await pool.fetchval(  # noqa: ASYNC110 - polls PostgreSQL
                    "SELECT state FROM campaigns WHERE id = $1", cid) != "done":  # fmt: skip
                    await asyncio.sleep(0.5)
        finally:
            await runner.aclose()
            await ami.aclose()
        print(f"this process (runner + AMI client): {time.process_time() - cpu0:.1f} s CPU; "
              f"load average {load0:.1f} → {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    row = await pool.fetchrow(
        "SELECT count(*) AS dials, count(*) FILTER (WHERE result = 'answered') AS answered, "
        "(SELECT count(*) FROM crm_appointments WHERE status = 'confirmed') AS confirmed "
        "FROM campaign_dials")  # fmt: skip
    assert row is not None
    report(pool_stats=row, runner=runner, dials=dials, args=args)


def report(*, pool_stats: asyncpg.Record, runner: CampaignRunner, dials: Dials,
           args: argparse.Namespace) -> None:  # fmt: skip
    started, freed = runner.dial_started_at, runner.freed_at
    wall = max(freed) - min(started)
    ideal = runner.busy_s / args.channels
    gaps = gaps_ms(freed, started, args.channels)
    print(f"dials={pool_stats['dials']} answered={pool_stats['answered']} "
          f"confirmed_in_crm={pool_stats['confirmed']} "
          f"pbxsim_dialbegin={sum(dials.begun.values())} "
          f"max_concurrent_on_pbxsim={dials.max_live}")  # fmt: skip
    print(f"ideal_s={ideal:.1f} wall_s={wall:.1f} dials_per_s={len(started) / wall:.1f} "
          f"mean_call_s={runner.busy_s / max(1, len(started)):.3f}")  # fmt: skip
    print(f"redial gap ms: p50={pct(gaps, 0.5):.1f} p99={pct(gaps, 0.99):.1f} "
          f"max={max(gaps or [0]):.1f}")  # fmt: skip
    print(f"campaign patients={args.patients} channels={args.channels} "
          f"completion_ratio_to_ideal={wall / ideal:.3f} double_dials={dials.doubles()} "
          f"p99_redial_gap_ms={pct(gaps, 0.99):.1f}")  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--patients", type=int, default=10_000)
    p.add_argument("--channels", type=int, default=30)
    p.add_argument("--speed", type=float, default=100.0, help="pbxsim scenario s per wall s")
    p.add_argument(
        "--think",
        type=float,
        default=0.3,
        help="wall s of the dialog (0.3 at speed 100: a 30 s reminder call)",
    )
    p.add_argument("--ring", type=float, default=30.0, help="Originate timeout, scenario s")
    args = p.parse_args()
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
