"""Reads and writes of the embedded CRM behind its REST API and the CSV importer.

Each write returns the phone numbers whose cached card it may have changed, so the caller can
invalidate the lookup cache. Every call is bounded by ``timeout`` seconds; asyncpg errors become
CrmTimeout / CrmUnavailable / CrmRejected (``embedded.pg_errors``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import asyncpg

from callserver.core.phone import try_normalize
from crm_bridge.embedded import CARD_BY_ID_SQL, card_from_row, pg_errors
from crm_bridge.errors import CrmNotFound, CrmValidationError
from crm_bridge.models import APPOINTMENT_STATUSES, PatientCard
from crm_bridge.validation import AppointmentInput, PatientInput

_PATIENT_COLUMNS = (
    "full_name", "birth_date", "language", "segment", "vip", "coordinator", "notes", "balance",
    "prepayment_required",
)  # fmt: skip


class CrmAdmin:
    def __init__(self, pool: asyncpg.Pool, *, timeout: float = 5.0) -> None:
        self._pool = pool
        self._timeout = timeout

    async def card(self, patient_id: int) -> PatientCard:
        """Raises CrmNotFound."""
        async with pg_errors(self._pool, self._timeout, "patient card") as conn:
            row = await conn.fetchrow(CARD_BY_ID_SQL, patient_id)
        if row is None:
            raise CrmNotFound(message=f"patient {patient_id} not found", patient_id=patient_id)
        return card_from_row(row)

    async def search_patients(self, query: str, limit: int, offset: int) -> list[dict[str, Any]]:
        """By phone when ``query`` reads as one, else by name (case-insensitive substring)."""
        phone = try_normalize(query)
        where = "p.id IN (SELECT patient_id FROM crm_patient_phones WHERE phone = $1)"
        if phone is None:
            where = "p.full_name ILIKE '%' || $1 || '%'"
        sql = (
            "SELECT p.id, p.full_name, p.vip, p.segment, p.coordinator, ARRAY(SELECT x.phone"
            " FROM crm_patient_phones x WHERE x.patient_id = p.id ORDER BY x.phone) AS phones"
            f" FROM crm_patients p WHERE {where} ORDER BY p.full_name, p.id LIMIT $2 OFFSET $3"
        )
        like = query.replace("\\", "\\\\").replace("%", r"\%").replace("_", r"\_")
        arg = phone if phone is not None else like  # \ first: it is LIKE's escape character
        async with pg_errors(self._pool, self._timeout, "patient search") as conn:
            rows = await conn.fetch(sql, arg, limit, offset)
        return [{**dict(r), "id": str(r["id"]), "phones": list(r["phones"])} for r in rows]

    async def create_patient(self, p: PatientInput) -> int:
        async with (
            pg_errors(self._pool, self._timeout, "create patient") as conn,
            conn.transaction(),
        ):
            return await _insert_patient(conn, p)

    async def update_patient(self, patient_id: int, changes: Mapping[str, Any]) -> list[str]:
        """Set the given columns (and replace ``phones`` when present); returns old+new phones."""
        unknown = set(changes) - {*_PATIENT_COLUMNS, "phones"}
        if unknown:
            field = sorted(unknown)[0]
            raise CrmValidationError(message=f"{field}: cannot be changed", field=field)
        columns = [c for c in _PATIENT_COLUMNS if c in changes]
        sets = ", ".join(f"{c} = ${i + 2}" for i, c in enumerate(columns))
        async with (
            pg_errors(self._pool, self._timeout, "update patient") as conn,
            conn.transaction(),
        ):
            old = await _phones_of(conn, patient_id)
            found = await conn.fetchval(
                    f"UPDATE crm_patients SET {sets + ', ' if sets else ''}updated_at = now()"
                    " WHERE id = $1 RETURNING id",
                    patient_id, *(changes[c] for c in columns),
                )  # fmt: skip
            if found is None:
                raise CrmNotFound(message=f"patient {patient_id} not found")
            if "phones" in changes:
                await conn.execute(
                    "DELETE FROM crm_patient_phones WHERE patient_id = $1", patient_id
                )
                await _insert_phones(conn, patient_id, changes["phones"])
        return sorted({*old, *changes.get("phones", ())})

    async def list_appointments(
        self, patient_id: int | None, since: datetime | None, limit: int
    ) -> list[dict[str, Any]]:
        async with pg_errors(self._pool, self._timeout, "appointments") as conn:
            rows = await conn.fetch(
                "SELECT a.id, a.patient_id, p.full_name AS patient, a.starts_at, a.duration_min,"
                " a.status, a.room, a.service, coalesce(d.full_name, '') AS doctor,"
                " coalesce(c.name, '') AS clinic FROM crm_appointments a"
                " JOIN crm_patients p ON p.id = a.patient_id"
                " LEFT JOIN crm_doctors d ON d.id = a.doctor_id"
                " LEFT JOIN crm_clinics c ON c.id = a.clinic_id"
                " WHERE ($1::bigint IS NULL OR a.patient_id = $1)"
                " AND ($2::timestamptz IS NULL OR a.starts_at >= $2)"
                " ORDER BY a.starts_at, a.id LIMIT $3",
                patient_id, since, limit,
            )  # fmt: skip
        return [
            {
                **dict(r),
                "id": str(r["id"]),
                "patient_id": str(r["patient_id"]),
                "starts_at": r["starts_at"].isoformat(),
            }
            for r in rows
        ]

    async def create_appointment(self, a: AppointmentInput) -> tuple[int, list[str]]:
        """Returns the new id and the patient's phones. Raises CrmNotFound / CrmValidationError."""
        async with (
            pg_errors(self._pool, self._timeout, "create appointment") as conn,
            conn.transaction(),
        ):
            new_id, patient_id = await _insert_appointment(conn, a)
            return new_id, await _phones_of(conn, patient_id)

    async def set_appointment_status(self, appointment_id: int, status: str) -> list[str]:
        if status not in APPOINTMENT_STATUSES:
            raise CrmValidationError(message=f"status: unknown {status!r}", field="status")
        async with pg_errors(self._pool, self._timeout, "appointment status") as conn:
            patient_id = await conn.fetchval(
                "UPDATE crm_appointments SET status = $2, updated_at = now() WHERE id = $1"
                " RETURNING patient_id",
                appointment_id, status,
            )  # fmt: skip
            if patient_id is None:
                raise CrmNotFound(message=f"appointment {appointment_id} not found")
            return await _phones_of(conn, patient_id)

    async def list_doctors(self) -> list[dict[str, Any]]:
        async with pg_errors(self._pool, self._timeout, "doctors") as conn:
            rows = await conn.fetch(
                "SELECT d.id, d.full_name, c.name AS clinic, d.active, ARRAY(SELECT s.name"
                " FROM crm_doctor_specialties ds JOIN crm_specialties s ON s.id = ds.specialty_id"
                " WHERE ds.doctor_id = d.id ORDER BY s.name) AS specialties"
                " FROM crm_doctors d JOIN crm_clinics c ON c.id = d.clinic_id ORDER BY d.id"
            )
        return [
            {**dict(r), "id": str(r["id"]), "specialties": list(r["specialties"])} for r in rows
        ]

    async def list_clinics(self) -> list[dict[str, Any]]:
        async with pg_errors(self._pool, self._timeout, "clinics") as conn:
            rows = await conn.fetch(
                "SELECT id, name, address, timezone FROM crm_clinics ORDER BY id"
            )
        return [{**dict(r), "id": str(r["id"])} for r in rows]

    async def import_patient(self, p: PatientInput) -> int:
        """Insert, or update by ``external_id`` when that patient exists (phones replaced)."""
        async with (
            pg_errors(self._pool, self._timeout, "import patient") as conn,
            conn.transaction(),
        ):
            existing = None
            if p.external_id:
                existing = await conn.fetchval(
                    "SELECT id FROM crm_patients WHERE external_id = $1", p.external_id
                )
            if existing is None:
                return await _insert_patient(conn, p)
            await _update_imported(conn, int(existing), p)
            return int(existing)

    async def import_appointment(self, a: AppointmentInput) -> int:
        async with (
            pg_errors(self._pool, self._timeout, "import appointment") as conn,
            conn.transaction(),
        ):
            return (await _insert_appointment(conn, a))[0]


async def _phones_of(conn: Any, patient_id: int) -> list[str]:
    rows = await conn.fetch(
        "SELECT phone FROM crm_patient_phones WHERE patient_id = $1", patient_id
    )
    return [r["phone"] for r in rows]


async def _insert_phones(conn: Any, patient_id: int, phones: Sequence[str]) -> None:
    await conn.executemany(
        "INSERT INTO crm_patient_phones (phone, patient_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        [(ph, patient_id) for ph in phones],
    )


async def _clinic_id(conn: Any, name: str) -> int | None:
    if not name:
        return None
    found = await conn.fetchval("SELECT id FROM crm_clinics WHERE name = $1", name)
    if found is None:
        raise CrmValidationError(message=f"clinic: unknown clinic {name!r}", field="clinic")
    return int(found)


async def _update_imported(conn: Any, patient_id: int, p: PatientInput) -> None:
    """Re-import of a known ``external_id``: refresh its fields and phones, keep its history."""
    await conn.execute(
        "UPDATE crm_patients SET full_name = $2, birth_date = $3, language = $4, segment = $5,"
        " vip = $6, coordinator = $7, clinic_id = $8, notes = $9, balance = $10,"
        " prepayment_required = $11, updated_at = now() WHERE id = $1",
        patient_id, p.full_name, p.birth_date, p.language, p.segment, p.vip, p.coordinator,
        await _clinic_id(conn, p.clinic), p.notes, p.balance, p.prepayment_required,
    )  # fmt: skip
    await conn.execute("DELETE FROM crm_patient_phones WHERE patient_id = $1", patient_id)
    await _insert_phones(conn, patient_id, p.phones)


async def _insert_patient(conn: Any, p: PatientInput) -> int:
    new_id = await conn.fetchval(
        "INSERT INTO crm_patients (external_id, full_name, birth_date, language, segment, vip,"
        " coordinator, clinic_id, notes, balance, prepayment_required)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id",
        p.external_id, p.full_name, p.birth_date, p.language, p.segment, p.vip,
        p.coordinator, await _clinic_id(conn, p.clinic), p.notes, p.balance,
        p.prepayment_required,
    )  # fmt: skip
    await _insert_phones(conn, new_id, p.phones)
    return int(new_id)


async def _resolve_patient(conn: Any, a: AppointmentInput) -> int:
    if a.patient_id is not None:
        found = await conn.fetchval("SELECT id FROM crm_patients WHERE id = $1", a.patient_id)
    elif a.patient_external_id:
        found = await conn.fetchval(
            "SELECT id FROM crm_patients WHERE external_id = $1", a.patient_external_id
        )
    else:
        found = await conn.fetchval(
            "SELECT patient_id FROM crm_patient_phones WHERE phone = $1 LIMIT 1", a.patient_phone
        )
    if found is None:
        raise CrmValidationError(message="patient: no such patient", field="patient")
    return int(found)


async def _insert_appointment(conn: Any, a: AppointmentInput) -> tuple[int, int]:
    patient_id = await _resolve_patient(conn, a)
    clinic_id = await _clinic_id(conn, a.clinic)
    doctor_id = None
    if a.doctor:
        doctor_id = await conn.fetchval(
            "SELECT id FROM crm_doctors WHERE full_name = $1"
            " AND ($2::int IS NULL OR clinic_id = $2) ORDER BY id LIMIT 1",
            a.doctor, clinic_id,
        )  # fmt: skip
        if doctor_id is None:
            raise CrmValidationError(message=f"doctor: unknown doctor {a.doctor!r}", field="doctor")
    new_id = await conn.fetchval(
        "INSERT INTO crm_appointments (external_id, patient_id, doctor_id, clinic_id, room,"
        " starts_at, duration_min, status, service) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        " ON CONFLICT (external_id) DO UPDATE SET status = EXCLUDED.status,"
        " starts_at = EXCLUDED.starts_at, updated_at = now() RETURNING id",
        a.external_id, patient_id, doctor_id, clinic_id, a.room, a.starts_at, a.duration_min,
        a.status, a.service,
    )  # fmt: skip
    return int(new_id), patient_id
