"""Callback jobs: create (merging repeated misses), close, claim, record operators' results,
and tell operators' browsers. The ``callback_jobs`` port is this service.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from callbacks.errors import InvalidRequest, JobConflict, JobNotFound, StoreUnavailable
from callbacks.models import EXPLICIT_REASONS, OPERATOR_RESULTS, JobSpec, job_dict
from callbacks.notify import Notifier
from callbacks.policy import RetryPolicy, priority
from callbacks.ports import OperatorDirectory, PatientLookup
from callbacks.store import CallbackStore
from callserver.core.phone import PhoneNumberError, mask, normalize_phone

log = logging.getLogger(__name__)

ATTEMPT_FIELDS = ("id", "n", "operator", "result", "cause", "started_at", "ended_at", "state")
LOOKUP_BUDGET_S = 0.5
"""A slow CRM never delays a job: without the card the job has no patient name, no VIP bonus."""


def zone(name: str) -> ZoneInfo | None:
    if not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


@dataclass
class ServiceParts:
    store: CallbackStore
    policy: RetryPolicy
    clock: Callable[[], float]
    notifier: Notifier
    lookup: PatientLookup | None = None
    paid_sources: frozenset[str] = frozenset()
    claim_ttl_s: float = 900.0
    wake: Callable[[], None] = field(default=lambda: None)
    ready: asyncio.Event | None = None
    """Set once the schema exists (``PluginDeps.database_ready``); None: always ready."""
    directory: Callable[[], OperatorDirectory | None] = field(default=lambda: None)
    """Desk's operator directory (a late port): people's names instead of interfaces."""


class CallbackService:
    def __init__(self, parts: ServiceParts) -> None:
        self._p = parts
        self.created = 0
        self.merged = 0
        self.skipped_dnc = 0
        self.closed_by_call = 0

    def wake_with(self, wake: Callable[[], None]) -> None:
        """Call ``wake`` (the scheduler) whenever a job becomes due or changes."""
        self._p.wake = wake

    @property
    def store(self) -> CallbackStore:
        """The store, once the schema exists; raises StoreUnavailable (503) before."""
        if self._p.ready is not None and not self._p.ready.is_set():
            raise StoreUnavailable(message="callbacks: database not ready yet (migrations)")
        return self._p.store

    async def create_job(
        self, *, phone: str, reason: str, source: str = "", queue: str = "", call_id: str = "",
        patient_id: str = "", comment: str = "", due_at: float | None = None,
    ) -> str:  # fmt: skip
        """The ``callback_jobs`` port: a job for ``phone`` (merged into its open job). Returns
        the job id, or "" when the number is on the do-not-call list and the patient did not
        ask (``reason`` not an explicit request). Raises PhoneNumberError (invalid)."""
        spec = JobSpec(normalize_phone(phone), reason, source, queue, call_id, patient_id,
                       comment=comment[:2000], due_at=due_at or 0.0)  # fmt: skip
        return await self.submit(spec)

    async def submit(self, spec: JobSpec) -> str:
        """Create or merge the job (see ``create_job``); raises StoreUnavailable before the
        schema exists."""
        p, store = self._p, self.store
        if spec.reason not in EXPLICIT_REASONS and await store.is_dnc(spec.phone):
            self.skipped_dnc += 1
            log.info("no callback job for %s: do-not-call list", mask(spec.phone))
            return ""
        spec = await self._with_patient(spec)
        now = p.clock()
        tz = zone(spec.patient_tz)
        next_at = p.policy.allowed_at(max(now, spec.due_at), tz)
        job_id, created = await self.store.upsert_job(spec, now=now, next_at=next_at)
        if created:
            self.created += 1
        else:
            self.merged += 1
        log.info("callback job %s %s for %s (%s)", job_id, "created" if created else "merged",
                 mask(spec.phone), spec.reason)  # fmt: skip
        p.wake()
        await self.publish(job_id)
        return job_id

    async def _with_patient(self, spec: JobSpec) -> JobSpec:
        p = self._p
        vip = False
        if p.lookup is not None:
            try:
                async with asyncio.timeout(LOOKUP_BUDGET_S):
                    card = await p.lookup.lookup(spec.phone)
            except Exception as exc:  # a CRM failure must not lose the miss
                log.warning("patient lookup for %s failed: %r", mask(spec.phone), exc)
                card = None
            if card is not None:
                vip = bool(card.vip)
                spec = replace(spec, patient_id=spec.patient_id or card.id,
                               patient_name=spec.patient_name or card.full_name)  # fmt: skip
        score = priority(source=spec.source, paid_sources=p.paid_sources, vip=vip,
                         reason=spec.reason)  # fmt: skip
        return replace(spec, priority=max(score, spec.priority))

    async def close_for_phone(self, phone: str, outcome: str = "patient_called") -> list[str]:
        """Finish every unfinished job of ``phone`` (E.164)."""
        closed = await self.store.close_for_phone(phone, outcome, self._p.clock())
        for job_id in closed:
            self.closed_by_call += 1
            log.info("callback job %s closed: %s", job_id, outcome)
            await self.publish(job_id)
        return closed

    async def get(self, job_id: str) -> dict[str, Any]:
        row = await self.store.get(job_id)
        if row is None:
            raise JobNotFound(message=f"no callback job {job_id!r}", job_id=job_id)
        job = job_dict(row)
        directory = self._p.directory()
        job["attempt_log"] = [
            {**{k: a[k] for k in ATTEMPT_FIELDS},
             "operator_name": directory.name_for(a["operator"]) if directory else a["operator"]}
            for a in await self.store.attempts_of(job_id)
        ]  # fmt: skip
        return job

    async def claim(self, job_id: str, user: str) -> dict[str, Any]:
        """The operator ``user`` takes the job; raises JobNotFound / JobConflict."""
        until = self._p.clock() + self._p.claim_ttl_s
        row = await self.store.claim_manual(job_id, user, until)
        if row is None:
            await self._conflict(job_id, "taken by someone else, being dialled, or finished")
        await self.publish(job_id)
        return job_dict(row)

    async def record_result(self, job_id: str, user: str, result: str, note: str) -> dict[str, Any]:
        """An operator's result: reached/booked/not_needed finish the job; no_answer/busy count
        an attempt and schedule the next one by the retry policy."""
        if result not in OPERATOR_RESULTS:
            raise InvalidRequest(message=f"result must be one of {', '.join(OPERATOR_RESULTS)}",
                                 field="result")  # fmt: skip
        p = self._p
        current = await self.store.get(job_id)
        if current is None:
            raise JobNotFound(message=f"no callback job {job_id!r}", job_id=job_id)
        now = p.clock()
        next_at: float | None = None
        if result in ("no_answer", "busy"):
            next_at = p.policy.after(now, current["attempts"] + 1, result,
                                     zone(current["patient_tz"]))  # fmt: skip
        outcome = result if result in ("reached", "booked", "not_needed") else "max_attempts"
        finished = next_at is None
        row = await self.store.operator_result(
            job_id, user=user, result=result, note=note[:2000], now=now,
            next_at=None if finished else next_at, outcome=outcome,
        )  # fmt: skip
        if row is None:
            await self._conflict(job_id, "claimed by someone else, being dialled, or finished")
        p.wake()
        await self.publish(job_id)
        return job_dict(row)

    async def _conflict(self, job_id: str, why: str) -> None:
        if await self.store.get(job_id) is None:
            raise JobNotFound(message=f"no callback job {job_id!r}", job_id=job_id)
        raise JobConflict(message=f"callback job {job_id}: {why}", job_id=job_id)

    async def publish(self, job_id: str) -> None:
        """Tell operators' browsers the job changed (``{"type": "callback_job", "job": …}``)."""
        if not self._p.notifier.enabled:
            return
        row = await self.store.get(job_id)
        if row is not None:
            self._p.notifier.broadcast({"type": "callback_job", "job": job_dict(row)})


def parse_phone(raw: object, field_name: str = "phone") -> str:
    """E.164 or InvalidRequest naming the field and the reason."""
    try:
        return normalize_phone(raw if isinstance(raw, str) else "")
    except PhoneNumberError as exc:
        raise InvalidRequest(message=f"{field_name}: {exc.message}", field=field_name,
                             reason=exc.details.get("reason", "")) from None  # fmt: skip
