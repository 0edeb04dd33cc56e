"""Virtual hold's exact place: a placeholder channel waits in the queue for the caller.

When a caller accepts virtual hold (``vhold_accept``), callserver Originates
``Local/<digits>@callbacks-vhold-slot/n``: its ``;2`` half runs
``Queue(${VHOLD_QUEUE},t,,,,,,,${VHOLD_POSITION})`` — app_queue's *position* argument puts it at
the caller's own place (``VirtualQueue.position``) — and once a member answers it, the ``;1``
half continues in ``dial_context`` (``Dial(PJSIP/<patient>@trunk)`` with the clinic's caller
ID). Asterisk itself keeps the place: no race with live callers for a freed operator.

The attempt is a normal callback attempt: the job (``virtual_hold``, priority 1000) and a
``dialing`` attempt row whose operator is the placeholder channel, under a lease, recorded by
the scheduler (``answered``/``busy``/``no_answer``…; nobody took the slot within
``vhold_max_wait_s``: ``operator_no_answer``, and the scheduler dials it agent-first later).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass

from callbacks.models import JobSpec
from callbacks.scheduler import Scheduler, Slot, SlotDialer
from callbacks.store import CallbackStore
from callserver.core.phone import mask

log = logging.getLogger(__name__)

PRIORITY = 1000
"""Above every other callback: a virtual-hold caller is already at its place in a queue."""
QUEUE_NAME = re.compile(r"[A-Za-z0-9_.\-]{1,80}")
"""Queue names put into the Originate's ``Variable`` (from AMI: never trusted blindly)."""


@dataclass(frozen=True)
class SlotSettings:
    context: str = "callbacks-vhold-slot"
    max_wait_s: float = 3600.0
    owner: str = ""
    lease_s: float = 30.0


class SlotPlacer:
    def __init__(self, store: CallbackStore, scheduler: Scheduler, dialer: SlotDialer,
                 clock: Callable[[], float], settings: SlotSettings) -> None:  # fmt: skip
        self._store, self._scheduler, self._dialer = store, scheduler, dialer
        self._clock, self._s = clock, settings
        self.placed = 0

    async def place(self, queue: str, position: int, phone: str, call_id: str) -> bool:
        """Open the job's attempt and start the placeholder; False when it cannot be placed
        (bad queue name, the job is being dialled or claimed): the caller's fallback."""
        if not QUEUE_NAME.fullmatch(queue) or position < 1:
            return False
        digits = "".join(ch for ch in phone if ch.isdigit())
        now = self._clock()
        spec = JobSpec(phone, "virtual_hold", queue=queue, call_id=call_id, priority=PRIORITY)
        # not due until the slot's wait is over: the scheduler must not dial it meanwhile
        job_id, _ = await self._store.upsert_job(spec, now=now, next_at=now + self._s.max_wait_s)
        channel = f"Local/{digits}@{self._s.context}/n"
        job = await self._store.claim_job(job_id, operator=channel, owner=self._s.owner,
                                          now=now, lease_until=now + self._s.lease_s)  # fmt: skip
        if job is None:
            log.info("virtual hold: job %s of %s is busy; no placeholder", job_id, mask(phone))
            return False
        self._scheduler.place_slot(job, Slot(channel, queue, position, self._s.max_wait_s),
                                   self._dialer)  # fmt: skip
        self.placed += 1
        return True
