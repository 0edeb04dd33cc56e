"""Screen-pop: the card on an operator's screen before pickup, following the call.

A bus subscriber (synchronous, never blocks). The patient lookup starts when the call appears
(``CallStarted`` with a caller ID; routing's greeting and queueing take seconds), so when
``AgentRinging`` comes the card goes out at once from inside the subscriber; a lookup still
running gets an owned task that waits for it (at most ``lookup_timeout`` s).

Card states per operator: ``ringing`` → ``talking`` (this operator answered) → ``wrapup`` (the
call ended; kept until the outcome is saved or the card dismissed); ``gone`` when this phone
stopped ringing (AgentRingNoAnswer, answered elsewhere, caller gave up).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from callserver.core.events import (
    AgentRinging,
    AgentRingNoAnswer,
    CallAbandoned,
    CallAnswered,
    CallEnded,
    CallQueued,
    CallSnapshot,
    CallStarted,
    DomainEvent,
)  # fmt: skip
from callserver.core.phone import mask, try_normalize
from callserver.core.tasks import cancel_and_wait
from callserver.errors import CallserverError
from desk import policy
from desk.directory import OperatorDirectory
from desk.hub import OperatorHub, dumps
from desk.models import Pop
from desk.ports import Patient, PatientLookup
from desk.scripts import ScriptBook

log = logging.getLogger(__name__)
MAX_WRAPUP_PER_OPERATOR = 20
Found = tuple[str, Patient | None]
"""(``found`` | ``unknown`` | ``unavailable``, the patient)."""


@dataclass(frozen=True)
class PopSettings:
    timezone: str
    paid_sources: tuple[str, ...]
    recording_url: str
    lookup_timeout: float
    """Seconds a pop waits for the patient lookup before going out without it."""


class ScreenPop:
    def __init__(self, hub: OperatorHub, directory: OperatorDirectory, lookup: PatientLookup | None,
                 scripts: ScriptBook, settings: PopSettings) -> None:  # fmt: skip
        self._hub, self._directory, self._lookup = hub, directory, lookup
        self._scripts, self._settings = scripts, settings
        self._tz = ZoneInfo(settings.timezone)
        self._pops: dict[str, dict[str, Pop]] = {}
        self._by_call: dict[str, set[str]] = {}
        self._lookups: dict[str, asyncio.Task[Found]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.popped = 0

    # the bus subscriber ----------------------------------------------------------------
    def on_event(self, event: DomainEvent) -> None:
        if isinstance(event, CallStarted | CallQueued):
            if event.call.caller and event.call.direction != "outbound":
                self._prefetch(event.call)
        elif isinstance(event, AgentRinging):
            self._ringing(event)
        elif isinstance(event, AgentRingNoAnswer):
            self._set(event.call.id, event.agent.lower(), "gone", reason="no_answer")
        elif isinstance(event, CallAnswered):
            self._answered(event)
        elif isinstance(event, CallAbandoned):
            for ext in tuple(self._by_call.get(event.call.id, ())):
                self._set(event.call.id, ext, "gone", reason="abandoned")
        elif isinstance(event, CallEnded):
            self._ended(event.call)

    # what operators' pages read ----------------------------------------------------------
    def pops_of(self, extension: str) -> list[Pop]:
        return list(self._pops.get(extension.lower(), {}).values())

    def pop(self, extension: str, call_id: str) -> Pop | None:
        return self._pops.get(extension.lower(), {}).get(call_id)

    def close(self, extension: str, call_id: str, reason: str) -> bool:
        """Remove a card (outcome saved, dismissed); the operator's browsers are told."""
        return self._set(call_id, extension.lower(), "closed", reason=reason)

    def annotate(self, extension: str, call_id: str, **extra: Any) -> None:
        """Add data to a card (a click-to-call result) and show it again."""
        pop = self.pop(extension, call_id)
        if pop is not None:
            pop.extra.update(extra)
            self._hub.push_text(pop.extension, dumps(pop.frame()))

    def notify(self, extension: str, frame: dict[str, Any]) -> None:
        """Send any frame to the operator's browsers."""
        self._hub.push_text(extension, dumps(frame))

    async def aclose(self) -> None:
        for task in (*self._tasks, *self._lookups.values()):
            task.cancel()
        for task in (*self._tasks, *self._lookups.values()):
            await cancel_and_wait(task)

    async def start(self) -> None:
        return None

    # internals --------------------------------------------------------------------------
    def _prefetch(self, call: CallSnapshot) -> asyncio.Task[Found]:
        task = self._lookups.get(call.id)
        if task is None:
            task = asyncio.get_running_loop().create_task(self._find(call.caller))
            self._lookups[call.id] = task
        return task

    async def _find(self, caller: str) -> Found:
        phone = try_normalize(caller)
        if phone is None or self._lookup is None:
            return ("unknown" if self._lookup is not None else "unavailable", None)
        try:
            async with asyncio.timeout(self._settings.lookup_timeout):
                patient = await self._lookup.lookup(phone)
        except (CallserverError, TimeoutError) as exc:
            log.warning("screen-pop: patient lookup for %s failed: %r", mask(phone), exc)
            return ("unavailable", None)
        return ("found", patient) if patient is not None else ("unknown", None)

    def _ringing(self, event: AgentRinging) -> None:
        task = self._prefetch(event.call)
        if task.done() and not task.cancelled():
            self._show(event, task.result())
            return
        waiter = asyncio.get_running_loop().create_task(self._show_later(event, task))
        self._tasks.add(waiter)
        waiter.add_done_callback(self._tasks.discard)

    async def _show_later(self, event: AgentRinging, task: asyncio.Task[Found]) -> None:
        try:
            found = await asyncio.shield(task)
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if task.cancelled() and current is not None and not current.cancelling():
                return  # the call ended before the lookup finished
            raise
        except Exception:
            log.exception("screen-pop: lookup for call %s failed", event.call.id)
            found = ("unavailable", None)
        self._show(event, found)

    def _show(self, event: AgentRinging, found: Found) -> None:
        ext = event.agent.lower()
        if event.call.id not in self._lookups:
            return  # the call ended while its lookup ran
        pop = Pop(event.call.id, ext, self._card(event, found))
        self._pops.setdefault(ext, {})[event.call.id] = pop
        self._by_call.setdefault(event.call.id, set()).add(ext)
        self.popped += 1
        self._hub.push_text(ext, dumps(pop.frame()))

    def _card(self, event: AgentRinging, found: Found) -> dict[str, Any]:
        call, (status, patient) = event.call, found
        variables = dict(call.variables)
        operator = self._directory.name_for(event.agent)
        segment = patient.segment if patient is not None and patient.segment else (
            "new" if status == "unknown" else "default")
        script = self._scripts.for_segment(segment)
        today = datetime.fromtimestamp(event.at, self._tz).date()
        return {
            "call_id": call.id, "caller": try_normalize(call.caller) or call.caller,
            "caller_name": call.caller_name, "did": call.did, "ad_source": call.ad_source,
            "paid": policy.is_paid(call.ad_source, self._settings.paid_sources),
            "queue": event.queue or call.queue, "routing": policy.routing_of(variables),
            "operator": operator, "started_at": call.started_at, "ringing_at": event.at,
            "lookup": status, "segment": segment,
            "patient": None if patient is None else policy.patient_dict(
                patient, today, self._directory.name_for(patient.coordinator)
                if patient.coordinator else ""),
            "script": {"title": script["title"], "body": policy.script_text(
                script["body"], operator=operator,
                patient=patient.full_name if patient is not None else "")},
        }  # fmt: skip

    def _answered(self, event: CallAnswered) -> None:
        agent = event.agent.lower()
        for ext in tuple(self._by_call.get(event.call.id, ())):
            if ext == agent:
                self._set(event.call.id, ext, "talking", answered_at=event.at)
            else:
                self._set(event.call.id, ext, "gone", reason="answered_elsewhere")

    def _ended(self, call: CallSnapshot) -> None:
        task = self._lookups.pop(call.id, None)
        if task is not None and not task.done():
            task.cancel()
        link = policy.recording_link(dict(call.variables), self._settings.recording_url)
        for ext in tuple(self._by_call.get(call.id, ())):
            pop = self._pops[ext][call.id]
            if pop.state == "talking":
                self._set(call.id, ext, "wrapup", ended_at=call.ended_at,
                          talk_seconds=call.talk_seconds, recording=link)  # fmt: skip
            elif pop.state not in ("wrapup",):
                self._set(call.id, ext, "gone", reason="ended")

    def _set(self, call_id: str, ext: str, state: str, **extra: Any) -> bool:
        pop = self._pops.get(ext, {}).get(call_id)
        if pop is None:
            return False
        pop.state = state
        pop.extra.update(extra)
        self._hub.push_text(ext, dumps(pop.frame()))
        if state in ("gone", "closed"):
            del self._pops[ext][call_id]
            exts = self._by_call.get(call_id, set())
            exts.discard(ext)
            if not exts:
                self._by_call.pop(call_id, None)
        elif state == "wrapup":
            self._trim(ext)
        return True

    def _trim(self, ext: str) -> None:
        wrapups = [p for p in self._pops[ext].values() if p.state == "wrapup"]
        for old in wrapups[: max(0, len(wrapups) - MAX_WRAPUP_PER_OPERATOR)]:
            self._set(old.call_id, ext, "closed", reason="too_many")
