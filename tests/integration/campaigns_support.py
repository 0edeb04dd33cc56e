"""Shared parts of the campaign tests and the benchmark: a seeded embedded CRM in a real
PostgreSQL, pbxsim answering Originates over real AMI, and a campaign runner wired like the
plugin wires it (``campaigns.plugin``) with a settable clock.

The patient's side of an answered call is ``campaigns.scripted.ScriptedConversation``: the
scripted patient feeds the same dialog the voice bot would (keys / recognised text) without
audio; the real voice bot on pbxsim's speaking patients is ``test_campaigns_voice.py``.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg

from callserver.asterisk.ami_codec import AmiMessage
from callserver.asterisk.ami_connection import AmiClient
from callserver.config import AmiConfig
from callserver.store.migrate import MigrationSource, apply_migrations
from campaigns.dialer import Conversation, PatientDialer
from campaigns.runner import CampaignRunner, RunnerSettings
from campaigns.service import CampaignService
from campaigns.store import CampaignStore
from pbxsim.app import Pbx, PbxOptions
from pbxsim.scenario import load

ROOT = Path(__file__).resolve().parents[2]


async def migrate(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        await apply_migrations(conn, [
            MigrationSource("crm_bridge", ROOT / "crm_bridge" / "migrations"),
            MigrationSource("campaigns", ROOT / "campaigns" / "migrations"),
        ])  # fmt: skip


async def seed_day(
    pool: asyncpg.Pool, day: datetime, patients: Sequence[tuple[str, str, int]]
) -> dict[str, int]:
    """Clinic «Улыбка», two doctors, and per ``(phone, name, minute of day)`` a patient with a
    booked appointment at that local time of ``day``. Returns phone → appointment id."""
    clinic = await pool.fetchval(
        "INSERT INTO crm_clinics (name, timezone) VALUES ('Улыбка', 'Europe/Moscow') RETURNING id"
    )
    doctors = [await pool.fetchval(
        "INSERT INTO crm_doctors (clinic_id, full_name) VALUES ($1, $2) RETURNING id", clinic, name)
        for name in ("Иванова Анна Петровна", "Петров Олег Ильич")]  # fmt: skip
    ids = {}
    for n, (phone, name, minute) in enumerate(patients):
        pid = await pool.fetchval(
            "INSERT INTO crm_patients (full_name, clinic_id) VALUES ($1, $2) RETURNING id",
            name,
            clinic,
        )
        await pool.execute(
            "INSERT INTO crm_patient_phones (phone, patient_id) VALUES ($1, $2)", phone, pid
        )
        ids[phone] = await pool.fetchval(
            "INSERT INTO crm_appointments (patient_id, doctor_id, clinic_id, starts_at) "
            "VALUES ($1, $2, $3, $4) RETURNING id",
            pid, doctors[n % 2], clinic, day + timedelta(minutes=minute))  # fmt: skip
    return ids


class Clock:
    """A settable clock (POSIX seconds)."""

    def __init__(self, at: datetime) -> None:
        self.now = at.timestamp()

    def __call__(self) -> float:
        return self.now

    def set(self, at: datetime) -> None:
        self.now = at.timestamp()


@dataclass
class Dials:
    """What pbxsim was asked to dial, seen on AMI: DialBegin per number, concurrency."""

    begun: Counter[str] = field(default_factory=Counter)
    live: set[str] = field(default_factory=set)
    overlaps: int = 0
    max_live: int = 0

    def on_event(self, msg: AmiMessage) -> None:
        if msg.name == "DialBegin":
            number = (msg.get("DialString") or "").split("@", 1)[0]
            self.begun[number] += 1
            channel = msg.get("DestChannel") or msg.get("Channel") or ""
            self.live.add(channel)
            self.max_live = max(self.max_live, len(self.live))
        elif msg.name == "Hangup":
            self.live.discard(msg.get("Channel") or "")

    def doubles(self) -> int:
        return sum(n - 1 for n in self.begun.values() if n > 1)


async def start_pbx(speed: float, numbers: dict[str, str] | None = None, **policy: Any) -> Pbx:
    sc = load("campaign")
    orig = dataclasses.replace(sc.originate, numbers=numbers or {}, **policy)
    pbx = Pbx(
        dataclasses.replace(sc, originate=orig), PbxOptions(ami_port=0, agi_port=1, speed=speed)
    )
    await pbx.start()
    return pbx


async def ami_client(pbx: Pbx, dials: Dials) -> AmiClient:
    cfg = AmiConfig(port=pbx.ami_port, secret="callserver", reconnect_min=0.1, reconnect_max=0.5,
                    ping_interval=60.0)  # fmt: skip
    client = AmiClient(cfg, on_event=dials.on_event)
    await client.start()
    await client.wait_connected(10.0)
    return client


def make_runner(
    pool: asyncpg.Pool, ami: AmiClient, conversation: Conversation, clock: Clock, *,
    instance: str, channels: int, ring_s: float = 30.0, poll_s: float = 0.1,
    lease: timedelta = timedelta(minutes=15), own: int = 0, **service_ports: Any,
) -> tuple[CampaignRunner, CampaignService]:  # fmt: skip
    store = CampaignStore(pool)
    service = CampaignService(store, pool, instance=instance, clock=clock, **service_ports)
    runner = CampaignRunner(store, PatientDialer(ami, app="callserver", ring_s=ring_s),
                            conversation, service, clock,
                            RunnerSettings(instance, channels, poll_s, lease, own))  # fmt: skip
    return runner, service


async def wait_done(pool: asyncpg.Pool, cid: int, within: float = 30.0) -> None:
    async with asyncio.timeout(within):
        while await pool.fetchval("SELECT state FROM campaigns WHERE id = $1", cid) != "done":  # noqa: ASYNC110
            await asyncio.sleep(0.05)
