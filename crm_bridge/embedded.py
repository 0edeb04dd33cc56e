"""Embedded CRM on PostgreSQL (tables in ``migrations/0001_embedded_crm.sql``).

``EmbeddedCrm`` is a ``CrmBackend``: one indexed query per lookup (phone → patient → next
appointment, last visit, open plan items), and "delivering" a push is writing a row keyed by the
push's idempotency key (a redelivery is a no-op). Library errors are translated here:
connection trouble and timeouts → CrmUnavailable/CrmTimeout, bad data → CrmRejected.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

import asyncpg

from crm_bridge.errors import CrmRejected, CrmTimeout, CrmUnavailable
from crm_bridge.models import AppointmentInfo, PatientCard, PlanItem

_CARD_SQL = """
SELECT p.id, p.full_name, p.birth_date, p.language, p.segment, p.vip, p.coordinator,
       p.last_operator, c.name AS clinic, p.notes, p.balance, p.prepayment_required,
       ARRAY(SELECT x.phone FROM crm_patient_phones x WHERE x.patient_id = p.id
             ORDER BY x.phone) AS phones,
       (SELECT max(v.starts_at) FROM crm_appointments v
         WHERE v.patient_id = p.id AND v.status = 'came') AS last_visit,
       na.id AS na_id, na.starts_at AS na_starts_at, na.doctor AS na_doctor,
       na.specialty AS na_specialty, na.clinic AS na_clinic, na.room AS na_room,
       na.status AS na_status, na.service AS na_service,
       (SELECT json_agg(json_build_object('id', i.id::text, 'plan', tp.title,
                 'description', i.description, 'status', i.status, 'price', i.price::text,
                 'planned_for', i.planned_for) ORDER BY i.planned_for NULLS LAST, i.id)
          FROM crm_treatment_plans tp JOIN crm_treatment_plan_items i ON i.plan_id = tp.id
         WHERE tp.patient_id = p.id AND tp.status = 'active' AND i.status = 'planned'
       )::text AS plan_items
FROM crm_patients p
LEFT JOIN crm_clinics c ON c.id = p.clinic_id
LEFT JOIN LATERAL (
    SELECT a.id, a.starts_at, coalesce(d.full_name, '') AS doctor,
           coalesce((SELECT string_agg(s.name, ', ' ORDER BY s.name)
                       FROM crm_doctor_specialties ds
                       JOIN crm_specialties s ON s.id = ds.specialty_id
                      WHERE ds.doctor_id = a.doctor_id), '') AS specialty,
           coalesce(ac.name, '') AS clinic, a.room, a.status, a.service
      FROM crm_appointments a
      LEFT JOIN crm_doctors d ON d.id = a.doctor_id
      LEFT JOIN crm_clinics ac ON ac.id = a.clinic_id
     WHERE a.patient_id = p.id AND a.starts_at >= now() AND a.status IN ('booked', 'confirmed')
     ORDER BY a.starts_at LIMIT 1
) na ON true
"""

LOOKUP_SQL = (
    _CARD_SQL + " WHERE p.id = (SELECT ph.patient_id FROM crm_patient_phones ph"
    " JOIN crm_patients pp ON pp.id = ph.patient_id WHERE ph.phone = $1"
    " ORDER BY pp.updated_at DESC, pp.id LIMIT 1)"
)
CARD_BY_ID_SQL = _CARD_SQL + " WHERE p.id = $1"


def card_from_row(row: asyncpg.Record) -> PatientCard:
    nxt = None
    if row["na_id"] is not None:
        nxt = AppointmentInfo(
            id=str(row["na_id"]),
            starts_at=row["na_starts_at"],
            doctor=row["na_doctor"],
            specialty=row["na_specialty"],
            clinic=row["na_clinic"],
            room=row["na_room"],
            status=row["na_status"],
            service=row["na_service"],
        )
    items = json.loads(row["plan_items"]) if row["plan_items"] else []
    return PatientCard(
        id=str(row["id"]),
        full_name=row["full_name"],
        phones=tuple(row["phones"]),
        birth_date=row["birth_date"],
        language=row["language"],
        segment=row["segment"],
        vip=row["vip"],
        coordinator=row["coordinator"],
        last_operator=row["last_operator"],
        clinic=row["clinic"] or "",
        last_visit=row["last_visit"],
        next_appointment=nxt,
        plan_items=tuple(_plan_item(i) for i in items),
        balance=row["balance"],
        prepayment_required=row["prepayment_required"],
        notes=row["notes"],
    )


def _plan_item(i: dict[str, Any]) -> PlanItem:
    return PlanItem(
        id=i["id"],
        plan=i["plan"],
        description=i["description"],
        status=i["status"],
        price=Decimal(i["price"]),
        planned_for=None if i["planned_for"] is None else _date(i["planned_for"]),
    )


def _date(text: str) -> Any:
    return datetime.strptime(text, "%Y-%m-%d").date()


@contextlib.asynccontextmanager
async def pg_errors(
    pool: asyncpg.Pool, deadline: float, what: str
) -> AsyncIterator[asyncpg.pool.PoolConnectionProxy]:
    """Acquire a connection under ``deadline`` s and translate asyncpg errors at this edge."""
    try:
        async with asyncio.timeout(deadline), pool.acquire() as conn:
            yield conn
    except TimeoutError as exc:
        raise CrmTimeout(message=f"embedded CRM: {what} timed out", timeout=deadline) from exc
    except (asyncpg.DataError, asyncpg.IntegrityConstraintViolationError) as exc:
        raise CrmRejected(message=f"embedded CRM: {what}: {exc}") from exc
    except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
        raise CrmUnavailable(message=f"embedded CRM: {what} failed: {exc}") from exc


class EmbeddedCrm:
    """``CrmBackend`` on the embedded tables. Every call is bounded by ``timeout`` seconds."""

    def __init__(self, pool: asyncpg.Pool, *, timeout: float = 2.0) -> None:
        self._pool = pool
        self._timeout = timeout

    async def lookup(self, phone: str) -> PatientCard | None:
        """``phone`` must be E.164. Raises CrmTimeout / CrmUnavailable."""
        async with pg_errors(self._pool, self._timeout, "lookup") as conn:
            row = await conn.fetchrow(LOOKUP_SQL, phone)
        return None if row is None else card_from_row(row)

    async def card(self, patient_id: int) -> PatientCard | None:
        async with pg_errors(self._pool, self._timeout, "patient card") as conn:
            row = await conn.fetchrow(CARD_BY_ID_SQL, patient_id)
        return None if row is None else card_from_row(row)

    async def deliver(self, kind: str, data: Mapping[str, Any], *, idempotency_key: str) -> None:
        """Write the push as a row; a second delivery of the same key changes nothing.

        Raises CrmRejected for an unknown kind or data the tables refuse.
        """
        writer = _WRITERS.get(kind)
        if writer is None:
            raise CrmRejected(message=f"embedded CRM: unknown push kind {kind!r}", kind=kind)
        try:
            async with pg_errors(self._pool, self._timeout, kind) as conn, conn.transaction():
                await writer(conn, idempotency_key, data)
        except (KeyError, ValueError, TypeError) as exc:
            raise CrmRejected(message=f"embedded CRM: bad {kind} payload: {exc!r}") from exc


_PATIENT_OF = (  # the same patient the lookup shows for a shared number (LOOKUP_SQL)
    "(SELECT ph.patient_id FROM crm_patient_phones ph JOIN crm_patients pp ON pp.id = ph.patient_id"
    " WHERE ph.phone = $2 ORDER BY pp.updated_at DESC, pp.id LIMIT 1)"
)


def _ts(value: Any) -> datetime | None:
    return None if not value else datetime.fromisoformat(str(value))


async def _write_call_record(conn: Any, key: str, d: Mapping[str, Any]) -> None:
    row = await conn.fetchrow(
        "INSERT INTO crm_call_records (idempotency_key, phone, patient_id, call_id, state, agent,"
        f" ad_source, started_at, payload) VALUES ($1, $2, {_PATIENT_OF}, $3, $4, $5, $6, $7,"
        " $8::jsonb) ON CONFLICT (idempotency_key) DO NOTHING RETURNING patient_id",
        key,
        d.get("phone", ""),
        str(d["call_id"]),
        d.get("state", ""),
        d.get("agent", ""),
        d.get("ad_source", ""),
        _ts(d.get("started_at")),
        json.dumps(d, ensure_ascii=False),
    )
    talked = d.get("agent") and d.get("answered_at")  # who rang but was not answered: no
    if row is not None and row["patient_id"] is not None and talked:
        await conn.execute(
            "UPDATE crm_patients SET last_operator = $2, updated_at = now() WHERE id = $1",
            row["patient_id"],
            d["agent"],
        )


async def _write_outcome(conn: Any, key: str, d: Mapping[str, Any]) -> None:
    await conn.execute(
        "INSERT INTO crm_call_outcomes (idempotency_key, phone, call_id, tags, outcome, operator,"
        " comment) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (idempotency_key) DO NOTHING",
        key,
        d.get("phone", ""),
        str(d["call_id"]),
        list(d.get("tags", [])),
        d.get("outcome", ""),
        d.get("operator", ""),
        d.get("comment", ""),
    )


async def _write_callback(conn: Any, key: str, d: Mapping[str, Any]) -> None:
    await conn.execute(
        "INSERT INTO crm_callback_requests (idempotency_key, phone, patient_id, call_id, reason,"
        f" due_at, comment) VALUES ($1, $2, {_PATIENT_OF}, $3, $4, $5, $6)"
        " ON CONFLICT (idempotency_key) DO NOTHING",
        key,
        d["phone"],
        d.get("call_id", ""),
        d.get("reason", ""),
        _ts(d.get("due_at")),
        d.get("comment", ""),
    )


async def _write_appointment_request(conn: Any, key: str, d: Mapping[str, Any]) -> None:
    doctor = d.get("doctor_id") or None
    await conn.execute(
        "INSERT INTO crm_appointment_requests (idempotency_key, phone, patient_id, full_name,"
        " call_id, doctor_id, specialty, clinic, preferred_time, comment)"
        f" VALUES ($1, $2, {_PATIENT_OF}, $3, $4, $5, $6, $7, $8, $9)"
        " ON CONFLICT (idempotency_key) DO NOTHING",
        key,
        d["phone"],
        d.get("full_name", ""),
        d.get("call_id", ""),
        None if doctor is None else int(doctor),
        d.get("specialty", ""),
        d.get("clinic", ""),
        d.get("preferred_time", ""),
        d.get("comment", ""),
    )


_WRITERS = {
    "call_record": _write_call_record,
    "call_outcome": _write_outcome,
    "callback_request": _write_callback,
    "appointment_request": _write_appointment_request,
}
