"""A small known clinic day (calls, routing decisions, CRM patients and appointments) for the
tests, the demo and the screenshots. Every figure the reports show for it can be worked out by
hand from the table below (tests/integration/test_dashboards_reports.py does).

Day ``DAY`` (a Monday), clinic time Europe/Moscow. DID1 = Yandex "implants" (clinic center),
DID2 = 2GIS "checkup" (clinic north). Queue ``reception``; operators op101, op102.

| call | time  | caller       | DID | outcome                                 | patient
|------|-------|--------------|-----|-----------------------------------------|-----------------
| c7   | 00:30 | +79160000006 | 1   | never queued, unanswered (missed)       | new
| c1   | 10:00 | 79160000001  | 1   | op101 answers after 10 s, talk 120 s    | P1, booked, came
| c2   | 10:10 | +79160000002 | 1   | op101 no answer; op102 30 s, talk 200 s | new, booked, no-show
| c3   | 10:20 | +79160000003 | 2   | abandoned after 40 s                    | new
| co1  | 10:30 | (outbound)   |     | op101 calls +79160000003 back, answered |
| c4   | 11:00 | +79160000004 | 2   | abandoned after 3 s (a short abandon)   | new
| c5   | 11:05 | +79160000004 | 2   | op101 answers after 5 s, talk 60 s      | new
| c6   | 12:00 | +79160000005 | 1   | op102 answers after 15 s, talk 90 s     | known P5
| c8   | 23:50 the day before, +79160000007, DID 1, answered (outside the day)
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
from asyncpg.pool import PoolConnectionProxy

DAY = date(2026, 11, 23)
TZ = ZoneInfo("Europe/Moscow")
DID1, DID2 = "+74950000001", "+74950000002"
ROUTE = {DID1: ("yandex", "implants", "center"), DID2: ("2gis", "checkup", "north")}

# id, local "HH:MM" (or a datetime), caller, did, wait, answered_by, talk, patient_id, day offset
CALLS: list[tuple[str, str, str, str, float, str, float, str, int]] = [
    ("c7", "00:30", "+79160000006", DID1, -1, "", 0, "", 0),
    ("c1", "10:00", "79160000001", DID1, 10, "PJSIP/op101", 120, "1", 0),
    ("c2", "10:10", "+79160000002", DID1, 30, "PJSIP/op102", 200, "", 0),
    ("c3", "10:20", "+79160000003", DID2, 40, "", 0, "", 0),
    ("c4", "11:00", "+79160000004", DID2, 3, "", 0, "", 0),
    ("c5", "11:05", "+79160000004", DID2, 5, "PJSIP/op101", 60, "", 0),
    ("c6", "12:00", "+79160000005", DID1, 15, "PJSIP/op102", 90, "5", 0),
    ("c8", "23:50", "+79160000007", DID1, 8, "PJSIP/op102", 30, "", -1),
]
QUEUE = "reception"
Conn = asyncpg.Connection | PoolConnectionProxy


def at(hhmm: str, day: date = DAY, offset_days: int = 0) -> datetime:
    h, m = (int(x) for x in hhmm.split(":"))
    d = day + timedelta(days=offset_days)
    return datetime(d.year, d.month, d.day, h, m, tzinfo=TZ).astimezone(UTC)


def call_rows(day: date = DAY) -> list[dict[str, Any]]:
    """The inbound calls plus the outbound callback, as ``calls`` rows."""
    rows = []
    for cid, hhmm, caller, did, wait, agent, talk, _, off in CALLS:
        start = at(hhmm, day, off)
        queued = start + timedelta(seconds=2) if wait >= 0 else None
        answered = queued + timedelta(seconds=wait) if queued and agent else None
        if answered is not None:
            ended = answered + timedelta(seconds=talk)
        else:
            ended = (queued + timedelta(seconds=wait)) if queued else start + timedelta(seconds=20)
        state = "ended" if answered or not queued else "abandoned"
        rows.append({
            "id": cid, "direction": "inbound", "caller": caller, "did": did,
            "ad_source": ROUTE[did][0], "queue": QUEUE if queued else "", "agent": agent,
            "state": state, "started_at": start, "queued_at": queued, "answered_at": answered,
            "ended_at": ended, "wait_seconds": wait if queued else None,
            "talk_seconds": talk if answered else None,
            "hold_seconds": None,
        })  # fmt: skip
    cb = at("10:30", day)
    rows.append({
        "id": "co1", "direction": "outbound", "caller": "101", "did": "+79160000003",
        "ad_source": "", "queue": "", "agent": "PJSIP/op101", "state": "ended",
        "started_at": cb, "queued_at": None, "answered_at": cb + timedelta(seconds=8),
        "ended_at": cb + timedelta(seconds=68), "wait_seconds": None, "talk_seconds": 60.0,
        "hold_seconds": None,
    })  # fmt: skip
    return rows


INSERT_CALL = """
INSERT INTO calls (id, direction, caller, did, ad_source, queue, agent, state, started_at,
    queued_at, answered_at, ended_at, wait_seconds, talk_seconds, hold_seconds, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $12)
"""

INSERT_DECISION = """
INSERT INTO route_decisions (uniqueid, linkedid, origin, did, ad_source, campaign, paid, clinic,
    queue, mode, rule_version, profile_status, patient_id, decided_at)
VALUES ($1, $1, 'agi', $2, $3, $4, true, $5, 'reception', 'queue', 'v1', 'found', $6, $7)
"""


async def insert_calls(conn: Conn, day: date = DAY) -> None:
    """The calls and the missed-ring event (core tables only)."""
    for r in call_rows(day):
        await conn.execute(INSERT_CALL, *(r[k] for k in (
            "id", "direction", "caller", "did", "ad_source", "queue", "agent", "state",
            "started_at", "queued_at", "answered_at", "ended_at", "wait_seconds",
            "talk_seconds", "hold_seconds")))  # fmt: skip
    await conn.execute(
        "INSERT INTO call_events (call_id, type, at, key, payload) VALUES"
        " ('c2', 'AgentRingNoAnswer', $1, 'ring-c2', $2::jsonb)",
        at("10:10", day) + timedelta(seconds=12),
        '{"agent": "PJSIP/op101", "queue": "reception", "ring_seconds": 10}',
    )


async def insert_tracking(conn: Conn, day: date = DAY) -> None:
    """routing's decision per inbound call (needs routing's migration)."""
    for cid, hhmm, _caller, did, _w, _a, _t, patient, off in CALLS:
        source, campaign, clinic = ROUTE[did]
        await conn.execute(INSERT_DECISION, cid, did, source, campaign, clinic, patient,
                           at(hhmm, day, off))  # fmt: skip


async def insert_crm(conn: Conn, day: date = DAY) -> None:
    """Patients P1, P2, P5 and two appointments booked after their calls (needs crm tables)."""
    for pid, name, phone in ((1, "Иванова Мария", "+79160000001"),
                             (2, "Петров Пётр", "+79160000002"),
                             (5, "Сидорова Анна", "+79160000005")):  # fmt: skip
        await conn.execute("INSERT INTO crm_patients (id, full_name) VALUES ($1, $2)", pid, name)
        await conn.execute("INSERT INTO crm_patient_phones (phone, patient_id) VALUES ($1, $2)",
                           phone, pid)  # fmt: skip
    visit = at("09:00", day, 2)
    for pid, created, status in ((1, at("10:05", day), "came"), (2, at("10:20", day), "no_show")):
        await conn.execute(
            "INSERT INTO crm_appointments (patient_id, starts_at, status, created_at)"
            " VALUES ($1, $2, $3, $4)", pid, visit, status, created,
        )  # fmt: skip


async def insert_all(conn: Conn, day: date = DAY) -> None:
    await insert_calls(conn, day)
    await insert_tracking(conn, day)
    await insert_crm(conn, day)
