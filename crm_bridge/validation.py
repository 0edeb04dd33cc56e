"""Validation of patient/appointment input from HTTP JSON bodies and CSV rows.

Pure. Values may be typed JSON or CSV text. Raises CrmValidationError whose ``details['field']``
names the first bad field and whose message says why; nothing is guessed (a phone that does not
normalise is an error, not dropped).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from callserver.core.phone import PhoneNumberError, normalize_phone
from callserver.core.text import text_problem
from crm_bridge.errors import CrmValidationError
from crm_bridge.models import APPOINTMENT_STATUSES

_INTERFACE = re.compile(r"^[A-Za-z]+/[A-Za-z0-9_.\-]{1,40}$|^$")
_PHONE_SPLIT = re.compile(r"[;,]")
_TRUE = {"1", "true", "yes", "y", "да", "t"}
_FALSE = {"0", "false", "no", "n", "нет", "f", ""}


@dataclass(frozen=True, slots=True)
class PatientInput:
    full_name: str
    phones: tuple[str, ...]
    external_id: str | None = None
    birth_date: date | None = None
    language: str = "ru"
    segment: str = ""
    vip: bool = False
    coordinator: str = ""
    clinic: str = ""
    notes: str = ""
    balance: Decimal = Decimal(0)
    prepayment_required: bool = False


@dataclass(frozen=True, slots=True)
class AppointmentInput:
    starts_at: datetime
    patient_id: int | None = None
    patient_external_id: str = ""
    patient_phone: str = ""
    doctor: str = ""
    clinic: str = ""
    room: str = ""
    duration_min: int = 30
    status: str = "booked"
    service: str = ""
    external_id: str | None = None


def _bad(field: str, why: str) -> CrmValidationError:
    return CrmValidationError(message=f"{field}: {why}", field=field)


def text(d: Mapping[str, Any], key: str, *, required: bool = False, limit: int = 500) -> str:
    value = d.get(key)
    value = "" if value is None else value
    if not isinstance(value, str | int) or isinstance(value, bool):
        raise _bad(key, "expected text")
    value = str(value).strip()
    if required and not value:
        raise _bad(key, "required")
    if len(value) > limit:
        raise _bad(key, f"longer than {limit} characters")
    if (problem := text_problem(value)) is not None:  # PostgreSQL could not store it
        raise _bad(key, problem)
    if any(ch in value for ch in "\r\n") and key != "notes":
        raise _bad(key, "line breaks are not allowed")
    return value


def flag(d: Mapping[str, Any], key: str) -> bool:
    value = d.get(key)
    if isinstance(value, bool):
        return value
    lowered = "" if value is None else str(value).strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise _bad(key, f"expected yes/no, got {value!r}")


def money(d: Mapping[str, Any], key: str) -> Decimal:
    raw = d.get(key)
    if raw is None or raw == "":
        return Decimal(0)
    try:
        amount = Decimal(str(raw).replace(" ", "").replace(",", "."))
    except InvalidOperation:
        raise _bad(key, f"expected an amount, got {raw!r}") from None
    if not amount.is_finite() or abs(amount) >= Decimal("1e10"):
        raise _bad(key, f"amount out of range: {raw!r}")
    return amount.quantize(Decimal("0.01"))


def birth_date(d: Mapping[str, Any], key: str) -> date | None:
    raw = text(d, key)
    if not raw:
        return None
    for fmt in ("%Y-%m-%d", "%d.%m.%Y"):
        try:
            value = datetime.strptime(raw, fmt).date()
        except ValueError:
            continue
        if not date(1900, 1, 1) <= value <= date.today():
            raise _bad(key, f"date out of range: {raw}")
        return value
    raise _bad(key, f"expected YYYY-MM-DD or DD.MM.YYYY, got {raw!r}")


def timestamp(d: Mapping[str, Any], key: str) -> datetime:
    raw = text(d, key, required=True)
    try:
        value = datetime.fromisoformat(raw.replace(" ", "T", 1))
    except ValueError:
        raise _bad(key, f"expected ISO 8601 time, got {raw!r}") from None
    if value.tzinfo is None:
        raise _bad(key, "time needs a UTC offset (e.g. 2026-12-01T09:30+03:00)")
    return value


def phones(d: Mapping[str, Any], key: str) -> tuple[str, ...]:
    raw = d.get(key)
    items = raw if isinstance(raw, list) else _PHONE_SPLIT.split(str(raw or ""))
    result: list[str] = []
    for item in items:
        if not isinstance(item, str):
            raise _bad(key, "expected phone numbers as text")
        if not item.strip():
            continue
        try:
            e164 = normalize_phone(item)
        except PhoneNumberError as exc:
            raise _bad(key, f"{item.strip()!r}: {exc.message}") from None
        if e164 not in result:
            result.append(e164)
    if not result:
        raise _bad(key, "at least one phone number is required")
    return tuple(result)


def interface(d: Mapping[str, Any], key: str) -> str:
    """An operator interface (``PJSIP/op101``) or empty."""
    value = text(d, key, limit=60)
    if not _INTERFACE.match(value):
        raise _bad(key, f"expected an interface like PJSIP/op101, got {value!r}")
    return value


def parse_patient(d: Mapping[str, Any]) -> PatientInput:
    coordinator = interface(d, "coordinator")
    language = text(d, "language", limit=8) or "ru"
    return PatientInput(
        external_id=text(d, "external_id", limit=100) or None,
        full_name=text(d, "full_name", required=True, limit=200),
        birth_date=birth_date(d, "birth_date"),
        phones=phones(d, "phones"),
        language=language.lower(),
        segment=text(d, "segment", limit=60),
        vip=flag(d, "vip"),
        coordinator=coordinator,
        clinic=text(d, "clinic", limit=200),
        notes=text(d, "notes", limit=4000),
        balance=money(d, "balance"),
        prepayment_required=flag(d, "prepayment_required"),
    )


def parse_appointment(d: Mapping[str, Any]) -> AppointmentInput:
    status = text(d, "status", limit=20).lower() or "booked"
    if status not in APPOINTMENT_STATUSES:
        raise _bad("status", f"expected one of {', '.join(APPOINTMENT_STATUSES)}, got {status!r}")
    duration = text(d, "duration_min", limit=5) or "30"
    if not duration.isdigit() or not 0 < int(duration) <= 24 * 60:
        raise _bad("duration_min", f"expected minutes 1..1440, got {duration!r}")
    patient_id = text(d, "patient_id", limit=20)
    if patient_id and not patient_id.isdigit():
        raise _bad("patient_id", f"expected a number, got {patient_id!r}")
    phone = text(d, "patient_phone", limit=40)
    appt = AppointmentInput(
        starts_at=timestamp(d, "starts_at"),
        patient_id=int(patient_id) if patient_id else None,
        patient_external_id=text(d, "patient_external_id", limit=100),
        patient_phone=phones(d, "patient_phone")[0] if phone else "",
        doctor=text(d, "doctor", limit=200),
        clinic=text(d, "clinic", limit=200),
        room=text(d, "room", limit=40),
        duration_min=int(duration),
        status=status,
        service=text(d, "service", limit=200),
        external_id=text(d, "external_id", limit=100) or None,
    )
    if appt.patient_id is None and not appt.patient_external_id and not appt.patient_phone:
        raise _bad("patient_id", "one of patient_id, patient_external_id, patient_phone required")
    return appt


def parse_patient_changes(d: Mapping[str, Any]) -> dict[str, Any]:
    """A PATCH body: only the fields present, each validated like ``parse_patient``."""
    readers: dict[str, Any] = {
        "full_name": lambda: text(d, "full_name", required=True, limit=200),
        "birth_date": lambda: birth_date(d, "birth_date"),
        "phones": lambda: phones(d, "phones"),
        "language": lambda: (text(d, "language", limit=8) or "ru").lower(),
        "segment": lambda: text(d, "segment", limit=60),
        "vip": lambda: flag(d, "vip"),
        "coordinator": lambda: interface(d, "coordinator"),
        "notes": lambda: text(d, "notes", limit=4000),
        "balance": lambda: money(d, "balance"),
        "prepayment_required": lambda: flag(d, "prepayment_required"),
    }
    changes: dict[str, Any] = {}
    for key in d:
        if key not in readers:
            raise _bad(key, "unknown or read-only field")
        changes[key] = readers[key]()
    return changes
