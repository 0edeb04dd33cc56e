"""The I/O the desk needs, as its own Protocols (no other domain is imported).

Provided by others: ``patient_lookup`` and ``crm_requests`` (crm), ``dialer`` (callbacks).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Protocol


class Appointment(Protocol):
    starts_at: datetime
    doctor: str
    specialty: str
    clinic: str


class PlanItem(Protocol):
    plan: str
    description: str
    status: str
    price: Decimal
    planned_for: date | None


class Patient(Protocol):
    """The part of the CRM's patient card the screen-pop shows."""

    id: str
    full_name: str
    birth_date: date | None
    segment: str
    vip: bool
    coordinator: str
    next_appointment: Appointment | None
    plan_items: Sequence[PlanItem]
    notes: str
    language: str


class PatientLookup(Protocol):
    async def lookup(self, phone: str) -> Patient | None: ...


class CrmOutcomes(Protocol):
    """``crm_requests``: a call's tags and outcome, and new patients, go to the CRM through its
    outbox."""

    async def push_outcome(
        self, *, call_id: str, phone: str, tags: Sequence[str], outcome: str, operator: str,
        comment: str,
    ) -> None: ...  # fmt: skip

    async def request_appointment(
        self, *, phone: str, full_name: str = "", patient_id: str = "", call_id: str = "",
        comment: str = "", preferred_time: str = "",
    ) -> None: ...  # fmt: skip


class Dialer(Protocol):
    """``dialer``: agent-first click-to-call (rings the operator, then the patient)."""

    async def dial(
        self, *, operator: str, phone: str, caller_id: str, context: dict[str, str],
        timeout: float = 30.0,  # noqa: ASYNC109 - the dialer's own deadline, per the agreed port
    ) -> dict[str, object]: ...  # fmt: skip
