"""Call records of finished calls → the CRM outbox, in batches, never dropped.

The bus subscriber (``submit``) appends the CallEnded / CallAbandoned to a pending list and
returns: no bound, no drop (a bounded queue in front of the outbox used to drop every call past
10,000 during a burst, each with its own ERROR line). Memory is accounted (``pending``,
``pending_peak``) and bounded by throughput: one task writes up to ``batch_size`` records per
statement (``PushQueue.enqueue_many``), far faster than calls end. While the outbox is down the
records wait and the task retries with capped exponential back-off (a ``BufferedWorker``).
Problems are summarised in one log line per ``summary_interval`` seconds, never one line per
call.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from itertools import islice
from typing import Any

from callserver.core.backoff import Backoff
from callserver.core.buffered_worker import BufferedWorker
from callserver.core.events import CallAbandoned, CallEnded
from callserver.core.phone import try_normalize
from callserver.web.health import ComponentHealth
from crm_bridge.errors import CrmError
from crm_bridge.ports import PushQueue
from crm_bridge.wire import call_record_from_event, push_payload

log = logging.getLogger(__name__)

Finished = CallEnded | CallAbandoned
Item = tuple[str, Mapping[str, Any], str]


@dataclass(frozen=True, slots=True)
class RecordWriterSettings:
    """Seconds unless named otherwise."""

    batch_size: int = 500
    """Records per statement."""
    retry_min: float = 0.2
    retry_max: float = 5.0
    summary_interval: float = 10.0
    close_timeout: float = 5.0
    backlog_degraded: int = 20_000
    """``health`` says degraded beyond this many pending records (a few seconds of writing)."""
    """``aclose`` waits this long for the pending records to be written."""


class CallRecordWriter(BufferedWorker):
    """Owns one task between ``start()`` and ``aclose()``. Counters (plain attributes):
    ``queued`` (outbox rows written), ``duplicates`` (already queued: the same call twice),
    ``unbuildable`` (a finished call no record could be built from: a bug, logged with its
    traceback once per interval), ``refused`` (rows PostgreSQL refused for good),
    ``pending_peak``; property ``pending``."""

    def __init__(
        self,
        outbox: PushQueue,
        settings: RecordWriterSettings | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._outbox = outbox
        self._s = settings or RecordWriterSettings()
        # unjittered: retry_min, then doubling up to retry_max, as before the BufferedWorker
        super().__init__(Backoff(self._s.retry_min, self._s.retry_max, jitter=0.0),
                         self._s.close_timeout)  # fmt: skip
        self._clock = clock
        self._pending: deque[Finished] = deque()
        self._written = asyncio.Event()  # set while nothing is pending
        self._written.set()
        self.queued = self.duplicates = self.unbuildable = self.refused = 0
        self.pending_peak = 0
        self._window: dict[str, int] = {}
        self._window_start = clock()
        self._last_problem = ""
        self._down_since: float | None = None

    @property
    def pending(self) -> int:
        """Finished calls whose record is not in the outbox yet."""
        return len(self._pending)

    async def wait_written(self) -> None:
        """Return when nothing is pending (bound it with ``asyncio.timeout``)."""
        await self._written.wait()

    async def health(self) -> ComponentHealth:
        """A ``/healthz`` check (no I/O): ``degraded`` while the outbox is unreachable or a
        backlog of more than ``backlog_degraded`` records waits; ``pending``/``peak`` in extra."""
        extra = {"pending": len(self._pending), "peak": self.pending_peak, "queued": self.queued}
        if self._down_since is not None:
            down = self._clock() - self._down_since
            return ComponentHealth("degraded", f"outbox unavailable for {down:.0f} s", extra)
        if len(self._pending) > self._s.backlog_degraded:
            return ComponentHealth("degraded", "call records waiting for the outbox", extra)
        return ComponentHealth("ok", extra=extra)

    def submit(self, event: Finished) -> None:
        """Keep ``event`` for the writer; returns at once, never drops."""
        self._pending.append(event)
        self._written.clear()
        if len(self._pending) > self.pending_peak:
            self.pending_peak = len(self._pending)
        self.wake()

    task_name = "crm-call-records"

    async def aclose(self) -> None:
        """Write what is pending (at most ``close_timeout`` s), then stop the task. Records
        still pending then (outbox down) are counted in one ERROR line. Nothing happens when
        the writer was never started."""
        if self._task is None:
            return
        await self._stop()
        self._summarise(force=True)
        if self._pending:
            log.error("CRM: %d call records not written to the outbox at shutdown: %s",
                      len(self._pending), self._last_problem or "outbox unavailable")  # fmt: skip

    # -- the writing task (BufferedWorker) ------------------------------------------------------

    def _has_work(self) -> bool:
        return bool(self._pending)

    async def _probe(self) -> bool:
        return True  # the outbox is found up or down by writing to it

    async def _wait_idle(self) -> None:
        """Nothing pending: the summary line is due even while no call ends."""
        self._summarise()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._s.summary_interval):
                await self._wakeup.wait()

    async def _flush_once(self) -> bool:
        batch = list(islice(self._pending, self._s.batch_size))
        try:
            await self._write(batch)
        except CrmError as exc:  # the outbox is unavailable: keep the batch, back off
            self._outage(exc)
            return False
        self._back()
        for _ in batch:
            self._pending.popleft()
        if not self._pending:
            self._written.set()
        self._summarise()
        return True

    async def _write(self, batch: list[Finished]) -> None:
        items = [item for item in map(self._item, batch) if item is not None]
        refused = 0
        try:
            new = await self._outbox.enqueue_many(items)
        except CrmError as exc:
            if exc.details.get("transient", True):
                raise
            new, refused = await self._write_one_by_one(items)  # find the refused row(s)
        self._count("queued", new)
        self._count("refused", refused)
        self._count("duplicates", len(items) - new - refused)

    async def _write_one_by_one(self, items: list[Item]) -> tuple[int, int]:
        """``(new, refused)``; raises the CrmError of an outbox that became unavailable."""
        new = refused = 0
        for item in items:
            try:
                new += await self._outbox.enqueue_many([item])
            except CrmError as exc:
                if exc.details.get("transient", True):
                    raise
                refused += 1
                self._last_problem = f"{item[2]!r} refused: {exc}"
        return new, refused

    def _item(self, event: Finished) -> Item | None:
        try:
            record = call_record_from_event(event)
            kind, data = push_payload(record)
        except Exception as exc:  # one bad call must not hold back (or lose) every later one
            self._count("unbuildable")
            if self._window.get("unbuildable", 0) == 1:  # a traceback once per interval
                log.exception("CRM: no call record can be built for call %r", event.call_id)
            self._last_problem = f"call {event.call_id!r}: {type(exc).__name__}: {exc}"
            return None
        if data.get("phone"):
            data["phone"] = try_normalize(data["phone"]) or data["phone"]
        return kind, data, record.idempotency_key

    def _count(self, name: str, n: int = 1) -> None:
        setattr(self, name, getattr(self, name) + n)
        self._window[name] = self._window.get(name, 0) + n

    def _outage(self, exc: CrmError) -> None:
        self._last_problem = str(exc)
        if self._down_since is None:
            self._down_since = self._clock()
            log.warning("CRM outbox unavailable, call records kept in memory and retried: %s", exc)
        self._summarise()

    def _back(self) -> None:
        if self._down_since is not None:
            log.warning("CRM outbox back after %.1f s", self._clock() - self._down_since)
            self._down_since = None

    def _summarise(self, *, force: bool = False) -> None:
        """One line per ``summary_interval``: written, pending, problems. Quiet when idle."""
        now = self._clock()
        if not force and now - self._window_start < self._s.summary_interval:
            return
        w, self._window, self._window_start = self._window, {}, now
        trouble = w.get("unbuildable", 0) + w.get("refused", 0)
        if not trouble and self._down_since is None and len(self._pending) < self._s.batch_size:
            if w.get("queued", 0) >= 10 * self._s.batch_size:
                log.info("CRM: %d call records written to the outbox", w["queued"])
            return
        log.log(
            logging.ERROR if trouble else logging.WARNING,
            "CRM call records: %d written, %d pending (peak %d), %d unbuildable, %d refused,"
            " outbox %s; last problem: %s",
            w.get("queued", 0), len(self._pending), self.pending_peak, w.get("unbuildable", 0),
            w.get("refused", 0), "down" if self._down_since is not None else "up",
            self._last_problem or "none",
        )  # fmt: skip
        if self._down_since is None:
            self._last_problem = ""
