"""crm_bridge without sockets: wire JSON, validation, backoff, the service with small fakes."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest

from callserver.core.events import CallAbandoned, CallAnswered, CallSnapshot
from callserver.core.phone import PhoneNumberError
from crm_bridge.errors import CrmTimeout, CrmUnavailable, CrmValidationError, OutboxError
from crm_bridge.models import (
    AppointmentInfo,
    CallbackRequest,
    CallOutcome,
    PatientCard,
    PlanItem,
)
from crm_bridge.outbox import OutboxSettings
from crm_bridge.service import CrmService
from crm_bridge.validation import parse_appointment, parse_patient, parse_patient_changes
from crm_bridge.wire import call_record_from_event, card_from_dict, card_to_dict, push_payload

CARD = PatientCard(
    id="42",
    full_name="Иванова Анна Сергеевна",
    phones=("+79161234567",),
    birth_date=date(1985, 3, 2),
    vip=True,
    coordinator="PJSIP/op103",
    last_visit=datetime(2026, 10, 1, 9, 0, tzinfo=UTC),
    next_appointment=AppointmentInfo(
        id="7", starts_at=datetime(2026, 12, 1, 6, 30, tzinfo=UTC), doctor="Смирнова", room="204"
    ),
    plan_items=(PlanItem(id="1", plan="План", description="имплантат", price=Decimal("45000.00")),),
    balance=Decimal("1500.50"),
    prepayment_required=True,
)


def test_card_survives_its_json_form() -> None:
    assert card_from_dict(card_to_dict(CARD)) == CARD


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"id": None}, "id"),
        ({"vip": "yes"}, "vip"),
        ({"balance": "NaN"}, "balance"),
        ({"birth_date": "02.03.1985"}, "birth_date"),
        ({"last_visit": "2026-10-01T09:00:00"}, "last_visit"),  # no offset: not guessed
        ({"phones": "+79161234567"}, "phones"),
        ({"next_appointment": {"id": "1"}}, "starts_at"),
    ],
)
def test_malformed_card_json_names_the_field(patch: dict[str, Any], field: str) -> None:
    with pytest.raises(CrmValidationError) as info:
        card_from_dict({**card_to_dict(CARD), **patch})
    assert info.value.details["field"] == field


def snap(**kw: Any) -> CallSnapshot:
    base: dict[str, Any] = dict(
        id="1.1", linkedid="1.1", direction="inbound", state="abandoned", caller="anonymous",
        caller_name="", did="+74950000001", ad_source="2gis", queue="reception", agent="",
        agent_name="", started_at=100.0, queued_at=102.0, ended_at=140.0,
    )  # fmt: skip
    return CallSnapshot(**{**base, **kw})


def test_call_record_from_an_abandoned_call() -> None:
    record = call_record_from_event(CallAbandoned(at=140.0, call=snap()))
    assert record.state == "abandoned" and record.phone == ""  # anonymous is not guessed
    assert [t.event for t in record.timeline] == ["started", "queued", "abandoned"]
    kind, data = push_payload(record)
    assert kind == "call_record" and data["started_at"] == "1970-01-01T00:01:40+00:00"
    assert record.idempotency_key == "call-record:1.1"


def test_outcome_key_changes_with_content_only() -> None:
    a = CallOutcome(call_id="1", phone="+79161234567", tags=("b", "a"), outcome="booked")
    b = CallOutcome(call_id="1", phone="+79161234567", tags=("a", "b"), outcome="booked")
    c = CallOutcome(call_id="1", phone="+79161234567", tags=("a",), outcome="booked")
    assert a.idempotency_key == b.idempotency_key != c.idempotency_key


def test_patient_validation() -> None:
    p = parse_patient({"full_name": " Петров  ", "phones": "8 916 123-45-67;+74951112233",
                       "vip": "да", "balance": "1 200,5", "birth_date": "01.02.1990"})  # fmt: skip
    assert p.full_name == "Петров" and p.phones == ("+79161234567", "+74951112233")
    assert p.vip and p.balance == Decimal("1200.50") and p.birth_date == date(1990, 2, 1)
    with pytest.raises(CrmValidationError, match="coordinator"):
        parse_patient({"full_name": "X", "phones": "+79161234567", "coordinator": "op1\r\nX"})
    with pytest.raises(CrmValidationError, match="read-only"):
        parse_patient_changes({"id": 5})
    with pytest.raises(CrmValidationError, match="UTC offset"):
        parse_appointment({"patient_id": "1", "starts_at": "2030-01-01T10:00"})


def test_backoff_doubles_up_to_the_cap() -> None:
    s = OutboxSettings(backoff_base=1.0, backoff_max=10.0)
    delays = [s.backoff(n) for n in (1, 2, 3, 4, 5, 9)]
    assert 0.9 <= delays[0] <= 1.0 and 1.8 <= delays[1] <= 2.0 and 3.6 <= delays[2] <= 4.0
    assert 9.0 <= delays[-1] <= 10.0
    with pytest.raises(OutboxError):
        OutboxSettings(lease=1.0, delivery_timeout=2.0)


class FakeBackend:
    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.lookups: list[str] = []

    async def lookup(self, phone: str) -> PatientCard | None:
        self.lookups.append(phone)
        await asyncio.sleep(self.delay)
        return CARD if phone == "+79161234567" else None

    async def deliver(self, kind: str, data: Mapping[str, Any], *, idempotency_key: str) -> None:
        return None


class FakeQueue:
    def __init__(self) -> None:
        self.items: dict[str, tuple[str, dict[str, Any]]] = {}

    async def enqueue(self, kind: str, data: Mapping[str, Any], *, idempotency_key: str) -> bool:
        new = idempotency_key not in self.items
        self.items.setdefault(idempotency_key, (kind, dict(data)))
        return new

    async def enqueue_many(self, items: Sequence[tuple[str, Mapping[str, Any], str]]) -> int:
        return sum([await self.enqueue(k, d, idempotency_key=key) for k, d, key in items])


class BrokenCache:
    async def get(self, phone: str) -> tuple[bool, PatientCard | None]:
        raise CrmUnavailable(message="redis down")

    async def put(self, phone: str, card: PatientCard | None) -> None:
        raise CrmUnavailable(message="redis down")

    async def invalidate(self, *phones: str) -> None:
        raise CrmUnavailable(message="redis down")


async def test_lookup_normalises_and_survives_a_broken_cache() -> None:
    backend = FakeBackend()
    service = CrmService(backend, FakeQueue(), BrokenCache())
    assert await service.lookup("8 (916) 123-45-67") == CARD
    assert backend.lookups == ["+79161234567"]
    with pytest.raises(PhoneNumberError):
        await service.lookup("anonymous")


async def test_slow_backend_raises_crm_timeout_at_the_deadline() -> None:
    service = CrmService(FakeBackend(delay=5.0), FakeQueue(), lookup_timeout=0.05)
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(CrmTimeout):
        await service.lookup("+79161234567")
    assert loop.time() - started < 0.5


async def test_finished_calls_on_the_bus_become_queued_call_records() -> None:
    queue = FakeQueue()
    service = CrmService(FakeBackend(), queue)
    await service.start()
    service.on_event(CallAbandoned(at=140.0, call=snap(caller="89161234567")))
    service.on_event(CallAnswered(at=120.0, call=snap(id="2.2")))  # not a finished call
    await service.create_callback_request(CallbackRequest(phone="8 916 123 45 67", request_id="r"))
    await service.aclose()  # drains what the bus already handed over
    assert set(queue.items) == {"call-record:1.1", "callback-request:r"}
    assert queue.items["call-record:1.1"][1]["phone"] == "+79161234567"
    assert queue.items["callback-request:r"][1]["phone"] == "+79161234567"


def test_demo_patients_are_the_callers_pbxsim_simulates() -> None:
    """If this fails, pbxsim's callers changed: run ``python -m crm_bridge write-demo-csv``."""
    from crm_bridge.demo_seed import PBXSIM_CSV, load_demo_patients, read_pbxsim_callers

    patients = load_demo_patients()
    assert len(patients) >= 300
    assert PBXSIM_CSV.exists(), f"{PBXSIM_CSV} missing"
    callers = read_pbxsim_callers()
    assert [p.phones[0] for p in patients] == [phone for phone, _, _ in callers]
    assert [p.full_name for p in patients] == [name for _, name, _ in callers]
    assert sum(p.vip for p in patients) > 0
    assert {p.coordinator for p in patients} >= {f"PJSIP/op{n}" for n in range(101, 107)}


@pytest.mark.parametrize(
    "header",
    [
        "t=1800000000,v1=é" + "0" * 63,  # non-ASCII MAC: compare_digest(str, str) raised TypeError
        "t=1800000000,v1=\u0663" * 2,  # Arabic-Indic digit in the MAC
        "t=\u0661\u0668\u0660\u0660\u0660\u0660\u0660\u0660\u0660\u0660,v1=" + "0" * 64,
        "t=²,v1=" + "0" * 64,  # str.isdigit() is true, int() raised ValueError
        "t=" + "1" * 5000 + ",v1=" + "0" * 64,  # int() of > 4300 digits raised ValueError
    ],
)
def test_signature_check_says_no_to_a_hostile_header_instead_of_raising(header: str) -> None:
    """Bug: ``verify`` raised on attacker-controlled headers (non-ASCII MAC or timestamp)."""
    from crm_bridge.signing import sign, verify

    body = b"{}"
    assert verify("s", sign("s", body, now=1_800_000_000), body, now=1_800_000_000)
    assert verify("s", header, body, now=1_800_000_000) is False


async def test_one_unreadable_finished_call_does_not_stop_the_call_record_consumer() -> None:
    """Bug: only CrmError was caught; any other error (here a timestamp no datetime can hold)
    ended the consumer task silently: every later call record was lost, and aclose() waited
    5 s and then raised that old error."""
    queue = FakeQueue()
    service = CrmService(FakeBackend(), queue)
    await service.start()
    service.on_event(CallAbandoned(at=140.0, call=snap(id="bad", started_at=1e13)))
    service.on_event(CallAbandoned(at=140.0, call=snap(id="2.2")))
    loop = asyncio.get_running_loop()
    started = loop.time()
    await service.aclose()
    assert loop.time() - started < 1.0
    assert set(queue.items) == {"call-record:2.2"}
