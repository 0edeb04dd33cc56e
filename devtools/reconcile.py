"""Reconcile callserver against ground truth: pbxsim's ledger vs PostgreSQL, the CRM and Redis.

pbxsim writes one JSON line per inbound call it generated (``--ledger``, see pbxsim/README.md).
This compares, call by call:

* ``calls`` in PostgreSQL: every ledger call present (else *lost*), not left open (*stuck_open*),
  no second record of the same call under another id (*duplicated*), and its facts right
  (*wrong_fields*: caller, DID, queue, final agent, answered/abandoned, wait, talk and hold
  seconds within ``tolerance``);
* ``route_decisions``: a call that ran the route script has its decision (*wrong_fields*
  ``decision``);
* the CRM: one call record per call in the outbox (*crm_missing*, *crm_duplicated*) and, for
  the embedded CRM, at most one delivered record per call;
* Redis live state (when given): no ended call still in the live set (*live_stuck*).

Usage: ``python -m devtools.reconcile --ledger L.jsonl --dsn postgresql://… [--redis URL
--prefix P]``; prints each problem and a summary line; exit code 1 when anything is off.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import redis.asyncio as aioredis

SECONDS_FIELDS = (("wait_seconds", "wait_s"), ("hold_seconds", "hold_s"))


@dataclass
class Report:
    calls: int = 0
    lost: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    stuck_open: list[str] = field(default_factory=list)
    wrong_fields: list[tuple[str, str, object, object]] = field(default_factory=list)
    crm_missing: list[str] = field(default_factory=list)
    crm_duplicated: list[str] = field(default_factory=list)
    live_stuck: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.lost or self.duplicated or self.stuck_open or self.wrong_fields
                    or self.crm_missing or self.crm_duplicated or self.live_stuck)  # fmt: skip

    def summary(self) -> str:
        return (
            f"calls={self.calls} lost={len(self.lost)} duplicated={len(self.duplicated)} "
            f"stuck_open={len(self.stuck_open)} wrong_fields={len(self.wrong_fields)} "
            f"crm_missing={len(self.crm_missing)} crm_duplicated={len(self.crm_duplicated)} "
            f"live_stuck={len(self.live_stuck)}"
        )

    def problems(self) -> Iterable[str]:
        for name in ("lost", "duplicated", "stuck_open", "crm_missing", "crm_duplicated",
                     "live_stuck"):  # fmt: skip
            for call_id in getattr(self, name):
                yield f"{name}: {call_id}"
        for call_id, name, truth, stored in self.wrong_fields:
            yield f"wrong_fields: {call_id} {name}: ledger {truth!r}, stored {stored!r}"


def read_ledger(path: Path) -> list[dict[str, Any]]:
    """The inbound calls of a pbxsim ledger (outbound lines are pbxsim's dialled patients)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    calls = [json.loads(line) for line in lines if line.strip()]
    return [c for c in calls if c.get("direction", "inbound") == "inbound"]


def _digits(number: object) -> str:
    return "".join(ch for ch in str(number or "") if ch.isdigit())


def _near(a: object, b: object, tolerance: float) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return abs(float(a) - float(b)) <= tolerance  # type: ignore[arg-type]


def compare_call(truth: Mapping[str, Any], row: Mapping[str, Any], tolerance: float
                 ) -> list[tuple[str, object, object]]:  # fmt: skip
    """(field, ledger value, stored value) for every fact of one call that disagrees."""
    wrong: list[tuple[str, object, object]] = []
    agents = [a["interface"] for a in truth.get("agents") or []]
    checks: list[tuple[str, object, object]] = [
        ("caller", _digits(truth.get("caller")), _digits(row["caller"])),
        ("did", _digits(truth.get("did")), _digits(row["did"])),
        ("queue", truth.get("queue") or "", row["queue"]),
        ("agent", agents[-1] if agents else "", row["agent"]),
        ("answered", truth.get("outcome") == "answered", row["answered_at"] is not None),
    ]
    wrong.extend(c for c in checks if c[1] != c[2])
    if truth.get("outcome") == "abandoned" and row["state"] != "abandoned":
        wrong.append(("state", "abandoned", row["state"]))
    for column, key in SECONDS_FIELDS:
        truth_value = truth.get(key) or None if column == "hold_seconds" else truth.get(key)
        stored = row[column] or None if column == "hold_seconds" else row[column]
        if not _near(truth_value, stored, tolerance):
            wrong.append((column, truth_value, stored))
    # callserver keeps hold apart from talk; pbxsim's talk_s counts an operator's hold as talk
    # (as app_queue does) but not an attended transfer's consultation (the caller on hold
    # while the operators speak): compare talk + hold on both sides
    if truth.get("talk_s") is not None or row["talk_seconds"] is not None:
        truth_total = float(truth.get("talk_s") or 0.0)
        if any(t.get("kind") == "attended" for t in truth.get("transfers") or []):
            truth_total += float(truth.get("hold_s") or 0.0)
        stored_total = (row["talk_seconds"] or 0.0) + (row["hold_seconds"] or 0.0)
        if not _near(truth_total, stored_total, tolerance):
            wrong.append(("talk_seconds+hold_seconds", truth_total, stored_total))
    return wrong


async def _rows(conn: asyncpg.Connection, sql: str, *args: object) -> list[asyncpg.Record]:
    return list(await conn.fetch(sql, *args))


async def reconcile(
    ledger: Sequence[Mapping[str, Any]],
    dsn: str,
    *,
    redis_url: str | None = None,
    redis_prefix: str = "",
    tolerance: float = 1.0,
) -> Report:
    """Compare ``ledger`` (inbound calls) with what callserver stored. Read-only."""
    report = Report(calls=len(ledger))
    ids = [str(c["linkedid"]) for c in ledger]
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        rows = {r["id"]: r for r in await _rows(conn, "SELECT * FROM calls")}
        decided = {r["linkedid"] for r in await _rows(
            conn, "SELECT DISTINCT linkedid FROM route_decisions WHERE linkedid = ANY($1)", ids)}
        outbox = Counter(r["key"] for r in await _rows(
            conn, "SELECT idempotency_key AS key FROM crm_outbox WHERE kind = 'call_record'"))
        delivered = Counter(r["call_id"] for r in await _rows(
            conn, "SELECT call_id FROM crm_call_records"))
    finally:
        await conn.close()
    _check_calls(report, ledger, rows, decided, tolerance)
    _check_crm(report, ids, outbox, delivered)
    if redis_url is not None:
        report.live_stuck = await _live_stuck(redis_url, redis_prefix, ledger)
    return report


def _check_calls(report: Report, ledger: Sequence[Mapping[str, Any]],
                 rows: Mapping[str, Any], decided: set[str], tolerance: float) -> None:  # fmt: skip
    known = {str(c["linkedid"]) for c in ledger}
    for truth in ledger:
        call_id = str(truth["linkedid"])
        row = rows.get(call_id)
        if row is None:
            report.lost.append(call_id)
            continue
        if truth.get("end") is not None and row["ended_at"] is None:
            report.stuck_open.append(call_id)
        for name, a, b in compare_call(truth, row, tolerance):
            report.wrong_fields.append((call_id, name, a, b))
        # a call whose routing AGI failed (callserver down: AGISTATUS=FAILURE) ran no route
        # script, and one whose script died before ROUTE_REASON (callserver killed mid-script:
        # the dialplan defaults took it) has no decision to store; the route script sets
        # ROUTE_REASON only once the decision is written. Older ledgers count every routed call
        ran = truth.get("agi_status", "SUCCESS") in ("SUCCESS", "HANGUP")
        ran = ran and bool(truth.get("route_reason", "?"))
        if truth.get("route_mode") and ran and call_id not in decided:
            report.wrong_fields.append((call_id, "decision", truth.get("route_mode"), None))
    starts = {(_digits(t.get("caller")), round(float(t.get("start") or 0))) for t in ledger}
    for call_id, row in rows.items():
        if call_id in known or row["direction"] != "inbound":
            continue
        key = (_digits(row["caller"]), round(row["started_at"].timestamp()))
        if any(key[0] == s[0] and abs(key[1] - s[1]) <= 2 for s in starts):
            report.duplicated.append(call_id)


def _check_crm(report: Report, ids: Sequence[str], outbox: Counter[str],
               delivered: Counter[str]) -> None:  # fmt: skip
    for call_id in ids:
        n = outbox.get(f"call-record:{call_id}", 0)
        if n == 0:
            report.crm_missing.append(call_id)
        elif n > 1 or delivered.get(call_id, 0) > 1:
            report.crm_duplicated.append(call_id)


async def _live_stuck(url: str, prefix: str, ledger: Sequence[Mapping[str, Any]]) -> list[str]:
    client = aioredis.from_url(url)
    try:
        members = await client.smembers(f"{prefix}calls")
        live = {m.decode() if isinstance(m, bytes) else str(m) for m in members}
    finally:
        await client.aclose()
    return sorted(str(c["linkedid"]) for c in ledger
                  if c.get("end") is not None and str(c["linkedid"]) in live)  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m devtools.reconcile", description=__doc__)
    ap.add_argument("--ledger", type=Path, required=True)
    ap.add_argument("--dsn", required=True)
    ap.add_argument("--redis")
    ap.add_argument("--prefix", default="callserver:")
    ap.add_argument("--tolerance", type=float, default=1.0, help="seconds")
    args = ap.parse_args(argv)
    report = asyncio.run(reconcile(read_ledger(args.ledger), args.dsn, redis_url=args.redis,
                                   redis_prefix=args.prefix, tolerance=args.tolerance))  # fmt: skip
    for line in report.problems():
        print(line)
    print(f"reconcile {report.summary()}")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
