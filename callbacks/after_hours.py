"""Callback jobs for calls routing sent away from the queue (after hours → voicemail, or a
callback request): when such a call ends, a callback request goes to the CRM through its outbox
(when a CRM is enabled), keyed by the call id so a replay never creates two, and a callback job
is created (merged into the number's open job) for the scheduler to dial in business hours.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Protocol

from callbacks.models import JobSpec
from callserver.core.events import CallEnded, DomainEvent
from callserver.core.phone import mask, try_normalize
from callserver.core.queue_worker import QueueWorker

log = logging.getLogger(__name__)

CALLBACK_MODES = frozenset({"voicemail", "callback"})
QUEUE_SIZE = 10_000
STEP_TIMEOUT = 10.0
"""Seconds one call may take (decision lookup + outbox insert) before it is given up, logged."""


class Decision(Protocol):
    @property
    def mode(self) -> str: ...

    @property
    def reasons(self) -> Sequence[str]: ...


class RouteRecord(Protocol):
    """The part of routing's decision record read here (the ``route_decisions`` port)."""

    @property
    def decision(self) -> Decision: ...

    @property
    def patient_id(self) -> str | None: ...


class Decisions(Protocol):
    async def record_for(self, call_id: str) -> RouteRecord | None: ...


class CallbackSink(Protocol):
    """The CRM's ``crm_requests`` port."""

    async def request_callback(
        self, *, phone: str, request_id: str, reason: str = ..., patient_id: str = ...,
        call_id: str = ..., comment: str = ...,
    ) -> None: ...  # fmt: skip


class JobSink(Protocol):
    async def submit(self, spec: JobSpec) -> str: ...


class AfterHoursCallbacks(QueueWorker[CallEnded]):
    """Bus subscriber (``submit``) plus an owned task (``start``/``aclose``)."""

    task_name = "after-hours-callbacks"

    def __init__(
        self, decisions: Decisions, sink: CallbackSink | None, jobs: JobSink | None = None
    ) -> None:
        self._decisions = decisions
        self._sink = sink
        self._jobs = jobs
        super().__init__(maxsize=QUEUE_SIZE, step_timeout=STEP_TIMEOUT)
        self.created = 0

    def submit(self, event: DomainEvent) -> None:
        if not isinstance(event, CallEnded) or event.call.direction != "inbound":
            return
        self.offer(event)

    def _failed(self, event: CallEnded, exc: Exception) -> None:
        log.warning("callback job for call %s not created: %r", event.call.id, exc)

    async def handle(self, event: CallEnded) -> bool:
        """Create the callback request if routing sent this call to voicemail/callback and the
        caller never reached an operator. Returns whether one was created."""
        call = event.call
        if call.answered_at is not None:
            return False
        record = await self._decisions.record_for(call.linkedid)
        if record is None or record.decision.mode not in CALLBACK_MODES:
            return False
        phone = try_normalize(call.caller)
        if phone is None:
            log.info(
                "call %s: no callback, caller ID %s is not a number", call.id, mask(call.caller)
            )
            return False
        reasons = list(record.decision.reasons)
        reason = reasons[0] if reasons else "after_hours"
        comment = f"routing: {record.decision.mode} ({','.join(reasons)})"
        if self._sink is not None:
            await self._sink.request_callback(
                phone=phone, reason=reason, patient_id=record.patient_id or "", call_id=call.id,
                comment=comment, request_id=f"route-{call.id}",
            )  # fmt: skip
        if self._jobs is not None:
            await self._jobs.submit(
                JobSpec(phone, reason, call.ad_source, call.queue, call.id,
                        record.patient_id or "", comment=comment, missed_at=call.started_at)
            )  # fmt: skip
        self.created += 1
        return True
