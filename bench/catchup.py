"""Catch-up benchmark: one pass of ``CdrCatchup`` over N calls missing from ``calls``.

Seeds a throwaway database with Asterisk's ``cdr`` and ``queue_log`` rows of ``--calls``
answered queue calls (one CDR, ENTERQUEUE + CONNECT + COMPLETECALLER each, ended 60–600 s ago)
and times: the first pass (every call read, built, published as CallEnded, recorded in
``catchup_merged``), then a second pass over the same rows (everything already merged: read and
compared only). Publishing goes to a counting subscriber (no call writer): the figure is the
catch-up's own cost, both databases on the local PostgreSQL.

Usage: .venv/bin/python bench/catchup.py [--calls 2000] [--dsn postgresql://postgres@127.0.0.1/postgres]
Last line: ``catchup calls=… first_pass_s=… calls_per_s=… second_pass_s=…``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import time
import uuid

import asyncpg

from callserver.core.events import DomainEvent
from callserver.store.catchup import PAGE, CdrCatchup
from callserver.store.migrate import apply_migrations, core_sources
from pbxsim.durable import CDR_COLUMNS, CREATE_SQL, QUEUE_LOG_COLUMNS


def _rows(n: int, now: float) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    cdrs: list[tuple[object, ...]] = []
    qlog: list[tuple[object, ...]] = []
    for i in range(n):
        t0 = now - 600 + (540.0 * i / max(1, n))
        uid = f"{int(t0)}.{i}"

        def ts(offset: float, t0: float = t0) -> dt.datetime:
            return dt.datetime.fromtimestamp(t0 + offset, dt.UTC)

        values = {"calldate": ts(0), "answer": ts(0.2), "end": ts(20), "clid": "",
                  "src": f"7916{i:07d}", "dst": "74951234567", "dcontext": "route-inbound",
                  "channel": f"PJSIP/trunk-{i:08x}", "dstchannel": f"PJSIP/op{100 + i % 50}-1",
                  "lastapp": "Queue", "lastdata": "", "duration": 20, "billsec": 19,
                  "disposition": "ANSWERED", "amaflags": 3, "accountcode": "", "uniqueid": uid,
                  "linkedid": uid, "userfield": "", "peeraccount": "", "sequence": i}  # fmt: skip
        cdrs.append(tuple(values[c] for c in CDR_COLUMNS))
        for at, event, data in ((1, "ENTERQUEUE", ("", values["src"], "1")),
                                (4, "CONNECT", ("3", "x", "1")),
                                (20, "COMPLETECALLER", ("3", "16", "1"))):  # fmt: skip
            qlog.append((ts(at), uid, "reception", "Operator", event, *data, "", ""))
    return cdrs, qlog


async def _seed(dsn: str, n: int) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await apply_migrations(conn, core_sources())
        for sql in CREATE_SQL:
            await conn.execute(sql)
        await conn.execute("CREATE INDEX IF NOT EXISTS cdr_linkedid_idx ON cdr (linkedid)")
        await conn.execute("CREATE INDEX IF NOT EXISTS ql_callid_idx ON queue_log (callid)")
        cdrs, qlog = _rows(n, time.time())
        await conn.copy_records_to_table("cdr", records=cdrs, columns=list(CDR_COLUMNS))
        await conn.copy_records_to_table("queue_log", records=qlog,
                                         columns=list(QUEUE_LOG_COLUMNS))  # fmt: skip
    finally:
        await conn.close()


async def _passes(dsn: str) -> tuple[float, float, int]:
    published = 0

    def count(_: DomainEvent) -> None:
        nonlocal published
        published += 1

    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2)
    try:
        catchup = CdrCatchup(pool, dsn, count, lambda _cid: False)
        t = time.perf_counter()
        await catchup.run_once()
        first = time.perf_counter() - t
        await pool.execute("DELETE FROM catchup_state")  # read the same rows again
        t = time.perf_counter()
        await catchup.run_once()
        return first, time.perf_counter() - t, published
    finally:
        await pool.close()


async def main(calls: int, admin: str) -> None:
    db = f"bench_catchup_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(admin)
    await conn.execute(f'CREATE DATABASE "{db}"')
    await conn.close()
    dsn = admin.rpartition("/")[0] + "/" + db
    try:
        await _seed(dsn, calls)
        first, second, published = await _passes(dsn)
    finally:
        conn = await asyncpg.connect(admin)
        await conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        await conn.close()
    print(f"published {published} CallEnded for {calls} calls (pages of {PAGE})")
    print(f"catchup calls={calls} first_pass_s={first:.2f} calls_per_s={calls / first:.0f} "
          f"second_pass_s={second:.2f}")  # fmt: skip


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--dsn", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = ap.parse_args()
    asyncio.run(main(args.calls, args.dsn))
