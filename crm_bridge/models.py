"""crm_bridge data: patient cards, call records and requests, with their JSON wire form.

Pure (standard library only). The JSON form is the contract with an external CRM (see README.md):
times are ISO 8601 with an offset, dates ``YYYY-MM-DD``, money a decimal string in roubles,
phone numbers E.164. ``card_from_dict`` validates untrusted JSON and raises CrmValidationError.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, Literal, get_args

AppointmentStatus = Literal["booked", "confirmed", "came", "no_show", "cancelled"]
APPOINTMENT_STATUSES: tuple[str, ...] = get_args(AppointmentStatus)
PushKind = Literal["call_record", "call_outcome", "callback_request", "appointment_request"]
PUSH_KINDS: tuple[str, ...] = get_args(PushKind)


@dataclass(frozen=True, slots=True)
class AppointmentInfo:
    id: str
    starts_at: datetime
    doctor: str
    specialty: str = ""
    clinic: str = ""
    room: str = ""
    status: str = "booked"
    service: str = ""


@dataclass(frozen=True, slots=True)
class PlanItem:
    id: str
    plan: str
    description: str
    status: str = "planned"
    price: Decimal = Decimal(0)
    planned_for: date | None = None


@dataclass(frozen=True, slots=True)
class PatientCard:
    """What routing and the operator's screen-pop need to know about a caller."""

    id: str
    full_name: str
    phones: tuple[str, ...] = ()
    birth_date: date | None = None
    language: str = "ru"
    segment: str = ""
    vip: bool = False
    coordinator: str = ""
    """Treatment coordinator: an operator interface (``PJSIP/op101``) for sticky routing."""
    last_operator: str = ""
    clinic: str = ""
    last_visit: datetime | None = None
    next_appointment: AppointmentInfo | None = None
    plan_items: tuple[PlanItem, ...] = ()
    balance: Decimal = Decimal(0)
    """Outstanding balance the patient owes, roubles (0 = nothing owed)."""
    prepayment_required: bool = False
    notes: str = ""


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    at: float
    """POSIX seconds."""
    event: str
    detail: str = ""


@dataclass(frozen=True, slots=True)
class CallRecord:
    """A finished call as pushed to the CRM (built from a CallEnded/CallAbandoned snapshot)."""

    call_id: str
    direction: str
    state: str
    """``ended`` or ``abandoned``."""
    phone: str
    """Caller as E.164, or empty when the caller ID was not a readable number."""
    did: str = ""
    ad_source: str = ""
    queue: str = ""
    agent: str = ""
    agent_name: str = ""
    started_at: float = 0.0
    answered_at: float | None = None
    ended_at: float | None = None
    wait_seconds: float | None = None
    talk_seconds: float | None = None
    hangup_by: str = ""
    hangup_cause: str = ""
    routing_reason: str = ""
    recording_url: str = ""
    timeline: tuple[TimelineEntry, ...] = ()

    @property
    def idempotency_key(self) -> str:
        return f"call-record:{self.call_id}"


@dataclass(frozen=True, slots=True)
class CallOutcome:
    """Tags and outcome an operator set on a call (``outcome`` e.g. ``booked``, ``info``)."""

    call_id: str
    phone: str
    tags: tuple[str, ...] = ()
    outcome: str = ""
    operator: str = ""
    comment: str = ""

    @property
    def idempotency_key(self) -> str:
        digest = _digest(
            [self.call_id, sorted(self.tags), self.outcome, self.operator, self.comment]
        )
        return f"call-outcome:{self.call_id}:{digest}"


@dataclass(frozen=True, slots=True)
class CallbackRequest:
    phone: str
    reason: str = "missed_call"
    patient_id: str = ""
    call_id: str = ""
    due_at: datetime | None = None
    comment: str = ""
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    """Pass a stable id (e.g. the call id) so a repeated request is delivered once."""

    @property
    def idempotency_key(self) -> str:
        return f"callback-request:{self.request_id}"


@dataclass(frozen=True, slots=True)
class AppointmentRequest:
    phone: str
    full_name: str = ""
    patient_id: str = ""
    call_id: str = ""
    doctor_id: str = ""
    specialty: str = ""
    clinic: str = ""
    preferred_time: str = ""
    comment: str = ""
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)

    @property
    def idempotency_key(self) -> str:
        return f"appointment-request:{self.request_id}"


def _digest(value: Any) -> str:
    raw = json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


def iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def iso_ts(value: float | None) -> str | None:
    return None if value is None else datetime.fromtimestamp(value, UTC).isoformat()
