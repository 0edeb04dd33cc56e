"""Callback jobs on a real PostgreSQL: merging, closing, operators' claims and results, the
do-not-call list, two schedulers sharing the table, and reconciling a dead instance's attempt.
The dialer and live view are small fakes of our own ports; the clock is set by the test."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import asyncpg
import pytest

from callbacks.dialer import DialOutcome
from callbacks.errors import JobConflict
from callbacks.models import JobSpec
from callbacks.store import CallbackStore
from callbacks.vhold_slot import SlotPlacer, SlotSettings
from callserver.core.events import CallSnapshot
from tests.integration.callbacks_support import (
    Clock,
    FakeDialer,
    FakeLive,
    agent,
    make_scheduler,
    make_service,
    migrated_pool,
)

pytestmark = pytest.mark.integration


async def test_repeated_misses_merge_into_one_open_job(fresh_pg_dsn: str) -> None:
    async with migrated_pool(fresh_pg_dsn) as pool:
        clock = Clock()
        svc = make_service(pool, clock)
        a = await svc.submit(JobSpec("+79035550101", "abandoned", "source-b", "reception", "c1"))
        clock.t += 60
        b = await svc.submit(JobSpec("+79035550101", "ivr_hangup", "", "", "c2"))
        c = await svc.submit(JobSpec("+79035550101", "abandoned", "", "", "c2"))  # a replay
        other = await svc.submit(JobSpec("+79161234567", "abandoned"))
        assert a == b == c != other
        job = await svc.get(a)
        assert job["missed_count"] == 2
        assert job["state"] == "open" and job["reason"] == "abandoned"
        assert job["source"] == "source-b" and job["queue"] == "reception"
        assert svc.created == 2 and svc.merged == 2


async def test_a_patient_reaching_an_operator_closes_the_job(fresh_pg_dsn: str) -> None:
    async with migrated_pool(fresh_pg_dsn) as pool:
        svc = make_service(pool, Clock())
        job_id = await svc.submit(JobSpec("+79035550101", "abandoned"))
        assert await svc.close_for_phone("+79035550101") == [job_id]
        job = await svc.get(job_id)
        assert job["state"] == "done" and job["outcome"] == "patient_called"
        # the next miss opens a new job
        assert await svc.submit(JobSpec("+79035550101", "abandoned")) != job_id


async def test_claim_and_results(fresh_pg_dsn: str) -> None:
    async with migrated_pool(fresh_pg_dsn) as pool:
        clock = Clock()
        svc = make_service(pool, clock)
        job_id = await svc.submit(JobSpec("+79035550101", "abandoned"))
        assert (await svc.claim(job_id, "u-anna"))["claimed_by"] == "u-anna"
        with pytest.raises(JobConflict):
            await svc.claim(job_id, "u-boris")
        with pytest.raises(JobConflict):
            await svc.record_result(job_id, "u-boris", "reached", "")
        busy = await svc.record_result(job_id, "u-anna", "busy", "занято")
        assert busy["state"] == "open" and busy["attempts"] == 1
        assert busy["next_attempt_at"] == pytest.approx(clock.t + 300)  # policy: +5 min
        booked = await svc.record_result(job_id, "u-boris", "booked", "записан на 12:00")
        assert booked["state"] == "done" and booked["outcome"] == "booked"


async def test_do_not_call_stops_detected_misses_not_requests(fresh_pg_dsn: str) -> None:
    async with migrated_pool(fresh_pg_dsn) as pool:
        clock = Clock()
        svc = make_service(pool, clock)
        await CallbackStore(pool).add_dnc("+79035550101", "asked", "sup", clock.t)
        assert await svc.submit(JobSpec("+79035550101", "abandoned")) == ""
        assert await svc.submit(JobSpec("+79035550101", "web_form")) != ""


async def test_scheduler_dials_due_jobs_and_retries_a_busy_patient(fresh_pg_dsn: str) -> None:
    async with migrated_pool(fresh_pg_dsn) as pool:
        clock = Clock()
        svc = make_service(pool, clock)
        live = FakeLive([agent("PJSIP/op101")])
        dialer = FakeDialer({"+79035550105": "busy"})
        sched = make_scheduler(pool, clock, live, dialer, "A")
        job_id = await svc.submit(JobSpec("+79035550105", "abandoned", queue="reception"))
        assert await sched.tick() == 1
        await sched.drain()
        job = await svc.get(job_id)
        assert job["state"] == "open" and job["attempts"] == 1 and job["last_result"] == "busy"
        assert job["next_attempt_at"] == pytest.approx(clock.t + 300)
        assert await sched.tick() == 0  # not due yet
        clock.t += 301
        assert await sched.tick() == 1
        await sched.drain()
        job = await svc.get(job_id)
        assert job["attempts"] == 2 and job["next_attempt_at"] == pytest.approx(clock.t + 1800)
        assert [a["result"] for a in job["attempt_log"]] == ["busy", "busy"]


async def test_no_free_operator_waits(fresh_pg_dsn: str) -> None:
    async with migrated_pool(fresh_pg_dsn) as pool:
        clock = Clock()
        svc = make_service(pool, clock)
        live = FakeLive([])
        sched = make_scheduler(pool, clock, live, FakeDialer(), "A")
        job_id = await svc.submit(JobSpec("+79035550101", "abandoned", queue="reception"))
        assert await sched.tick() == 0
        live.free = [agent("PJSIP/op102", ("other",))]  # not a member of the job's queue
        assert await sched.tick() == 0
        live.free = [agent("PJSIP/op103")]
        assert await sched.tick() == 1
        await sched.drain()
        job = await svc.get(job_id)
        assert job["state"] == "done" and job["outcome"] == "reached"
        assert job["attempt_log"][0]["operator"] == "PJSIP/op103"


async def test_paid_source_and_vip_first(fresh_pg_dsn: str) -> None:
    from callbacks.config import CallbacksConfig

    async with migrated_pool(fresh_pg_dsn) as pool:
        clock = Clock()
        cfg = CallbacksConfig(paid_sources=("yandex",))
        svc = make_service(pool, clock, cfg)
        await svc.submit(JobSpec("+79035550101", "abandoned"))
        await svc.submit(JobSpec("+79035550102", "abandoned", source="yandex"))
        dialer = FakeDialer()
        sched = make_scheduler(pool, clock, FakeLive([agent("PJSIP/op101")]), dialer, "A", cfg)
        await sched.tick()
        await sched.drain()
        assert dialer.dials[0].phone == "+79035550102"


async def test_two_schedulers_share_the_table_without_double_dialing(fresh_pg_dsn: str) -> None:
    """Two instances, each seeing the same six free operators in its own live model: every job
    is dialled exactly once, never one patient or one operator twice at the same moment."""
    async with migrated_pool(fresh_pg_dsn) as pool:
        clock = Clock()
        svc = make_service(pool, clock)
        phones = [f"+7903555{n:04d}" for n in range(40)]
        for phone in phones:
            await svc.submit(JobSpec(phone, "abandoned", queue="reception"))
        ops = [agent(f"PJSIP/op{n}") for n in range(101, 107)]
        dialers = [FakeDialer(seconds=0.03), FakeDialer(seconds=0.03)]
        scheds = [make_scheduler(pool, clock, FakeLive(ops), d, name)
                  for d, name in zip(dialers, "AB", strict=True)]  # fmt: skip
        for _ in range(200):
            await asyncio.gather(*(s.tick() for s in scheds))
            await asyncio.sleep(0.005)
            if sum(len(d.dials) for d in dialers) >= len(phones) and not any(
                s.in_flight for s in scheds
            ):
                break
        for s in scheds:
            await s.drain()
        dials = [d for fake in dialers for d in fake.dials]
        assert sorted(d.phone for d in dials) == sorted(phones)  # each exactly once
        assert all(fake.dials for fake in dialers)  # both instances worked
        for a, b in itertools.combinations(dials, 2):
            overlap = a.started < b.ended and b.started < a.ended
            assert not (overlap and a.operator == b.operator), (a, b)
        rows = await pool.fetch("SELECT state, outcome FROM callback_jobs")
        assert {(r["state"], r["outcome"]) for r in rows} == {("done", "reached")}


async def _dead_instance_attempt(pool: asyncpg.Pool, clock: Clock, svc_phone: str) -> str:
    """Instance A claims a job and dies mid-dial (nothing after the claim runs)."""
    svc = make_service(pool, clock)
    job_id = await svc.submit(JobSpec(svc_phone, "abandoned", queue="reception"))
    claimed = await CallbackStore(pool).claim_due(
        now=clock.t, operator="PJSIP/op101", queues=["reception"], any_queue=True, owner="A",
        lease_until=clock.t + 30,
    )  # fmt: skip
    assert claimed is not None and claimed.id == job_id
    await CallbackStore(pool).set_uniqueid(claimed.attempt_id, "1700.42")
    return job_id


async def test_a_dead_instances_attempt_is_recorded_once_and_retried_later(
    fresh_pg_dsn: str,
) -> None:
    async with migrated_pool(fresh_pg_dsn) as pool:
        clock = Clock()
        job_id = await _dead_instance_attempt(pool, clock, "+79035550101")
        dialer = FakeDialer()
        b = make_scheduler(pool, clock, FakeLive([agent("PJSIP/op102")]), dialer, "B")
        await b.reconcile(clock.t + 10)  # lease still valid: A may be alive
        assert await b.tick() == 0  # the job is active: not dialled twice
        clock.t += 31
        await asyncio.gather(b.reconcile(clock.t), b.reconcile(clock.t))
        svc = make_service(pool, clock)
        job = await svc.get(job_id)
        assert [a["result"] for a in job["attempt_log"]] == ["interrupted"]
        assert job["state"] == "open" and job["attempts"] == 1
        assert job["next_attempt_at"] == pytest.approx(clock.t + 120)  # reconcile gap
        assert await b.tick() == 0 and dialer.dials == []
        clock.t += 121
        assert await b.tick() == 1
        await b.drain()
        job = await svc.get(job_id)
        assert [a["result"] for a in job["attempt_log"]] == ["interrupted", "answered"]


async def test_a_dead_instances_live_call_is_adopted(fresh_pg_dsn: str) -> None:
    async with migrated_pool(fresh_pg_dsn) as pool:
        clock = Clock()
        job_id = await _dead_instance_attempt(pool, clock, "+79035550101")
        live_call = CallSnapshot(
            id="1700.42", linkedid="1700.42", direction="internal", state="ringing",
            caller="79035550101", caller_name="", did="", ad_source="", queue="", agent="",
            agent_name="", started_at=clock.t,
        )  # fmt: skip
        dialer = FakeDialer()
        b = make_scheduler(pool, clock, FakeLive([], [live_call]), dialer, "B")
        clock.t += 31
        await b.reconcile(clock.t)
        await b.drain()
        assert dialer.waited == ["1700.42"] and dialer.dials == []
        job = await make_service(pool, clock).get(job_id)
        assert [a["result"] for a in job["attempt_log"]] == ["answered"]
        assert job["state"] == "done" and job["outcome"] == "reached"


class Browser:
    def __init__(self) -> None:
        self.frames: list[tuple[str, dict[str, object]]] = []

    async def push(self, extension: str, frame: dict[str, object]) -> None:
        self.frames.append((extension, frame))


async def test_operators_get_a_screen_pop_and_live_job_changes(fresh_pg_dsn: str) -> None:
    from callbacks.config import CallbacksConfig
    from callbacks.notify import Notifier
    from callbacks.plugin import retry_policy
    from callbacks.scheduler import Scheduler, SchedulerSettings
    from callbacks.service import CallbackService, ServiceParts

    async with migrated_pool(fresh_pg_dsn) as pool:
        clock, browser = Clock(), Browser()
        live = FakeLive([agent("PJSIP/op101")])
        notifier = Notifier(lambda: browser)
        await notifier.start()
        try:
            store, policy = CallbackStore(pool), retry_policy(CallbacksConfig())
            svc = CallbackService(ServiceParts(store, policy, clock, notifier))
            sched = Scheduler(store, FakeDialer(), live, policy, clock, notifier,
                              SchedulerSettings("A"))
            sched.publish_job = svc.publish
            await svc.submit(JobSpec("+79035550101", "abandoned", source="yandex",
                                     queue="reception", missed_at=clock.t - 60))  # fmt: skip
            await sched.tick()
            await sched.drain()
            for _ in range(50):
                if len(browser.frames) >= 4:
                    break
                await asyncio.sleep(0.01)
        finally:
            await notifier.aclose()
        kinds = [(ext, f["type"]) for ext, f in browser.frames]
        assert kinds == [("*", "callback_job"), ("PJSIP/op101", "callback_pop"),
                         ("*", "callback_job"), ("*", "callback_job")]
        pop = browser.frames[1][1]
        assert pop["text"] == (
            "Перезвонить +79035550101, пропущен в 09:59, источник yandex, попыток: 0")
        jobs = [f["job"] for _, f in browser.frames if f["type"] == "callback_job"]
        states = [j["state"] for j in jobs]  # type: ignore[index]
        assert states == ["open", "active", "done"]


async def test_a_forgotten_claim_returns_to_the_pool(fresh_pg_dsn: str) -> None:
    async with migrated_pool(fresh_pg_dsn) as pool:
        clock = Clock()
        svc = make_service(pool, clock)
        job_id = await svc.submit(JobSpec("+79035550101", "abandoned", queue="reception"))
        await svc.claim(job_id, "u-anna")
        dialer = FakeDialer()
        sched = make_scheduler(pool, clock, FakeLive([agent("PJSIP/op101")]), dialer, "A")
        assert await sched.tick() == 0  # claimed by hand: not auto-dialled
        clock.t += 901  # claim_ttl_s
        assert await sched.tick() == 1
        await sched.drain()
        assert (await svc.get(job_id))["outcome"] == "reached"


async def test_the_callback_jobs_port(fresh_pg_dsn: str) -> None:
    from callserver.core.phone import PhoneNumberError

    async with migrated_pool(fresh_pg_dsn) as pool:
        clock = Clock()
        svc = make_service(pool, clock)
        job_id = await svc.create_job(phone="8 903 555-01-01", reason="bot", source="ari-line",
                                      comment="бот: перезвонить после 18", due_at=clock.t + 3600)
        job = await svc.get(job_id)
        assert (job["phone"], job["reason"], job["priority"]) == ("+79035550101", "bot", 1)
        assert job["next_attempt_at"] == pytest.approx(clock.t + 3600)
        with pytest.raises(PhoneNumberError):
            await svc.create_job(phone="anonymous", reason="bot")


class SlotDialer:
    """Answers each placeholder Originate with ``result`` after a short wait."""

    def __init__(self, result: str) -> None:
        self.result = result
        self.sent: list[tuple[str, str, dict[str, str], float]] = []
        self.release = asyncio.Event()
        self.originated = asyncio.Event()

    async def originate_slot(self, *, attempt_id: str, channel: str, phone: str,
                             caller_id: str, label: str, variables: Any, wait_s: float,
                             on_uniqueid: Any = None) -> DialOutcome:  # fmt: skip
        self.sent.append((channel, phone, dict(variables), wait_s))
        self.originated.set()
        if on_uniqueid is not None:
            await on_uniqueid(f"u-{attempt_id}")
        await self.release.wait()
        return DialOutcome(self.result, "ANSWER" if self.result == "answered" else "reason 0")


async def test_a_virtual_hold_placeholder_is_a_leased_attempt(fresh_pg_dsn: str) -> None:
    async with migrated_pool(fresh_pg_dsn) as pool:
        clock = Clock()
        live = FakeLive([agent("PJSIP/op101")])
        sched = make_scheduler(pool, clock, live, FakeDialer(), "A")
        slots = SlotDialer("answered")
        placer = SlotPlacer(CallbackStore(pool), sched, slots, clock,
                            SlotSettings("callbacks-vhold-slot", 600.0, "A", 30.0))  # fmt: skip
        assert not await placer.place("recep\r\ntion", 2, "+79035550102", "1795.2")
        assert await placer.place("reception", 2, "+79035550102", "1795.2")
        async with asyncio.timeout(5):
            await slots.originated.wait()  # the attempt's task Originates
        assert slots.sent == [("Local/79035550102@callbacks-vhold-slot/n", "+79035550102",
                               {"VHOLD_QUEUE": "reception", "VHOLD_POSITION": "2"}, 600.0)]
        job = (await pool.fetch("SELECT * FROM callback_jobs"))[0]
        assert (job["state"], job["reason"], job["priority"]) == ("active", "virtual_hold", 1000)
        # the free operator is not given the job while its placeholder waits in the queue
        assert await sched.tick() == 0
        # nor can a second accept of the same patient place another one
        assert not await placer.place("reception", 1, "+79035550102", "1795.9")
        slots.release.set()
        await sched.drain()
        job = await pool.fetchrow("SELECT * FROM callback_jobs WHERE id = $1", job["id"])
        assert (job["state"], job["outcome"], job["attempts"]) == ("done", "reached", 1)
        (attempt,) = await pool.fetch("SELECT * FROM callback_attempts")
        assert (attempt["operator"], attempt["result"], attempt["uniqueid"]) == (
            "Local/79035550102@callbacks-vhold-slot/n", "answered", f"u-{attempt['id']}")


async def test_a_placeholder_nobody_took_is_dialled_agent_first(fresh_pg_dsn: str) -> None:
    async with migrated_pool(fresh_pg_dsn) as pool:
        clock = Clock()
        dialer = FakeDialer()
        sched = make_scheduler(pool, clock, FakeLive([agent("PJSIP/op101")]), dialer, "A")
        slots = SlotDialer("operator_no_answer")
        slots.release.set()
        placer = SlotPlacer(CallbackStore(pool), sched, slots, clock,
                            SlotSettings("callbacks-vhold-slot", 600.0, "A", 30.0))  # fmt: skip
        assert await placer.place("reception", 1, "+79035550102", "1795.2")
        await sched.drain()
        job = (await pool.fetch("SELECT * FROM callback_jobs"))[0]
        assert (job["state"], job["attempts"], job["priority"]) == ("open", 0, 1000)
        clock.t += 5.0  # operator_retry_s
        assert await sched.tick() == 1
        await sched.drain()
        assert [(d.phone, d.operator) for d in dialer.dials] == [("+79035550102", "PJSIP/op101")]
