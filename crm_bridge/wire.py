"""JSON wire form of crm_bridge data (the contract with an external CRM, see README.md).

Pure. ``card_from_dict`` reads untrusted JSON (a clinic CRM's lookup answer, our own cache) and
raises CrmValidationError naming the bad field; it never guesses.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from callserver.core.events import CallAbandoned, CallEnded
from callserver.core.phone import try_normalize
from callserver.core.text import clean_text
from crm_bridge.errors import CrmValidationError
from crm_bridge.models import (
    AppointmentInfo,
    AppointmentRequest,
    CallbackRequest,
    CallOutcome,
    CallRecord,
    PatientCard,
    PlanItem,
    TimelineEntry,
    iso,
    iso_ts,
)

Push = CallRecord | CallOutcome | CallbackRequest | AppointmentRequest
MAX_TEXT = 4000
"""Characters kept of one text field of a card read from a clinic's CRM."""


def card_to_dict(card: PatientCard) -> dict[str, Any]:
    nxt = card.next_appointment
    return {
        "id": card.id,
        "full_name": card.full_name,
        "phones": list(card.phones),
        "birth_date": card.birth_date.isoformat() if card.birth_date else None,
        "language": card.language,
        "segment": card.segment,
        "vip": card.vip,
        "coordinator": card.coordinator,
        "last_operator": card.last_operator,
        "clinic": card.clinic,
        "last_visit": iso(card.last_visit),
        "next_appointment": None if nxt is None else _appointment_to_dict(nxt),
        "plan_items": [_plan_item_to_dict(p) for p in card.plan_items],
        "balance": str(card.balance),
        "prepayment_required": card.prepayment_required,
        "notes": card.notes,
    }


def _appointment_to_dict(a: AppointmentInfo) -> dict[str, Any]:
    return {
        "id": a.id,
        "starts_at": a.starts_at.isoformat(),
        "doctor": a.doctor,
        "specialty": a.specialty,
        "clinic": a.clinic,
        "room": a.room,
        "status": a.status,
        "service": a.service,
    }


def _plan_item_to_dict(p: PlanItem) -> dict[str, Any]:
    return {
        "id": p.id,
        "plan": p.plan,
        "description": p.description,
        "status": p.status,
        "price": str(p.price),
        "planned_for": p.planned_for.isoformat() if p.planned_for else None,
    }


def card_from_dict(data: Any) -> PatientCard:
    """Validate and read a card dict. Raises CrmValidationError (``details['field']``)."""
    d = _mapping(data, "card")
    nxt = d.get("next_appointment")
    return PatientCard(
        id=_text(d, "id", required=True),
        full_name=_text(d, "full_name", required=True),
        phones=tuple(_text_list(d, "phones")),
        birth_date=_date(d, "birth_date"),
        language=_text(d, "language") or "ru",
        segment=_text(d, "segment"),
        vip=_bool(d, "vip"),
        coordinator=_text(d, "coordinator"),
        last_operator=_text(d, "last_operator"),
        clinic=_text(d, "clinic"),
        last_visit=_datetime(d, "last_visit"),
        next_appointment=None if nxt is None else _appointment_from_dict(nxt),
        plan_items=tuple(_plan_item_from_dict(p) for p in _list(d, "plan_items")),
        balance=_money(d, "balance"),
        prepayment_required=_bool(d, "prepayment_required"),
        notes=_text(d, "notes"),
    )


def _appointment_from_dict(data: Any) -> AppointmentInfo:
    d = _mapping(data, "next_appointment")
    starts = _datetime(d, "starts_at")
    if starts is None:
        raise CrmValidationError(
            message="next_appointment.starts_at is required", field="starts_at"
        )
    return AppointmentInfo(
        id=_text(d, "id", required=True),
        starts_at=starts,
        doctor=_text(d, "doctor"),
        specialty=_text(d, "specialty"),
        clinic=_text(d, "clinic"),
        room=_text(d, "room"),
        status=_text(d, "status") or "booked",
        service=_text(d, "service"),
    )


def _plan_item_from_dict(data: Any) -> PlanItem:
    d = _mapping(data, "plan_items[]")
    return PlanItem(
        id=_text(d, "id", required=True),
        plan=_text(d, "plan"),
        description=_text(d, "description"),
        status=_text(d, "status") or "planned",
        price=_money(d, "price"),
        planned_for=_date(d, "planned_for"),
    )


def _mapping(data: Any, name: str) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise CrmValidationError(message=f"{name}: expected a JSON object", field=name)
    return data


def _text(d: Mapping[str, Any], key: str, *, required: bool = False) -> str:
    value = d.get(key)
    if value is None or value == "":
        if required:
            raise CrmValidationError(message=f"{key}: required", field=key)
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise CrmValidationError(message=f"{key}: expected text", field=key)
    return clean_text(str(value), MAX_TEXT)  # a clinic CRM's text is stored and shown


def _list(d: Mapping[str, Any], key: str) -> list[Any]:
    value = d.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise CrmValidationError(message=f"{key}: expected a list", field=key)
    return value


def _text_list(d: Mapping[str, Any], key: str) -> list[str]:
    items = _list(d, key)
    if not all(isinstance(v, str) for v in items):
        raise CrmValidationError(message=f"{key}: expected a list of text", field=key)
    return [clean_text(v, MAX_TEXT) for v in items]


def _bool(d: Mapping[str, Any], key: str) -> bool:
    value = d.get(key, False)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise CrmValidationError(message=f"{key}: expected true/false", field=key)
    return value


def _money(d: Mapping[str, Any], key: str) -> Decimal:
    value = d.get(key)
    if value is None or value == "":
        return Decimal(0)
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise CrmValidationError(message=f"{key}: expected a decimal amount", field=key)
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise CrmValidationError(message=f"{key}: expected a decimal amount", field=key) from None
    if not amount.is_finite():
        raise CrmValidationError(message=f"{key}: expected a finite amount", field=key)
    return amount


def _date(d: Mapping[str, Any], key: str) -> date | None:
    value = d.get(key)
    if value is None or value == "":
        return None
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise CrmValidationError(message=f"{key}: expected YYYY-MM-DD", field=key) from None


def _datetime(d: Mapping[str, Any], key: str) -> datetime | None:
    value = d.get(key)
    if value is None or value == "":
        return None
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        raise CrmValidationError(message=f"{key}: expected ISO 8601 time", field=key) from None
    if parsed.tzinfo is None:
        raise CrmValidationError(message=f"{key}: time needs a UTC offset", field=key)
    return parsed


def push_payload(item: Push) -> tuple[str, dict[str, Any]]:
    """``(kind, data)`` for the outbox and the webhook body (see README.md)."""
    if isinstance(item, CallRecord):
        return "call_record", _call_record_dict(item)
    if isinstance(item, CallOutcome):
        return "call_outcome", {
            "call_id": item.call_id,
            "phone": item.phone,
            "tags": sorted(item.tags),
            "outcome": item.outcome,
            "operator": item.operator,
            "comment": item.comment,
        }
    if isinstance(item, CallbackRequest):
        return "callback_request", {
            "request_id": item.request_id,
            "phone": item.phone,
            "reason": item.reason,
            "patient_id": item.patient_id,
            "call_id": item.call_id,
            "due_at": iso(item.due_at),
            "comment": item.comment,
        }
    return "appointment_request", {
        "request_id": item.request_id,
        "phone": item.phone,
        "full_name": item.full_name,
        "patient_id": item.patient_id,
        "call_id": item.call_id,
        "doctor_id": item.doctor_id,
        "specialty": item.specialty,
        "clinic": item.clinic,
        "preferred_time": item.preferred_time,
        "comment": item.comment,
    }


def _call_record_dict(r: CallRecord) -> dict[str, Any]:
    return {
        "call_id": r.call_id,
        "direction": r.direction,
        "state": r.state,
        "phone": r.phone,
        "did": r.did,
        "ad_source": r.ad_source,
        "queue": r.queue,
        "agent": r.agent,
        "agent_name": r.agent_name,
        "started_at": iso_ts(r.started_at),
        "answered_at": iso_ts(r.answered_at),
        "ended_at": iso_ts(r.ended_at),
        "wait_seconds": r.wait_seconds,
        "talk_seconds": r.talk_seconds,
        "hangup_by": r.hangup_by,
        "hangup_cause": r.hangup_cause,
        "routing_reason": r.routing_reason,
        "recording_url": r.recording_url or None,
        "timeline": [
            {"at": iso_ts(t.at), "event": t.event, "detail": t.detail} for t in r.timeline
        ],
    }


def call_record_from_event(
    event: CallEnded | CallAbandoned, *, recording_url: str = ""
) -> CallRecord:
    """Build the pushed record from the snapshot of a finished call.

    The timeline is rebuilt from the snapshot's timestamps (started, queued, answered, ended);
    the routing reason comes from the ``ROUTE_REASON`` channel variable when routing set one.
    """
    c = event.call
    variables = dict(c.variables)
    state = "abandoned" if isinstance(event, CallAbandoned) else "ended"
    timeline = [TimelineEntry(c.started_at, "started", c.did)]
    if c.queued_at is not None:
        timeline.append(TimelineEntry(c.queued_at, "queued", c.queue))
    if c.answered_at is not None:
        timeline.append(TimelineEntry(c.answered_at, "answered", c.agent))
    timeline.append(TimelineEntry(c.ended_at or event.at, state, c.hangup_cause))
    return CallRecord(
        call_id=c.id,
        direction=c.direction,
        state=state,
        phone=try_normalize(c.caller) or "",
        did=c.did,
        ad_source=c.ad_source,
        queue=c.queue,
        agent=c.agent,
        agent_name=c.agent_name,
        started_at=c.started_at,
        answered_at=c.answered_at,
        ended_at=c.ended_at or event.at,
        wait_seconds=c.wait_seconds,
        talk_seconds=c.talk_seconds,
        hangup_by=c.hangup_by,
        hangup_cause=c.hangup_cause,
        routing_reason=variables.get("ROUTE_REASON", ""),
        recording_url=recording_url or variables.get("RECORDING_URL", ""),
        timeline=tuple(timeline),
    )
