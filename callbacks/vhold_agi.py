"""Virtual hold on the live system: the bus feeds one ``VirtualQueue`` per queue; two FastAGI
scripts let the dialplan offer and accept. An accepted caller's place is taken at once by a
placeholder channel queued at that position (``vhold_slot.py``); only when it cannot be placed
does the entry stay virtual and become a top-priority job when due (see ``vhold.py`` for the
position-keeping rules, README for the dialplan).

* ``agi://callserver/vhold_offer`` (before and while queued): sets ``VHOLD_OFFER`` = 1 when the
  caller's estimated wait exceeds ``vhold_threshold_s`` (and ``VHOLD_WAIT`` = seconds).
* ``agi://callserver/vhold_accept[,${CHANNEL(linkedid)}]`` (after the caller pressed the key
  that exits the queue): the caller's entry turns virtual, keeping its place; sets
  ``VHOLD_ACCEPTED`` = 1 and ``VHOLD_POSITION``; 0 when the caller ID is not a number or the
  call is not waiting in a queue.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from callbacks.models import JobSpec
from callbacks.vhold import VirtualQueue, estimated_wait, should_offer
from callserver.asterisk.agi_codec import AgiEnvironment
from callserver.asterisk.errors import AgiError
from callserver.core.events import (
    CallAbandoned,
    CallAnswered,
    CallEnded,
    CallQueued,
    DomainEvent,
)
from callserver.core.phone import mask, try_normalize
from callserver.core.tasks import cancel_and_wait
from callserver.plugin_api import LiveView

log = logging.getLogger(__name__)

PRIORITY = 1000
"""Above every other callback: a due virtual entry is the head of its queue."""
ACCEPTED_MAX = 10_000

Placer = Callable[[str, int, str, str], Awaitable[bool]]
"""(queue, position, phone, call id) → whether a placeholder now holds the caller's place."""


class AgiVars(Protocol):
    """The part of ``callserver.asterisk.agi_server.AgiSession`` used here."""

    env: AgiEnvironment

    async def set_variable(self, name: str, value: str) -> None: ...


class Jobs(Protocol):
    async def submit(self, spec: JobSpec) -> str: ...


@dataclass(frozen=True)
class VholdSettings:
    threshold_s: float = 120.0
    mean_handle_s: float = 180.0


class VirtualHold:
    def __init__(self, jobs: Jobs, live: LiveView, settings: VholdSettings,
                 placer: Placer | None = None) -> None:  # fmt: skip
        self._jobs, self._live, self._s, self._placer = jobs, live, settings, placer
        self.queues: dict[str, VirtualQueue] = {}
        self._due: asyncio.Queue[tuple[str, str, str]] = asyncio.Queue(10_000)
        self._task: asyncio.Task[None] | None = None
        self._placing: set[asyncio.Task[None]] = set()
        self._accepted_calls: OrderedDict[str, None] = OrderedDict()
        self.accepted = 0
        self.placed = 0

    def accepted_call(self, call_id: str) -> bool:
        """Whether the caller of ``call_id`` accepted virtual hold (its hang-up is no miss)."""
        return call_id in self._accepted_calls

    def _queue(self, name: str) -> VirtualQueue:
        return self.queues.setdefault(name, VirtualQueue(name))

    def submit(self, event: DomainEvent) -> None:
        """Bus subscriber: joins and leaves (cheap, in memory); due entries go to the task."""
        if isinstance(event, CallQueued):  # at app_queue's position (a placeholder's own)
            self._queue(event.queue).join(event.call.id, position=event.position or None)
            return
        if not isinstance(event, CallAnswered | CallAbandoned | CallEnded):
            return
        for q in self.queues.values():
            q.leave(event.call.id)
            self._flush(q)

    def _flush(self, q: VirtualQueue) -> None:
        """Hand the queue's due virtual entries to the task (once: they leave the queue)."""
        for entry in q.due():
            q.served(entry.id)
            try:
                self._due.put_nowait((q.name, entry.id, entry.phone))
            except asyncio.QueueFull:
                log.error("virtual hold: callback for %s lost (queue full)", mask(entry.phone))

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="callbacks-vhold")

    async def aclose(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)
        for t in list(self._placing):
            await cancel_and_wait(t)

    async def _run(self) -> None:
        while True:
            queue, call_id, phone = await self._due.get()
            try:
                await self._jobs.submit(JobSpec(phone, "virtual_hold", queue=queue,
                                                call_id=call_id, priority=PRIORITY))  # fmt: skip
                self.placed += 1
            except Exception as exc:
                log.error("virtual hold: callback job for %s not created: %r", mask(phone), exc)

    def _place(self, queue: str, position: int, phone: str, call_id: str) -> None:
        """Start the placeholder (owned task); if it cannot be placed the callback becomes a
        top-priority job at once (the old way: the next free operator, place not guaranteed)."""
        placer = self._placer
        assert placer is not None

        async def run() -> None:
            try:
                if await placer(queue, position, phone, call_id):
                    self.placed += 1
                    return
            except Exception as exc:
                log.error("virtual hold: placeholder for %s failed: %r", mask(phone), exc)
            try:
                self._due.put_nowait((queue, call_id, phone))
            except asyncio.QueueFull:
                log.error("virtual hold: callback for %s lost (queue full)", mask(phone))

        task = asyncio.create_task(run(), name="callbacks-vhold-place")
        self._placing.add(task)
        task.add_done_callback(self._placing.discard)

    def _waiting(self, uniqueid: str, linkedid: str) -> tuple[str, int, float] | None:
        """(queue, position, estimated wait) of a waiting caller."""
        for name, snap in self._live.queues().items():
            for w in snap.waiting:
                if w.uniqueid == uniqueid or w.call_id == linkedid:
                    wait = estimated_wait(w.position, self._s.mean_handle_s, snap.free_agents,
                                          snap.logged_in_agents)  # fmt: skip
                    return name, w.position, wait
        return None

    async def offer(self, session: AgiVars) -> None:
        """``vhold_offer``: should this caller be offered a callback?"""
        env = session.env
        found = self._waiting(env.uniqueid, env.args[0] if env.args else env.uniqueid)
        offer = found is not None and should_offer(found[2], self._s.threshold_s, found[1])
        try:
            await session.set_variable("VHOLD_OFFER", "1" if offer else "0")
            await session.set_variable("VHOLD_WAIT", str(int(found[2])) if found else "0")
        except AgiError as exc:
            log.info("vhold_offer: %s", exc.message)

    async def accept(self, session: AgiVars) -> None:
        """``vhold_accept``: the caller's entry turns virtual and keeps its place."""
        env = session.env
        linkedid = env.args[0] if env.args and env.args[0] else env.uniqueid
        phone = try_normalize(env.callerid)
        entry = None
        for q in self.queues.values():
            if phone is not None and q.go_virtual(linkedid, phone):
                entry = (q.name, q.position(linkedid) or 0)
                if self._placer is not None:  # the placeholder takes the place at once
                    q.served(linkedid)
                    self._place(q.name, entry[1], phone, linkedid)
                self._flush(q)  # nobody ahead: due at once
                break
        if entry is not None:
            self.accepted += 1
            self._accepted_calls[linkedid] = None
            if len(self._accepted_calls) > ACCEPTED_MAX:
                self._accepted_calls.popitem(last=False)
            log.info("virtual hold: %s keeps place %d in %s", mask(phone), entry[1], entry[0])
        try:
            await session.set_variable("VHOLD_ACCEPTED", "1" if entry else "0")
            await session.set_variable("VHOLD_POSITION", str(entry[1]) if entry else "0")
        except AgiError as exc:
            log.info("vhold_accept: %s", exc.message)
