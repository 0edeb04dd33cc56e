"""One patient's data, found by phone number: export it, or erase it (152-FZ requests).

What belongs to a number (E.164):
* ``calls`` whose ``caller_e164`` is the number, with their ``call_events`` timelines;
* ``route_decisions`` of those calls (uniqueid or linkedid);
* ``crm_outbox`` rows whose payload's ``phone`` is the number;
* embedded-CRM patients having the number (with phones, appointments, treatment plans);
* every other table with a text ``phone`` column holding the number (CRM call records and
  requests, operators' outcomes, callback jobs … whichever plugins are installed).

Erasure anonymises the calls (caller, name and channel variables emptied: the statistics stay
true), deletes their timelines, clears the patient id in routing decisions, deletes outbox rows
and the rows of the phone tables, deletes the CRM patient (appointments and plans cascade) and
its cached card in Redis. All in one transaction with its audit row.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from callserver.core.phone import mask
from privacy.sql import Conn, existing_tables, ident, phone_tables, rows_json

KEEP_SUFFIX = "_dnc"
"""Do-not-call lists are exported but never erased: erasing one would call the patient again."""
MAX_CALLS = 20_000
"""Calls exported per request (a patient's lifetime of calls is far fewer)."""


def phone_hash(e164: str) -> str:
    return hashlib.sha256(e164.encode()).hexdigest()


async def _call_ids(conn: Conn, e164: str) -> list[str]:
    rows = await conn.fetch(
        "SELECT id FROM calls WHERE caller_e164 = $1 ORDER BY started_at LIMIT $2", e164, MAX_CALLS
    )
    return [r["id"] for r in rows]


async def _patient_ids(conn: Conn, e164: str, tables: set[str]) -> list[int]:
    if "crm_patient_phones" not in tables:
        return []
    rows = await conn.fetch("SELECT patient_id FROM crm_patient_phones WHERE phone = $1", e164)
    return sorted({r["patient_id"] for r in rows})


_PATIENT_PARTS = {
    "phones": "SELECT to_jsonb(x) FROM crm_patient_phones x WHERE patient_id = $1",
    "appointments": "SELECT to_jsonb(x) FROM crm_appointments x WHERE patient_id = $1"
    " ORDER BY starts_at",
    "treatment_plans": "SELECT to_jsonb(p) || jsonb_build_object('items', COALESCE((SELECT"
    " jsonb_agg(to_jsonb(i) ORDER BY i.id) FROM crm_treatment_plan_items i WHERE i.plan_id ="
    " p.id), '[]'::jsonb)) FROM crm_treatment_plans p WHERE patient_id = $1 ORDER BY p.id",
}


async def _patients(conn: Conn, ids: list[int]) -> list[dict[str, Any]]:
    out = []
    for pid in ids:
        found = await rows_json(conn, "SELECT to_jsonb(p) FROM crm_patients p WHERE id = $1", pid)
        if not found:
            continue
        patient = found[0]
        for part, sql in _PATIENT_PARTS.items():
            patient[part] = await rows_json(conn, sql, pid)
        out.append(patient)
    return out


async def export(conn: Conn, e164: str) -> dict[str, Any]:
    """Everything stored about ``e164`` (see the module doc), as JSON-ready dicts."""
    known = await existing_tables(conn, ["route_decisions", "crm_outbox", "crm_patients",
                                         "crm_patient_phones"])  # fmt: skip
    ids = await _call_ids(conn, e164)
    calls = await rows_json(conn, "SELECT to_jsonb(c) FROM calls c WHERE id = ANY($1::text[])"
                            " ORDER BY started_at", ids)  # fmt: skip
    events = await rows_json(conn, "SELECT to_jsonb(e) FROM call_events e WHERE call_id ="
                             " ANY($1::text[]) ORDER BY call_id, at, id", ids)  # fmt: skip
    for call in calls:
        call["events"] = [e for e in events if e["call_id"] == call["id"]]
    result: dict[str, Any] = {"phone": e164, "calls": calls, "decisions": [], "outbox": [],
                              "crm_patients": [], "records": {}}  # fmt: skip
    if "route_decisions" in known:
        result["decisions"] = await rows_json(
            conn, "SELECT to_jsonb(d) FROM route_decisions d WHERE linkedid = ANY($1::text[])"
            " OR uniqueid = ANY($1::text[]) ORDER BY decided_at", ids)  # fmt: skip
    if "crm_outbox" in known:
        result["outbox"] = await rows_json(
            conn, "SELECT to_jsonb(o) FROM crm_outbox o WHERE payload->>'phone' = $1"
            " ORDER BY id", e164)  # fmt: skip
    if "crm_patients" in known:
        result["crm_patients"] = await _patients(conn, await _patient_ids(conn, e164, known))
    for table in await phone_tables(conn):
        rows = await rows_json(conn, f"SELECT to_jsonb(t) FROM {ident(table)} t WHERE phone = $1",
                               e164)  # fmt: skip
        if rows:
            result["records"][table] = rows
    return result


def _count(status: str) -> int:
    return int(status.rsplit(" ", 1)[1])


async def erase(conn: Conn, e164: str) -> dict[str, int]:
    """Erase ``e164``'s data (see the module doc) on ``conn``, inside the caller's transaction.
    Returns rows touched per table."""
    known = await existing_tables(conn, ["route_decisions", "crm_outbox", "crm_patients",
                                         "crm_patient_phones"])  # fmt: skip
    ids = await _call_ids(conn, e164)
    counts: dict[str, int] = {}
    counts["call_events"] = _count(await conn.execute(
        "DELETE FROM call_events WHERE call_id = ANY($1::text[])", ids))  # fmt: skip
    counts["calls"] = _count(await conn.execute(
        "UPDATE calls SET caller = '', caller_e164 = '', caller_name = '',"
        " variables = '{}'::jsonb WHERE id = ANY($1::text[])", ids))  # fmt: skip
    if "route_decisions" in known:
        counts["route_decisions"] = _count(await conn.execute(
            "UPDATE route_decisions SET patient_id = '' WHERE linkedid = ANY($1::text[])"
            " OR uniqueid = ANY($1::text[])", ids))  # fmt: skip
    if "crm_outbox" in known:
        counts["crm_outbox"] = _count(await conn.execute(
            "DELETE FROM crm_outbox WHERE payload->>'phone' = $1", e164))  # fmt: skip
    for table in await phone_tables(conn):
        if table.endswith(KEEP_SUFFIX):
            continue  # a do-not-call entry is how the patient's objection is honoured
        counts[table] = _count(await conn.execute(
            f"DELETE FROM {ident(table)} WHERE phone = $1", e164))  # fmt: skip
    patients = await _patient_ids(conn, e164, known)
    if patients:
        counts["crm_patients"] = _count(await conn.execute(
            "DELETE FROM crm_patients WHERE id = ANY($1::bigint[])", patients))  # fmt: skip
    return {k: v for k, v in counts.items() if v}


async def audit(
    conn: Conn, *, action: str, actor: str, e164: str = "", reason: str = "",
    counts: dict[str, int] | None = None,
) -> int:  # fmt: skip
    """Write one ``privacy_audit`` row; returns its id."""
    row_id: int = await conn.fetchval(
        "INSERT INTO privacy_audit (action, actor, phone_sha256, phone_masked, reason, counts)"
        " VALUES ($1, $2, $3, $4, $5, $6::jsonb) RETURNING id",
        action, actor, phone_hash(e164) if e164 else "", mask(e164) if e164 else "", reason,
        json.dumps(counts or {}),
    )  # fmt: skip
    return row_id
