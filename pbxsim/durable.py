"""Asterisk's durable call records: the ``cdr`` table (``cdr_pgsql``) and the realtime
``queue_log`` table (``extconfig.conf`` ``queue_log => pgsql,…``), written into PostgreSQL.

A real Asterisk keeps these even while no AMI client listens; callserver's catch-up reads them
to repair what it missed. pbxsim writes them when Asterisk would:

* a ``cdr`` row whenever the engine emits an AMI ``Cdr`` event (the same values: ``Engine.cdr``
  hands the event's fields here), i.e. when the channel's CDR is finalised at hangup;
* a ``queue_log`` row at each app_queue event, derived from the AMI event app_queue raises at
  the same point (``QueueLogTap``): QueueCallerJoin → ENTERQUEUE (data1 url, data2 caller id
  number, data3 position), AgentConnect → CONNECT (holdtime, bridged uniqueid, ringtime),
  AgentComplete → COMPLETECALLER/COMPLETEAGENT (holdtime, calltime, origposition) or, after a
  BlindTransfer/AttendedTransfer of that caller, BLINDTRANSFER (extension, context, holdtime,
  calltime, origposition) / ATTENDEDTRANSFER (BRIDGE, bridge id, holdtime, calltime,
  origposition), QueueCallerAbandon → ABANDON (position, origposition, waittime) or, after
  ``Engine.queue_timeout``, EXITWITHTIMEOUT (position, origposition, waittime); the
  QueueCallerLeave of a caller who left with a key (``Engine.queue_key``) → EXITWITHKEY (key,
  position, origposition, waittime). ``callid`` is the
  caller channel's uniqueid, ``agent`` the member name (``NONE`` when there is none).

``DurableWriter`` buffers rows in memory (``cdr()``/``queue_log()`` never block) and one task
inserts them in batches (at most ``batch`` rows per statement, at the latest ``interval``
seconds after the first waits), in the order Asterisk writes them: a call's ``queue_log`` rows
are in the table before its ``cdr`` row (an earlier version flushed both tables in equal
batches, so under a burst the six queue_log rows of a call fell behind its CDR). PostgreSQL
away: rows wait (at most ``limit``; beyond, the oldest are dropped and counted in ``dropped``)
and the task retries every second.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections import deque
from typing import Any

import asyncpg

log = logging.getLogger("pbxsim.durable")

CREATE_SQL = (
    """CREATE TABLE IF NOT EXISTS cdr (
    id bigserial PRIMARY KEY,
    calldate timestamptz NOT NULL DEFAULT now(),
    answer timestamptz,
    "end" timestamptz,
    clid varchar(80) NOT NULL DEFAULT '',
    src varchar(80) NOT NULL DEFAULT '',
    dst varchar(80) NOT NULL DEFAULT '',
    dcontext varchar(80) NOT NULL DEFAULT '',
    channel varchar(80) NOT NULL DEFAULT '',
    dstchannel varchar(80) NOT NULL DEFAULT '',
    lastapp varchar(80) NOT NULL DEFAULT '',
    lastdata varchar(80) NOT NULL DEFAULT '',
    duration bigint NOT NULL DEFAULT 0,
    billsec bigint NOT NULL DEFAULT 0,
    disposition varchar(45) NOT NULL DEFAULT '',
    amaflags bigint NOT NULL DEFAULT 0,
    accountcode varchar(20) NOT NULL DEFAULT '',
    uniqueid varchar(150) NOT NULL DEFAULT '',
    linkedid varchar(150) NOT NULL DEFAULT '',
    userfield varchar(255) NOT NULL DEFAULT '',
    peeraccount varchar(20) NOT NULL DEFAULT '',
    sequence integer NOT NULL DEFAULT 0
)""",
    "CREATE INDEX IF NOT EXISTS cdr_calldate_idx ON cdr (calldate)",
    """CREATE TABLE IF NOT EXISTS queue_log (
    id bigserial PRIMARY KEY,
    time timestamptz NOT NULL DEFAULT now(),
    callid varchar(80) NOT NULL DEFAULT '',
    queuename varchar(256) NOT NULL DEFAULT '',
    agent varchar(80) NOT NULL DEFAULT '',
    event varchar(32) NOT NULL DEFAULT '',
    data1 varchar(100) NOT NULL DEFAULT '',
    data2 varchar(100) NOT NULL DEFAULT '',
    data3 varchar(100) NOT NULL DEFAULT '',
    data4 varchar(100) NOT NULL DEFAULT '',
    data5 varchar(100) NOT NULL DEFAULT ''
)""",
    "CREATE INDEX IF NOT EXISTS queue_log_time_idx ON queue_log (time)",
)
CDR_COLUMNS = (
    "calldate", "answer", "end", "clid", "src", "dst", "dcontext", "channel", "dstchannel",
    "lastapp", "lastdata", "duration", "billsec", "disposition", "amaflags", "accountcode",
    "uniqueid", "linkedid", "userfield", "peeraccount", "sequence",
)  # fmt: skip
QUEUE_LOG_COLUMNS = (
    "time", "callid", "queuename", "agent", "event", "data1", "data2", "data3", "data4", "data5",
)  # fmt: skip
AMA_FLAGS = {"OMIT": 1, "BILLING": 2, "DOCUMENTATION": 3}
_MAX = 80


def _ts(seconds: float) -> dt.datetime | None:
    return dt.datetime.fromtimestamp(seconds, dt.UTC) if seconds else None


def _cut(value: object, limit: int = _MAX) -> str:
    return str(value).replace("\x00", "")[:limit]


def cdr_row(
    fields: dict[str, Any], *, start: float, answer: float, end: float, linkedid: str, seq: int
) -> tuple[Any, ...]:
    """The ``cdr`` row of one AMI ``Cdr`` event's ``fields`` (Source, Destination …);
    ``start``/``answer``/``end`` are POSIX seconds (``answer`` 0: never answered)."""
    values: dict[str, Any] = {
        "calldate": _ts(start), "answer": _ts(answer), "end": _ts(end),
        "clid": fields["CallerID"], "src": fields["Source"], "dst": fields["Destination"],
        "dcontext": fields["DestinationContext"], "channel": fields["Channel"],
        "dstchannel": fields["DestinationChannel"], "lastapp": fields["LastApplication"],
        "lastdata": fields["LastData"], "duration": int(fields["Duration"]),
        "billsec": int(fields["BillableSeconds"]), "disposition": fields["Disposition"],
        "amaflags": AMA_FLAGS.get(str(fields["AMAFlags"]), 3),
        "accountcode": fields["AccountCode"], "uniqueid": fields["UniqueID"],
        "linkedid": linkedid, "userfield": fields["UserField"], "peeraccount": "",
        "sequence": seq,
    }  # fmt: skip
    return tuple(
        v if not isinstance(v, str) else _cut(v, 255 if k == "userfield" else 150)
        for k, v in values.items()
    )


def parse_event(data: bytes) -> tuple[str, dict[str, str]]:
    """An AMI event's name and fields (first occurrence of each key wins)."""
    fields: dict[str, str] = {}
    for line in data.decode("utf-8", "replace").split("\r\n"):
        key, sep, value = line.partition(": ")
        if sep and key not in fields:
            fields[key] = value
    return fields.get("Event", ""), fields


QUEUE_EVENTS = frozenset(
    {"QueueCallerJoin", "AgentConnect", "AgentComplete", "QueueCallerAbandon",
     "BlindTransfer", "AttendedTransfer", "QueueCallerLeave"}
)  # fmt: skip
_PREFIXES = tuple(f"Event: {name}\r\n".encode() for name in QUEUE_EVENTS)


class QueueLogTap:
    """Turns the app_queue AMI events into ``queue_log`` rows (see the module docstring)."""

    def __init__(self) -> None:
        self._timeouts: set[str] = set()
        self._transfers: dict[str, tuple[str, str, str]] = {}
        """Caller uniqueid → (event, data1, data2) of a transfer whose AgentComplete follows."""
        self._origpos: dict[str, str] = {}
        self._joined: dict[str, float] = {}
        self._keys: dict[str, str] = {}

    def queue_key(self, uniqueid: str, digits: str) -> None:
        """The next QueueCallerLeave of ``uniqueid`` is an exit with ``digits``."""
        self._keys[uniqueid] = digits

    def queue_timeout(self, uniqueid: str) -> None:
        """The next QueueCallerAbandon of ``uniqueid`` is the Queue() timeout."""
        self._timeouts.add(uniqueid)

    def feed(self, data: bytes, at: float) -> tuple[Any, ...] | None:
        """The ``queue_log`` row for one emitted AMI event at ``at`` (POSIX s), or None."""
        if not data.startswith(_PREFIXES):
            return None
        name, f = parse_event(data)
        uid = f.get("Uniqueid", "")
        if name == "BlindTransfer":
            tuid = f.get("TransfereeUniqueid", "")
            self._transfers[tuid] = ("BLINDTRANSFER", f.get("Extension", ""), f.get("Context", ""))
            return None
        if name == "AttendedTransfer":
            tuid = f.get("TransfereeUniqueid", "")
            self._transfers[tuid] = ("ATTENDEDTRANSFER", "BRIDGE",
                                     f.get("DestBridgeUniqueid", ""))  # fmt: skip
            return None
        queue, agent = f.get("Queue", ""), f.get("MemberName") or "NONE"
        data5: tuple[str, ...]
        if name == "QueueCallerLeave":
            joined = self._joined.pop(uid, at)  # every exit leaves: nothing kept
            digits = self._keys.pop(uid, None)
            if digits is None:
                return None  # answered, abandoned, timed out: logged by their own event
            waited = str(int(at - joined))
            event = "EXITWITHKEY"
            data5 = (digits, f.get("Position", ""), self._origpos.pop(uid, ""), waited)
        elif name == "QueueCallerJoin":
            self._origpos[uid] = f.get("Position", "")
            self._joined[uid] = at
            event, data5 = "ENTERQUEUE", ("", f.get("CallerIDNum", ""), f.get("Position", ""))
        elif name == "AgentConnect":
            event = "CONNECT"
            data5 = (f.get("HoldTime", ""), f.get("DestUniqueid", ""), f.get("RingTime", ""))
        elif name == "AgentComplete":
            hold, talk = f.get("HoldTime", ""), f.get("TalkTime", "")
            pos = self._origpos.pop(uid, "")
            transfer = self._transfers.pop(uid, None) if f.get("Reason") == "transfer" else None
            if transfer is not None:
                event, data5 = transfer[0], (transfer[1], transfer[2], hold, talk, pos)
            else:
                event = "COMPLETEAGENT" if f.get("Reason") == "agent" else "COMPLETECALLER"
                data5 = (hold, talk, pos)
        else:  # QueueCallerAbandon
            timeout = uid in self._timeouts
            self._timeouts.discard(uid)
            event = "EXITWITHTIMEOUT" if timeout else "ABANDON"
            data5 = (f.get("Position", ""), f.get("OriginalPosition", ""), f.get("HoldTime", ""))
            self._origpos.pop(uid, None)
        padded = (*data5, "", "", "", "", "")[:5]
        return (_ts(at), _cut(uid), _cut(queue, 256), _cut(agent), event,
                *(_cut(d, 100) for d in padded))  # fmt: skip


class DurableWriter:
    """Buffered inserts into ``cdr`` and ``queue_log`` of the database ``dsn`` (see module).

    ``start()`` creates the tables if missing (errors are logged; the task keeps retrying);
    ``aclose()`` writes what is buffered (at most ``close_timeout`` seconds)."""

    def __init__(self, dsn: str, *, batch: int = 200, interval: float = 0.2,
                 limit: int = 200_000, close_timeout: float = 5.0) -> None:  # fmt: skip
        self.dsn = dsn
        self.tap = QueueLogTap()
        self._batch, self._interval, self._limit = batch, interval, limit
        self._close_timeout = close_timeout
        self._rows: deque[tuple[str, tuple[Any, ...]]] = deque()
        """(table, row) in the order they were made."""
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._conn: asyncpg.Connection | None = None
        self._ready = False
        self._stopping = False
        self.written = 0
        self.dropped = 0
        self.sequence = 0

    def cdr(self, fields: dict[str, Any], *, start: float, answer: float, end: float,
            linkedid: str) -> None:  # fmt: skip
        """Queue the ``cdr`` row of one AMI Cdr event (returns at once)."""
        self.sequence += 1
        row = cdr_row(fields, start=start, answer=answer, end=end, linkedid=linkedid,
                      seq=self.sequence)  # fmt: skip
        self._push("cdr", row)

    def queue_timeout(self, uniqueid: str) -> None:
        self.tap.queue_timeout(uniqueid)

    def queue_key(self, uniqueid: str, digits: str) -> None:
        self.tap.queue_key(uniqueid, digits)

    def event(self, data: bytes, at: float) -> None:
        """Feed one emitted AMI event; queue_log rows are queued (returns at once)."""
        row = self.tap.feed(data, at)
        if row is not None:
            self._push("queue_log", row)

    def _push(self, table: str, row: tuple[Any, ...]) -> None:
        self._rows.append((table, row))
        if len(self._rows) > self._limit:
            self._rows.popleft()
            self.dropped += 1
        self._wake.set()

    @property
    def buffered(self) -> int:
        return len(self._rows)

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="pbxsim-durable")

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            if not self._stopping:
                await asyncio.sleep(self._interval)
            while self.buffered:
                try:
                    await self._flush()
                except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
                    log.warning("cdr/queue_log write failed (%s); retrying in 1 s", exc)
                    await self._close_conn()
                    await asyncio.sleep(1.0)
            if self._stopping:
                return

    async def _flush(self) -> None:
        if self._conn is None or self._conn.is_closed():
            self._conn = await asyncpg.connect(self.dsn, timeout=5.0)
        if not self._ready:
            for sql in CREATE_SQL:
                await self._conn.execute(sql)
            self._ready = True
        # the oldest rows; queue_log's first, so no cdr row is in before a queue_log row made
        # earlier (some later queue_log rows may go in before a cdr row: harmless)
        head = [self._rows[i] for i in range(min(self._batch, len(self._rows)))]
        async with asyncio.timeout(10.0), self._conn.transaction():
            for table, columns in (("queue_log", QUEUE_LOG_COLUMNS), ("cdr", CDR_COLUMNS)):
                rows = [row for t, row in head if t == table]
                if rows:
                    names = ", ".join(f'"{c}"' for c in columns)
                    marks = ", ".join(f"${i}" for i in range(1, len(columns) + 1))
                    await self._conn.executemany(
                        f"INSERT INTO {table} ({names}) VALUES ({marks})", rows
                    )
        for _ in head:
            self._rows.popleft()
        self.written += len(head)

    async def _close_conn(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close(timeout=2.0)

    async def aclose(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            self._stopping = True
            self._wake.set()
            try:
                async with asyncio.timeout(self._close_timeout):
                    await task
            except TimeoutError:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
                log.error("%d cdr/queue_log rows not written at exit", self.buffered)
        await self._close_conn()
