"""The callback scheduler: free operators × due jobs → agent-first attempts; leases; reconcile.

Each tick (woken at once by a new job or an operator's status change, else every
``poll_interval_s``): for each free operator (live model: ``not_inuse``, not paused, not in a
call) claim the most urgent due job of its queues (``FOR UPDATE SKIP LOCKED``) and dial it in an
owned task that renews the attempt's lease every third of ``lease_s``. Every ``lease_s / 3`` the
tick also reconciles attempts whose owner died (kill -9, host lost): if their call is still live
(by Linkedid, or by the patient's number as the operator leg's caller ID) the call is adopted
and its real result recorded; otherwise the attempt is recorded once as ``interrupted`` and the
job waits ``reconcile_gap_s`` before it is dialled again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from callbacks.dialer import DialOutcome
from callbacks.lease import hold_lease
from callbacks.models import LOST, ClaimedJob
from callbacks.notify import Notifier
from callbacks.policy import RetryPolicy, counts_as_attempt
from callbacks.service import zone
from callbacks.store import CallbackStore, Expired
from callserver.core.events import (
    AgentSnapshot,
    AgentStatusChanged,
    DomainEvent,
    ModelResynced,
)
from callserver.core.phone import mask
from callserver.core.tasks import cancel_and_wait
from callserver.plugin_api import LiveView

log = logging.getLogger(__name__)


class Dialer(Protocol):
    async def originate(
        self, *, attempt_id: str, operator: str, phone: str, caller_id: str, label: str,
        on_uniqueid: Callable[[str], Awaitable[None]] | None = ..., ring_s: float | None = ...,
    ) -> DialOutcome: ...  # fmt: skip

    async def wait_end(self, uniqueid: str) -> DialOutcome: ...


class SlotDialer(Protocol):
    """Virtual hold's placeholder Originate (``AgentFirstDialer.originate_slot``)."""

    async def originate_slot(
        self, *, attempt_id: str, channel: str, phone: str, caller_id: str, label: str,
        variables: Mapping[str, str], wait_s: float,
        on_uniqueid: Callable[[str], Awaitable[None]] | None = ...,
    ) -> DialOutcome: ...  # fmt: skip


@dataclass(frozen=True)
class Slot:
    """Where a virtual-hold placeholder queues: ``channel`` (``Local/…@…-slot/n``) joins
    ``queue`` at ``position`` and waits at most ``wait_s``."""

    channel: str
    queue: str
    position: int
    wait_s: float


MIN_TICK_S = 0.25
"""Seconds between two ticks at the least (a wake-up meanwhile is kept for the next one)."""


@dataclass(frozen=True)
class SchedulerSettings:
    owner: str
    """This instance (``ServerInfo.instance_id``): the lease owner."""
    lease_s: float = 30.0
    poll_interval_s: float = 0.5
    reconcile_gap_s: float = 120.0
    caller_id: str = ""
    queues: frozenset[str] = frozenset()
    timezone: str = "Europe/Moscow"


class Scheduler:
    def __init__(
        self, store: CallbackStore, dialer: Dialer, live: LiveView, policy: RetryPolicy,
        clock: Callable[[], float], notifier: Notifier, settings: SchedulerSettings,
    ) -> None:  # fmt: skip
        self._store, self._dialer, self._live = store, dialer, live
        self._policy, self._clock, self._notifier, self._s = policy, clock, notifier, settings
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._attempts: set[asyncio.Task[None]] = set()
        self._dialing: set[str] = set()
        self._next_maintenance = 0.0
        self.ami_ready: Callable[[], bool] = lambda: True
        self.synced = False
        """Reconcile only after the live model was rebuilt from Asterisk (``ModelResynced``):
        before that a dead instance's live call would look gone and be dialled again."""
        self.on_finished: Callable[[str, str], object] | None = None
        self.publish_job: Callable[[str], Awaitable[None]] | None = None
        """Tell browsers a job changed (the service's ``publish``), after a claim and a result."""
        self.results: Counter[str] = Counter()
        self.first_delays: deque[float] = deque(maxlen=1000)
        self.adopted = 0
        self.interrupted = 0
        self.errors = 0

    # ---- lifecycle ------------------------------------------------------------------------

    def wake(self) -> None:
        self._wake.set()

    def submit(self, event: DomainEvent) -> None:
        """Bus subscriber: an operator's status changed → maybe someone is free now; the live
        model was rebuilt from Asterisk → dead instances' calls can be recognised now."""
        if isinstance(event, AgentStatusChanged):
            self._wake.set()
        elif isinstance(event, ModelResynced):
            self.synced = True
            self._wake.set()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="callbacks-scheduler")

    async def aclose(self) -> None:
        """Stop; attempts in flight keep their rows (``dialing``): their leases expire and the
        next instance reconciles them, as after a crash."""
        task, self._task = self._task, None
        await cancel_and_wait(task)
        for t in list(self._attempts):
            await cancel_and_wait(t)

    async def drain(self) -> None:
        """Wait until the attempts in flight have finished (tests, a graceful hand-over)."""
        while self._attempts:
            await asyncio.gather(*self._attempts, return_exceptions=True)

    @property
    def in_flight(self) -> int:
        return len(self._attempts)

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            try:
                await self.tick()
            except Exception as exc:  # the database may be briefly away: keep going
                self.errors += 1
                log.warning("callback scheduler tick failed: %r", exc)
            # operators' statuses change many times a second in a busy center: one tick per
            # MIN_TICK_S at most, not one (with its database query) per change
            await asyncio.sleep(MIN_TICK_S)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._s.poll_interval_s):
                    await self._wake.wait()

    # ---- one tick -------------------------------------------------------------------------

    async def tick(self) -> int:
        """Reconcile when due, then start one attempt per free operator with a due job.
        Returns how many attempts started."""
        now = self._clock()
        if now >= self._next_maintenance:
            self._next_maintenance = now + self._s.lease_s / 3
            await self._store.reopen_stale_claims(now)
            if self.synced and self.ami_ready():
                await self.reconcile(now)
        started = 0
        free = self.free_operators()
        if not free or not await self._store.any_due(now):
            return 0
        for agent in free:
            queues = [q for q in agent.queues if not self._s.queues or q in self._s.queues]
            job = await self._store.claim_due(
                now=now, operator=agent.interface, queues=queues, any_queue=False,
                owner=self._s.owner, lease_until=now + self._s.lease_s,
            )  # fmt: skip
            if job is None:
                continue
            started += 1
            self._spawn(self._attempt(job), agent.interface)
        return started

    def free_operators(self) -> list[AgentSnapshot]:
        return [
            a for a in self._live.agents()
            if a.status == "not_inuse" and not a.paused and not a.in_call
            and a.interface not in self._dialing
            and (not self._s.queues or self._s.queues & set(a.queues))
        ]  # fmt: skip

    def _spawn(self, coro: Coroutine[Any, Any, None], operator: str) -> None:
        self._dialing.add(operator)
        task = asyncio.create_task(coro)
        self._attempts.add(task)

        def done(t: asyncio.Task[None]) -> None:
            self._attempts.discard(t)
            self._dialing.discard(operator)
            self._wake.set()  # the operator may take the next job
            if not t.cancelled() and t.exception() is not None:
                self.errors += 1
                log.error("callback attempt failed: %r", t.exception())

        task.add_done_callback(done)

    # ---- one attempt ----------------------------------------------------------------------

    async def _attempt(self, job: ClaimedJob) -> None:
        if job.attempts == 0:
            self.first_delays.append(max(0.0, self._clock() - job.missed_at))
        self._notifier.push(job.operator, self.pop_frame(job))
        await self._publish(job.id)
        async with self._lease(job.attempt_id):
            outcome = await self._dialer.originate(
                attempt_id=job.attempt_id, operator=job.operator, phone=job.phone,
                caller_id=self._s.caller_id, label=f"Перезвон {job.patient_name}".strip(),
                on_uniqueid=lambda u: self._store.set_uniqueid(job.attempt_id, u),
            )  # fmt: skip
        await self.finish(job.attempt_id, job.id, job.attempts, job.patient_tz, outcome)

    def place_slot(self, job: ClaimedJob, slot: Slot, dialer: SlotDialer) -> None:
        """Virtual hold: dial ``job`` (claimed with ``slot.channel`` as its operator) through a
        placeholder that keeps the caller's place in the queue; recorded like any attempt."""
        self._spawn(self._slot_attempt(job, slot, dialer), slot.channel)

    async def _slot_attempt(self, job: ClaimedJob, slot: Slot, dialer: SlotDialer) -> None:
        await self._publish(job.id)
        async with self._lease(job.attempt_id):
            outcome = await dialer.originate_slot(
                attempt_id=job.attempt_id, channel=slot.channel, phone=job.phone,
                caller_id=self._s.caller_id, label=f"Перезвон {job.patient_name}".strip(),
                variables={"VHOLD_QUEUE": slot.queue, "VHOLD_POSITION": str(slot.position)},
                wait_s=slot.wait_s,
                on_uniqueid=lambda u: self._store.set_uniqueid(job.attempt_id, u),
            )  # fmt: skip
        await self.finish(job.attempt_id, job.id, job.attempts, job.patient_tz, outcome)

    def _lease(self, attempt_id: str) -> contextlib.AbstractAsyncContextManager[None]:
        return hold_lease(self._store, attempt_id, self._s.owner, self._s.lease_s, self._clock)

    async def finish(
        self, attempt_id: str, job_id: str | None, attempts: int, tz: str, outcome: DialOutcome
    ) -> bool:
        """Record the attempt once and schedule the job (policy)."""
        now = self._clock()
        counted = 1 if counts_as_attempt(outcome.result) else 0
        total = attempts + counted
        next_at = self._policy.after(now, total, outcome.result, zone(tz))
        final = "reached" if outcome.result == "answered" else "max_attempts"
        recorded = await self._store.finish_attempt(
            attempt_id, result=outcome.result, cause=outcome.cause[:200], now=now,
            counted=counted, next_at=next_at, outcome=final,
        )  # fmt: skip
        if recorded:
            self.results[outcome.result] += 1
            log.info("callback attempt %s of job %s: %s", attempt_id, job_id, outcome.result)
            if self.on_finished is not None:
                self.on_finished(attempt_id, outcome.result)
            await self._publish(job_id)
        return recorded

    async def _publish(self, job_id: str | None) -> None:
        if job_id and self.publish_job is not None:
            try:
                await self.publish_job(job_id)
            except Exception as exc:  # a notification never fails an attempt
                log.warning("callback job %s change not published: %r", job_id, exc)

    def pop_frame(self, job: ClaimedJob) -> dict[str, object]:
        missed = datetime.fromtimestamp(job.missed_at, zone(self._s.timezone)).strftime("%H:%M")
        source = f", источник {job.source}" if job.source else ""
        text = (f"Перезвонить {job.phone}, пропущен в {missed}{source}, "
                f"попыток: {job.attempts}")  # fmt: skip
        return {"type": "callback_pop", "job_id": job.id, "phone": job.phone,
                "patient_name": job.patient_name, "reason": job.reason, "source": job.source,
                "queue": job.queue, "missed_at": job.missed_at, "attempts": job.attempts,
                "missed_count": job.missed_count, "text": text}  # fmt: skip

    # ---- reconcile ------------------------------------------------------------------------

    async def reconcile(self, now: float) -> None:
        """Dead instances' attempts are adopted (call still live) or recorded once as
        ``interrupted``."""
        for e in await self._store.expired(now):
            if not await self._store.take_over(e.id, self._s.owner, now, now + self._s.lease_s):
                continue  # another instance got it
            linkedid = self._live_call(e)
            if linkedid:
                self.adopted += 1
                log.info("callback attempt %s: adopting live call %s", e.id, linkedid)
                self._spawn(self._adopt(e, linkedid), f"adopt:{e.id}")
                continue
            self.interrupted += 1
            await self._store.finish_attempt(
                e.id, result=LOST, cause="owner died; call gone", now=now, counted=1,
                next_at=self._after_lost(now, e), outcome="max_attempts",
            )  # fmt: skip
            log.warning("callback attempt %s to %s interrupted (owner died)", e.id, mask(e.phone))

    def _after_lost(self, now: float, e: Expired) -> float | None:
        if e.attempts + 1 >= self._policy.max_attempts:
            return None
        return self._policy.allowed_at(now + self._s.reconcile_gap_s, zone(e.patient_tz))

    def _live_call(self, e: Expired) -> str:
        digits = "".join(ch for ch in e.phone if ch.isdigit())
        for call in self._live.calls():
            if (e.uniqueid and call.id == e.uniqueid) or (
                digits and "".join(ch for ch in call.caller if ch.isdigit()) == digits
                and call.direction != "inbound"
            ):  # fmt: skip
                return call.id
        return ""

    async def _adopt(self, e: Expired, linkedid: str) -> None:
        if not e.uniqueid:  # the Originate was in flight: the call found by the patient's number
            await self._store.set_uniqueid(e.id, linkedid)
        async with self._lease(e.id):
            outcome = await self._dialer.wait_end(linkedid)
        await self.finish(e.id, e.job_id, e.attempts, e.patient_tz, outcome)
