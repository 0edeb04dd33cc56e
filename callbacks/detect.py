"""Missed calls from the bus → callback jobs; a patient who reached an operator → jobs closed.

* ``CallAbandoned`` (inbound): ``abandoned``, or ``queue_timeout`` when held until the queue's
  timeout — at once, not at the call's end, so the first attempt can start within seconds.
* ``CallEnded`` (inbound): ``rang_out`` (queued, never answered, no abandon), ``ivr_hangup``
  (hung up before reaching a queue), ``short_call`` (answered but shorter than ``short_call_s``
  after a wait of ``busy_wait_s``) — ``policy.classify_ended``. Calls routing sent to
  voicemail/callback are the after-hours path's (``after_hours.py``).
* ``CallAnswered`` (inbound, a queue member answered): the caller's unfinished jobs close
  (``patient_called``).

The subscriber only enqueues (the bus must never block); one owned task does the I/O.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol

from callbacks.models import JobSpec
from callbacks.policy import CallFacts, MissRules, classify_abandon, classify_ended
from callserver.core.events import CallAbandoned, CallAnswered, CallEnded, DomainEvent
from callserver.core.phone import mask, try_normalize
from callserver.core.queue_worker import QueueWorker

log = logging.getLogger(__name__)

QUEUE_SIZE = 10_000
STEP_TIMEOUT_S = 10.0


class Jobs(Protocol):
    async def submit(self, spec: JobSpec) -> str: ...

    async def close_for_phone(self, phone: str, outcome: str = ...) -> list[str]: ...


def facts(event: CallEnded) -> CallFacts:
    c = event.call
    return CallFacts(
        c.direction, c.state, c.started_at, c.ended_at or event.at, c.queued_at, c.answered_at,
        c.talk_seconds, c.wait_seconds, dict(c.variables).get("ROUTE_MODE", ""),
    )  # fmt: skip


class MissDetector(QueueWorker[DomainEvent]):
    """Bus subscriber (``submit``) plus an owned task (``start``/``aclose``)."""

    task_name = "callbacks-detect"

    def __init__(self, jobs: Jobs, rules: MissRules, ring_out_s: float,
                 skip: Callable[[str], bool] = lambda call_id: False) -> None:  # fmt: skip
        self._jobs = jobs
        self._skip = skip
        """Calls that are no miss (a caller who accepted virtual hold hangs up on purpose)."""
        self._rules = rules
        self._ring_out_s = ring_out_s
        super().__init__(maxsize=QUEUE_SIZE, step_timeout=STEP_TIMEOUT_S)
        self.misses: dict[str, int] = {}

    def submit(self, event: DomainEvent) -> None:
        if not isinstance(event, CallAbandoned | CallEnded | CallAnswered):
            return
        if event.call.direction != "inbound":
            return
        if not isinstance(event, CallAnswered) and self._skip(event.call.id):
            return
        self.offer(event)

    def _failed(self, event: DomainEvent, exc: Exception) -> None:
        log.warning("callbacks: %s of call %s not handled: %r", event.type,
                    getattr(event, "call_id", "?"), exc)  # fmt: skip

    async def handle(self, event: DomainEvent) -> str | None:
        """Act on one event; returns the miss reason when a job was submitted."""
        if not isinstance(event, CallAbandoned | CallEnded | CallAnswered):
            return None
        phone = try_normalize(event.call.caller)
        if phone is None:
            if not isinstance(event, CallAnswered):
                log.info("call %s: no callback, caller ID %s is not a number", event.call.id,
                         mask(event.call.caller))  # fmt: skip
            return None
        if isinstance(event, CallAnswered):
            await self._jobs.close_for_phone(phone, "patient_called")
            return None
        if isinstance(event, CallAbandoned):
            reason: str | None = classify_abandon(event.wait_seconds, self._ring_out_s)
            queue = event.queue or event.call.queue
        else:
            reason, queue = classify_ended(facts(event), self._rules), event.call.queue
        if reason is None:
            return None
        self.misses[reason] = self.misses.get(reason, 0) + 1
        c = event.call
        await self._jobs.submit(
            JobSpec(phone, reason, c.ad_source, queue, c.id, missed_at=event.at,
                    name=c.caller_name if c.caller_name != c.caller else "")
        )
        return reason
