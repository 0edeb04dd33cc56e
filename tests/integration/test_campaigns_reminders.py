"""A reminder campaign end to end: the embedded CRM in real PostgreSQL, pbxsim answering the
Originates over real AMI (pinned answer / busy / no answer per number), the runner, the
dialog, the CRM updates. The patients' keys and words come from the scripted patient
(``campaigns.scripted``): pbxsim's answered trunk calls cannot speak or press keys."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import pytest

from campaigns.dialog import Input
from campaigns.models import parse_settings
from campaigns.scripted import ScriptedConversation
from campaigns.store import CampaignStore
from campaigns.targets import reminder_targets
from tests.integration.campaigns_support import (
    Clock,
    Dials,
    ami_client,
    make_runner,
    migrate,
    seed_day,
    start_pbx,
    wait_done,
)  # fmt: skip

pytestmark = pytest.mark.integration
MSK = ZoneInfo("Europe/Moscow")
VISIT_DAY = datetime(2026, 12, 3, 0, 0, tzinfo=MSK)
PATIENTS = [  # phone, name, minute of the visit day
    ("+79990000101", "Смирнова Ольга", 10 * 60), ("+79990000102", "Кузнецов Иван", 10 * 60 + 30),
    ("+79990000103", "Попова Мария", 11 * 60), ("+79990000104", "Васильев Пётр", 12 * 60),
    ("+79990000105", "Соколова Анна", 13 * 60), ("+79990000106", "Михайлов Юрий", 14 * 60),
    ("+79990000107", "Новикова Ева", 15 * 60), ("+79990000108", "Фёдоров Лев", 16 * 60),
]  # fmt: skip
SCRIPTS = {
    "+79990000101": [Input("dtmf", "1")],
    "+79990000102": [Input("text", "нет, не смогу прийти")],
    "+79990000103": [Input("dtmf", "3")],
    "+79990000104": [Input("text", "соедините с администратором")],
    "+79990000105": [Input("text", "не звоните мне больше")],
    "+79990000108": [Input("machine")],
    "+79990000199": [Input("text", "да, запишите")],  # on the waitlist
}
PINNED = {"79990000106": "busy", "79990000107": "noanswer"}


class FakeCallbacks:
    """The ``callback_jobs`` port (callbacks plugin), recording the jobs."""

    def __init__(self) -> None:
        self.jobs: list[dict[str, Any]] = []

    async def create_job(self, **job: Any) -> str:
        self.jobs.append(job)
        return str(len(self.jobs))


class FakeWebhook:
    def __init__(self) -> None:
        self.events: list[dict[str, object]] = []

    async def send(self, event: dict[str, object]) -> None:
        self.events.append(event)


@pytest.fixture
async def pool(fresh_pg_dsn: str) -> AsyncIterator[asyncpg.Pool]:
    p = await asyncpg.create_pool(fresh_pg_dsn, min_size=1, max_size=8)
    await migrate(p)
    yield p
    await p.close()


async def _campaign(pool: asyncpg.Pool, **settings: Any) -> int:
    """The list is built the day before (1 Dec, 12:00): one 24 h reminder per appointment."""
    store = CampaignStore(pool)
    s = parse_settings({"clinic_name": "Улыбка", "rules": ["24h"], "max_attempts": 1, **settings})
    built = datetime(2026, 12, 1, 12, 0, tzinfo=MSK)
    day = VISIT_DAY.date()
    targets = await reminder_targets(pool, s, date_from=day, date_to=day + timedelta(days=1),
                                     now=built)  # fmt: skip
    assert targets
    cid = await store.create("Напоминания 3 декабря", "reminder", s, "test")
    assert await store.add_targets(cid, targets) == len(targets)
    return cid


async def test_a_reminder_day_ends_with_the_right_crm_statuses(pool: asyncpg.Pool) -> None:
    appointments = await seed_day(pool, VISIT_DAY, PATIENTS)
    waiting = await pool.fetchval(  # a patient waiting for the slots of 102's doctor
        "INSERT INTO campaign_waitlist (phone, full_name, doctor_id) VALUES ('+79990000199', "
        "'Ждущий Пациент', (SELECT doctor_id FROM crm_appointments WHERE id = $1)) RETURNING id",
        appointments["+79990000102"],
    )
    clock = Clock(datetime(2026, 12, 2, 17, 0, tzinfo=MSK))  # every 24 h reminder is due
    cid = await _campaign(pool)
    dials, callbacks, hook = Dials(), FakeCallbacks(), FakeWebhook()
    pbx = await start_pbx(50.0, PINNED, answer=1.0, noanswer=0.0, busy=0.0, congestion=0.0)
    ami = await ami_client(pbx, dials)
    runner, _ = make_runner(pool, ami, ScriptedConversation(SCRIPTS), clock, instance="t1",
                            channels=3, ring_s=20.0, webhook=hook, callbacks=callbacks)  # fmt: skip
    try:
        await CampaignStore(pool).set_state(cid, "running")
        await runner.start()
        await wait_done(pool, cid)
        offer_id = await pool.fetchval("SELECT id FROM campaigns WHERE kind = 'waitlist'")
        assert offer_id is not None  # the cancelled slot went to the doctor's waitlist
        await wait_done(pool, offer_id)
    finally:
        await runner.aclose()
        await ami.aclose()
        await pbx.aclose()
    status = {
        r["id"]: r["status"] for r in await pool.fetch("SELECT id, status FROM crm_appointments")
    }
    assert status[appointments["+79990000101"]] == "confirmed"
    assert status[appointments["+79990000102"]] == "cancelled"
    for phone in ("+79990000103", "+79990000104", "+79990000105", "+79990000106", "+79990000107",
                  "+79990000108"):  # fmt: skip
        assert status[appointments[phone]] == "booked", phone
    rows = await pool.fetch(
        "SELECT phone, outcome FROM campaign_targets WHERE campaign_id = $1", cid
    )
    outcomes = {r["phone"]: r["outcome"] for r in rows}
    assert outcomes == {
        "+79990000101": "confirmed", "+79990000102": "cancelled", "+79990000103": "reschedule",
        "+79990000104": "operator", "+79990000105": "opt_out", "+79990000106": "unreached",
        "+79990000107": "unreached", "+79990000108": "unreached",
    }  # fmt: skip
    rows = await pool.fetch("SELECT phone, result FROM campaign_dials WHERE campaign_id = $1", cid)
    results = {r["phone"]: r["result"] for r in rows}
    assert results["+79990000106"] == "busy" and results["+79990000107"] == "no_answer"
    assert results["+79990000108"] == "answered"
    assert (
        await pool.fetchval("SELECT count(*) FROM campaign_dnc WHERE phone = '+79990000105'") == 1
    )
    assert sorted((j["phone"], j["reason"]) for j in callbacks.jobs) == [
        ("+79990000103", "campaign_reminder_reschedule"),
        ("+79990000104", "campaign_reminder_operator"),
    ]
    assert (
        "Иванова Анна Петровна" in callbacks.jobs[0]["comment"]
        or "Петров" in callbacks.jobs[0]["comment"]
    )
    assert sorted(
        str(e["phone"])
        for e in hook.events
        if e["event"] == "unreached" and e["campaign_id"] == cid
    ) == [
        "+79990000106",
        "+79990000107",
        "+79990000108",
    ]
    offer = await pool.fetchrow(
        "SELECT phone, rule, outcome FROM campaign_targets WHERE campaign_id = $1", offer_id
    )
    assert offer is not None
    assert dict(offer) == {"phone": "+79990000199", "rule": f"waitlist:{waiting}",
                           "outcome": "slot_accepted"}  # fmt: skip
    assert all(n == 1 for n in dials.begun.values()) and len(dials.begun) == 9
    assert dials.max_live <= 3
    assert await pool.fetchval("SELECT count(dial_id) FROM campaign_channels") == 0


async def test_the_calling_window_and_quiet_hours_follow_the_clock(pool: asyncpg.Pool) -> None:
    await seed_day(pool, VISIT_DAY, PATIENTS[:2])
    clock = Clock(datetime(2026, 12, 2, 17, 0, tzinfo=MSK))
    cid = await _campaign(pool, window="09:00-20:00", quiet=["16:00-18:00"])
    dials = Dials()
    pbx = await start_pbx(50.0, answer=1.0, noanswer=0.0, busy=0.0, congestion=0.0)
    ami = await ami_client(pbx, dials)
    runner, _ = make_runner(pool, ami, ScriptedConversation({}, default=[Input("dtmf", "1")]),
                            clock, instance="t1", channels=2, webhook=FakeWebhook())  # fmt: skip
    try:
        await CampaignStore(pool).set_state(cid, "running")
        await runner.start()
        await asyncio.sleep(0.6)  # several polls inside the quiet hours
        assert sum(dials.begun.values()) == 0
        clock.set(datetime(2026, 12, 2, 20, 30, tzinfo=MSK))  # after the window closed
        runner.wake()
        await asyncio.sleep(0.6)
        assert sum(dials.begun.values()) == 0
        clock.set(datetime(2026, 12, 2, 18, 0, tzinfo=MSK))  # quiet hours over, window open
        runner.wake()
        await wait_done(pool, cid)
    finally:
        await runner.aclose()
        await ami.aclose()
        await pbx.aclose()
    assert sum(dials.begun.values()) == 2
    assert (
        await pool.fetchval("SELECT count(*) FROM crm_appointments WHERE status = 'confirmed'") == 2
    )


async def test_the_do_not_call_list_is_checked_before_every_dial(pool: asyncpg.Pool) -> None:
    await seed_day(pool, VISIT_DAY, PATIENTS[:3])
    clock = Clock(datetime(2026, 12, 2, 17, 0, tzinfo=MSK))
    cid = await _campaign(pool)
    store = CampaignStore(pool)
    await store.add_dnc(["+79990000102"], "import")  # after the list was built, before dialling
    dials = Dials()
    pbx = await start_pbx(50.0, answer=1.0, noanswer=0.0, busy=0.0, congestion=0.0)
    ami = await ami_client(pbx, dials)
    runner, _ = make_runner(pool, ami, ScriptedConversation({}, default=[Input("dtmf", "1")]),
                            clock, instance="t1", channels=2, webhook=FakeWebhook())  # fmt: skip
    try:
        await store.set_state(cid, "running")
        await runner.start()
        await wait_done(pool, cid)
    finally:
        await runner.aclose()
        await ami.aclose()
        await pbx.aclose()
    assert "79990000102" not in dials.begun and sum(dials.begun.values()) == 2
    assert (
        await pool.fetchval("SELECT count(*) FROM campaign_dials WHERE phone = '+79990000102'") == 0
    )
    assert (
        await pool.fetchval("SELECT outcome FROM campaign_targets WHERE phone = '+79990000102'")
        == "do_not_call"
    )
