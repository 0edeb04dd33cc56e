"""Catch-up from Asterisk's durable records: the calls callserver could not see on AMI.

While the AMI link is cut, or callserver is down (``kill -9`` and a restart), AMI events are
lost for good: a call that came and went in the gap is missing from ``calls``; a call that
spanned it was closed by resync (``callserver.core.model.RESYNC_CAUSE``) with guessed facts, or
adopted from the channel list without its DID, queue or wait. Asterisk keeps the truth in its
``cdr`` table (``cdr_pgsql``) and the realtime ``queue_log`` table: ``CdrCatchup`` reads them
(``[database] cdr_dsn``) and merges them into ``calls``.

A pass (``run_once``): read the calls whose last CDR ended after (watermark − ``margin``) and
more than ``SETTLE`` seconds ago (while AMI is up: before what the live model has read, so a
call AMI is still delivering under a burst is not taken for a missed one), their CDR rows (by
``linkedid``) and queue_log rows (by ``callid`` = channel uniqueid), build each call's ``Truth``
(``callserver.store.catchup_rows``) and compare it with ``calls``:

* not in ``calls`` and inbound → the whole record is published as a ``CallEnded`` on the bus
  (``cause`` ``CATCHUP_CAUSE``): the call writer stores it, the CRM bridge queues its record,
  the other subscribers see it like any finished call;
* in ``calls`` but closed by resync, still open, or disagreeing with the records → a
  ``CallEnded`` with the corrected snapshot (the writer's merge keeps every other stored fact).
  Limit: the CRM's call record is idempotent per call id, so a CRM that already got the
  resync's record keeps that first one (the ``calls`` row is corrected);
* a call still live in the model is left for a later pass.

Idempotent: every call looked at is recorded in ``catchup_merged`` with a digest of its facts;
the same facts are never merged or published twice. The watermark is kept in
``catchup_state`` (migration ``0003_catchup.sql``). Passes run at start-up (once the schema is
there), after every AMI (re)connect and resync (``kick``) and every ``interval`` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from callserver.config import DatabaseConfig
from callserver.core.events import CallEnded, CallSnapshot, DomainEvent
from callserver.core.model import RESYNC_CAUSE
from callserver.store.catchup_rows import (
    Cdr,
    QueueLog,
    Truth,
    call_truth,
    corrections,
    new_snapshot,
)
from callserver.store.errors import StoreError
from callserver.store.open_calls import stored_call
from callserver.store.postgres import store_errors

log = logging.getLogger(__name__)

CATCHUP_CAUSE = "asterisk records (catch-up)"
"""``CallEnded.cause`` of the calls published by the catch-up."""
SETTLE = 5.0
"""Seconds: calls that ended more recently are left to the live model (AMI is faster)."""
MAX_CALL = 4 * 3600.0
"""Seconds: the longest call looked for (bounds the scans of ``cdr`` and ``queue_log``)."""
PAGE = 2000
"""Calls read per query; a pass reads page after page until it is done."""
STATE_NAME = "cdr"

_STORED_SQL = (
    "SELECT id, direction, state, caller, caller_name, did, ad_source, queue, agent, agent_name,"
    " started_at, queued_at, answered_at, ended_at, wait_seconds, talk_seconds, hold_seconds,"
    " abandon_position, hangup_by, hangup_cause, variables::text AS variables,"
    " agents::text AS agents, updated_at FROM calls WHERE id = ANY($1::text[])"
)
_ENDS_SQL = (
    "SELECT linkedid, e FROM (SELECT linkedid, extract(epoch FROM max({end}))::float8 AS e"
    " FROM cdr WHERE calldate >= to_timestamp($1) GROUP BY linkedid) AS t"
    " WHERE e <= $3 AND (e > $2 OR (e = $2 AND linkedid > $4)) ORDER BY e, linkedid LIMIT $5"
)
"""Calls (linkedid, last CDR end) after the keyset cursor ($2, $4) that ended by $3."""
_CDR_SQL = (
    "SELECT extract(epoch FROM calldate)::float8 AS start,"
    " extract(epoch FROM answer)::float8 AS answer, extract(epoch FROM {end})::float8 AS end,"
    " src, dst, dcontext, channel, dstchannel, disposition, uniqueid, linkedid,"
    " userfield, clid, {seq} AS sequence"
    " FROM cdr WHERE linkedid = ANY($1::text[]) AND calldate >= to_timestamp($2)"
)
_QLOG_SQL = (
    "SELECT extract(epoch FROM time::timestamptz)::float8 AS t, callid, queuename, agent,"
    " event, data1, data2, data3, data4, data5 FROM queue_log"
    " WHERE callid = ANY($1::text[]) AND time::timestamptz >= to_timestamp($2)"
)


@dataclass
class PassResult:
    """What one pass did (counts of calls)."""

    read: int = 0
    inserted: int = 0
    corrected: int = 0
    unchanged: int = 0
    live: int = 0


@dataclass(frozen=True)
class CatchupSettings:
    """Seconds unless named otherwise (``[database]`` keys, see ``callserver.config``)."""

    inbound_contexts: tuple[str, ...] = (
        "from-trunk",
        "route-inbound",
        "route-mode",
        "route-fallback",
    )
    interval: float = 60.0
    margin: float = 300.0
    lookback: float = 3600.0
    timeout: float = 30.0
    """Deadline of one pass's database work."""

    @classmethod
    def from_config(cls, db: DatabaseConfig) -> CatchupSettings:
        return cls(db.cdr_inbound_contexts, db.catchup_interval, db.catchup_margin,
                   db.catchup_lookback)  # fmt: skip


class CdrCatchup:
    """See the module docstring. ``pool``: callserver's database (not owned); ``cdr_dsn``:
    Asterisk's (one connection per pass); ``publish``: the bus; ``is_live(call_id)``: the live
    model still has the call; ``ami_seen()``: how far the live model has read AMI (POSIX s),
    None while AMI is down. Counters: ``passes``, ``inserted``, ``corrected``, ``errors``."""

    def __init__(self, pool: asyncpg.Pool, cdr_dsn: str, publish: Callable[[DomainEvent], None],
                 is_live: Callable[[str], bool], settings: CatchupSettings | None = None,
                 *, clock: Callable[[], float] = time.time,
                 ami_seen: Callable[[], float | None] = lambda: None) -> None:  # fmt: skip
        self._pool = pool
        self._ami_seen = ami_seen
        self._dsn = cdr_dsn
        self._publish = publish
        self._is_live = is_live
        self._s = settings or CatchupSettings()
        self._clock = clock
        self._lock = asyncio.Lock()
        self._kick = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.passes = self.inserted = self.corrected = self.errors = 0

    # -- component -------------------------------------------------------------------
    async def start(self) -> None:
        """Start the task: a pass now, then after each ``kick()`` and every ``interval``."""
        if self._task is None:
            self._kick.set()
            self._task = asyncio.create_task(self._loop(), name="cdr-catchup")

    def kick(self) -> None:
        """Ask for a pass soon (after an AMI reconnect's resync); returns at once."""
        self._kick.set()

    async def aclose(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _loop(self) -> None:
        while True:
            if not self._kick.is_set():
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._s.interval or None):
                        await self._kick.wait()
            self._kick.clear()
            try:
                await self.run_once()
            except (StoreError, TimeoutError) as exc:
                self.errors += 1
                log.warning("catch-up from Asterisk's records failed: %s", exc or "timeout")
                await asyncio.sleep(5.0)
                continue
            except Exception:  # a bug must not end the catch-up for good
                self.errors += 1
                log.exception("catch-up pass failed")
                await asyncio.sleep(5.0)
                continue

    # -- one pass --------------------------------------------------------------------
    async def run_once(self) -> PassResult:
        """One pass (see the module docstring), page by page (``PAGE`` calls, each page within
        ``timeout`` seconds). Raises ``StoreError`` (``StoreUnavailable``, ``StoreTimeout``,
        ``StoreQueryError``) or ``TimeoutError`` when a database fails; the watermark then stays
        where it was, so the next pass reads the same calls again (merged ones are skipped)."""
        async with self._lock:
            now = self._clock()
            mark = await self._watermark()
            since = (now - self._s.lookback) if mark is None else mark - self._s.margin
            seen = self._ami_seen()
            # a call AMI has not delivered yet is not missed: while AMI is up (and behind, under
            # a burst) read no further than the live model has
            until = (now if seen is None else min(now, seen)) - SETTLE
            result = PassResult()
            cursor: tuple[float, str] = (since, "")
            full = True
            while full:
                async with asyncio.timeout(self._s.timeout):
                    with store_errors("read Asterisk's cdr/queue_log"):
                        truths, cursor, full = await self._read(cursor, until)
                    await self._merge(truths, result)
            if mark is None or until > mark:
                await self._save_watermark(until)
            self.passes += 1
        if result.inserted or result.corrected:
            log.info("catch-up: %d calls read, %d added, %d corrected", result.read,
                     result.inserted, result.corrected)  # fmt: skip
        return result

    async def _read(
        self, cursor: tuple[float, str], until: float
    ) -> tuple[list[Truth], tuple[float, str], bool]:
        """The calls of one page after ``cursor`` (last end, linkedid), the new cursor and
        whether the page was full."""
        since = cursor[0]
        conn = await asyncpg.connect(self._dsn, timeout=5.0)
        try:
            end, seq = await _cdr_columns(conn)
            ends = await conn.fetch(_ENDS_SQL.format(end=end), since - MAX_CALL, since, until,
                                    cursor[1], PAGE)  # fmt: skip
            ids = [r["linkedid"] for r in ends]
            if not ids:
                return [], cursor, False
            rows = await conn.fetch(_CDR_SQL.format(end=end, seq=seq), ids, since - MAX_CALL)
            groups: dict[str, list[Cdr]] = defaultdict(list)
            for r in rows:
                groups[r["linkedid"]].append(_cdr(r))
            uids = sorted({c.uniqueid for cs in groups.values() for c in cs})
            qrows = await conn.fetch(_QLOG_SQL, uids, since - MAX_CALL)
        finally:
            with contextlib.suppress(Exception):
                await conn.close(timeout=2.0)
        truths = _truths(groups, qrows, self._s.inbound_contexts)
        return truths, (ends[-1]["e"], ends[-1]["linkedid"]), len(ids) >= PAGE

    async def _merge(self, truths: Sequence[Truth], result: PassResult) -> None:
        result.read += len(truths)
        ids = [t.id for t in truths]
        with store_errors("catch-up: read calls"):
            stored = {r["id"]: r for r in await self._pool.fetch(_STORED_SQL, ids)}
            merged = {
                r["call_id"]: r["fingerprint"]
                for r in await self._pool.fetch(
                    "SELECT call_id, fingerprint FROM catchup_merged WHERE call_id = ANY($1)", ids
                )
            }
        done: list[tuple[str, str, str]] = []
        for truth in truths:
            fp = truth.fingerprint()
            if merged.get(truth.id) == fp:
                result.unchanged += 1
            elif self._is_live(truth.id):
                result.live += 1
            else:
                done.append((truth.id, fp, self._apply(truth, stored.get(truth.id), result)))
        with store_errors("catch-up: record merged calls"):
            await self._pool.executemany(
                "INSERT INTO catchup_merged (call_id, fingerprint, action) VALUES ($1, $2, $3)"
                " ON CONFLICT (call_id) DO UPDATE SET fingerprint = EXCLUDED.fingerprint,"
                " action = EXCLUDED.action, merged_at = now()", done)  # fmt: skip

    def _apply(self, truth: Truth, row: asyncpg.Record | None, result: PassResult) -> str:
        """Publish what the records add to the call; returns the action taken."""
        if row is None:
            if not truth.inbound:
                return "skipped"
            self._end(new_snapshot(truth), truth.ended_at)
            result.inserted += 1
            self.inserted += 1
            return "inserted"
        stored = stored_call(row)
        ended_at = None if row["ended_at"] is None else row["ended_at"].timestamp()
        stored = dataclasses.replace(stored, call=dataclasses.replace(stored.call,
                                                                      ended_at=ended_at))
        fix = corrections(stored.call, ended_at, truth, row["hangup_cause"] == RESYNC_CAUSE)
        if not fix:
            result.unchanged += 1
            return "unchanged"
        # the writer keeps the newest snapshot: this one must not be older than the stored
        self._end(dataclasses.replace(stored.call, **fix),
                  max(truth.ended_at, stored.updated_at + 0.001))  # fmt: skip
        result.corrected += 1
        self.corrected += 1
        return "corrected"

    def _end(self, snapshot: CallSnapshot, at: float) -> None:
        self._publish(CallEnded(at=at, call=snapshot, talk_seconds=snapshot.talk_seconds,
                                hangup_by=snapshot.hangup_by, cause=CATCHUP_CAUSE))  # fmt: skip

    async def _watermark(self) -> float | None:
        with store_errors("catch-up: read watermark"):
            value = await self._pool.fetchval(
                "SELECT watermark FROM catchup_state WHERE name = $1", STATE_NAME
            )
        return None if value is None else float(value.timestamp())

    async def _save_watermark(self, mark: float) -> None:
        with store_errors("catch-up: save watermark"):
            await self._pool.execute(
                "INSERT INTO catchup_state (name, watermark) VALUES ($1, to_timestamp($2))"
                " ON CONFLICT (name) DO UPDATE SET watermark = EXCLUDED.watermark,"
                " updated_at = now()", STATE_NAME, mark)  # fmt: skip


async def _cdr_columns(conn: asyncpg.Connection) -> tuple[str, str]:
    """SQL of a CDR's end and sequence: ``end``/``sequence`` columns when the table has them
    (cdr_pgsql fills every column it finds), else ``calldate + duration`` and 0."""
    names = {r["column_name"] for r in await conn.fetch(
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'cdr'"
        " AND table_schema = ANY(current_schemas(false))")}  # fmt: skip
    end = "calldate + duration * interval '1 second'"
    if "end" in names:
        end = f'COALESCE("end", {end})'
    return end, ("sequence" if "sequence" in names else "0")


def _s(value: Any) -> str:
    return "" if value is None else str(value)


def _cdr(r: asyncpg.Record) -> Cdr:
    return Cdr(start=r["start"], answer=r["answer"], end=r["end"], src=_s(r["src"]),
               dst=_s(r["dst"]), dcontext=_s(r["dcontext"]), channel=_s(r["channel"]),
               dstchannel=_s(r["dstchannel"]), disposition=_s(r["disposition"]),
               uniqueid=_s(r["uniqueid"]), linkedid=_s(r["linkedid"]),
               userfield=_s(r["userfield"]), clid=_s(r["clid"]),
               sequence=int(r["sequence"] or 0))  # fmt: skip


def _truths(groups: dict[str, list[Cdr]], qrows: Sequence[asyncpg.Record],
            inbound_contexts: Sequence[str]) -> list[Truth]:  # fmt: skip
    by_uid: dict[str, list[QueueLog]] = defaultdict(list)
    for r in qrows:
        data = tuple(_s(r[f"data{i}"]) for i in range(1, 6))
        by_uid[_s(r["callid"])].append(QueueLog(r["t"], _s(r["callid"]), _s(r["queuename"]),
                                                _s(r["agent"]), _s(r["event"]), data))  # type: ignore[arg-type]  # fmt: skip
    truths = []
    for cdrs in groups.values():
        qlog = [q for uid in {c.uniqueid for c in cdrs} for q in by_uid.get(uid, [])]
        truth = call_truth(cdrs, qlog, inbound_contexts)
        if truth is not None:
            truths.append(truth)
    return truths


def build_catchup(db: DatabaseConfig, pool: asyncpg.Pool, publish: Callable[[DomainEvent], None],
                  is_live: Callable[[str], bool],
                  ami_seen: Callable[[], float | None] = lambda: None,
                  ) -> CdrCatchup | None:  # fmt: skip
    """The catch-up of ``[database] cdr_dsn``, or None when it is empty (off)."""
    if not db.cdr_dsn:
        return None
    return CdrCatchup(pool, db.cdr_dsn, publish, is_live, CatchupSettings.from_config(db),
                      ami_seen=ami_seen)  # fmt: skip
