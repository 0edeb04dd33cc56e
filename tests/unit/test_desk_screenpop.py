"""Screen-pop with small fakes of our own ports (no sockets): the card reaches the ringing
operators before answer, follows the call, and leaves the screens of phones that stopped
ringing."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from callserver.core.events import (
    AgentRinging,
    AgentRingNoAnswer,
    CallAnswered,
    CallEnded,
    CallQueued,
    CallSnapshot,
)  # fmt: skip
from desk.directory import OperatorDirectory
from desk.hub import OperatorHub, Queue
from desk.models import User
from desk.screenpop import PopSettings, ScreenPop
from desk.scripts import ScriptBook

T0 = 1_764_000_000.0


@dataclass
class Appt:
    starts_at: datetime
    doctor: str
    specialty: str = "терапевт"
    clinic: str = "Клиника Центр"


@dataclass
class Item:
    plan: str
    description: str
    status: str = "planned"
    price: Decimal = Decimal("15000")
    planned_for: date | None = None


@dataclass
class Card:
    id: str
    full_name: str
    birth_date: date | None = date(1970, 1, 12)
    segment: str = "implants"
    vip: bool = True
    coordinator: str = "PJSIP/op103"
    next_appointment: Appt | None = None
    plan_items: tuple[Item, ...] = ()
    notes: str = "боится уколов"
    language: str = "ru"


@dataclass
class FakeLookup:
    cards: dict[str, Card]
    delay: float = 0.0
    asked: list[str] = field(default_factory=list)

    async def lookup(self, phone: str) -> Card | None:
        self.asked.append(phone)
        await asyncio.sleep(self.delay)
        return self.cards.get(phone)


class FakeStore:
    async def users(self) -> list[User]:
        return [User(1, "anna", "Анна Смирнова", ("operator",), "PJSIP/op101"),
                User(2, "boris", "Борис Петров", ("operator",), "PJSIP/op102"),
                User(3, "vera", "Вера Кураторова", ("operator",), "PJSIP/op103")]  # fmt: skip

    async def scripts(self) -> dict[str, dict[str, str]]:
        return {s: {"segment": s, "title": t, "body": b, "updated_by": ""} for s, t, b in (
            ("default", "Приветствие", "Здравствуйте, я {operator}"),
            ("implants", "Импланты", "{patient}, по имплантации: …"),
            ("new", "Новый пациент", "Вы у нас впервые?"))}  # fmt: skip


def snap(state: str = "queued", caller: str = "79161234567", **kw: Any) -> CallSnapshot:
    fields: dict[str, Any] = dict(
        id="1.1", linkedid="1.1", direction="inbound", state=state, caller=caller,
        caller_name="", did="74951234567", ad_source="yandex-north", queue="reception",
        agent="", agent_name="", started_at=T0,
        variables=(("ROUTE_QUEUE", "reception"), ("ROUTE_REASON", "sticky")))  # fmt: skip
    fields.update(kw)
    return CallSnapshot(**fields)


async def make(lookup: FakeLookup, budget: float = 0.3) -> tuple[ScreenPop, dict[str, Queue]]:
    hub, store = OperatorHub(), FakeStore()
    directory, scripts = OperatorDirectory(store), ScriptBook(store)  # type: ignore[arg-type]
    await directory.refresh()
    await scripts.reload()
    pops = ScreenPop(hub, directory, lookup, scripts,
                     PopSettings("Europe/Moscow", ("yandex",), "/rec/{file}", budget))  # fmt: skip
    return pops, {ext: hub.subscribe(ext) for ext in ("PJSIP/op101", "PJSIP/op102")}


def frames(queue: Queue) -> list[dict[str, Any]]:
    out = []
    while not queue.empty():
        text = queue.get_nowait()
        assert text is not None
        out.append(json.loads(text))
    return out


def ring(call: CallSnapshot, agent: str, at: float = T0 + 5) -> AgentRinging:
    return AgentRinging(at=at, call=call, queue="reception", agent=agent)


async def test_card_pops_on_ringing_phones_and_follows_the_call() -> None:
    appt = Appt(datetime(2026, 12, 8, 7, 0, tzinfo=UTC), "Смирнова Елена Павловна")
    card = Card("p1", "Лаб Пациент", next_appointment=appt,
                plan_items=(Item("Импланты", "имплант 3.6"), Item("Гигиена", "чистка", "done")))
    lookup = FakeLookup({"+79161234567": card})
    pops, q = await make(lookup)
    pops.on_event(CallQueued(at=T0 + 1, call=snap(), queue="reception", position=1))
    await asyncio.sleep(0.01)  # the lookup runs while the call waits in the queue
    ringing = snap("agent_ringing")
    pops.on_event(ring(ringing, "PJSIP/op101"))
    pops.on_event(ring(ringing, "PJSIP/op102"))
    a, b = frames(q["PJSIP/op101"]), frames(q["PJSIP/op102"])
    assert [f["state"] for f in a] == ["ringing"] and [f["state"] for f in b] == ["ringing"]
    c = a[0]["card"]
    assert c["patient"]["name"] == "Лаб Пациент" and c["patient"]["age"] == 55
    assert c["patient"]["vip"] and c["patient"]["coordinator"] == "Вера Кураторова"
    assert c["patient"]["next_appointment"]["starts_at"] == appt.starts_at.timestamp()
    assert [i["description"] for i in c["patient"]["plan_items"]] == ["имплант 3.6"]
    assert c["paid"] and c["routing"] == {"reason": "sticky", "queue": "reception"}
    assert c["script"] == {"title": "Импланты", "body": "Лаб Пациент, по имплантации: …"}
    assert c["operator"] == "Анна Смирнова" and b[0]["card"]["operator"] == "Борис Петров"
    assert lookup.asked == ["+79161234567"]  # once per call, not per ringing phone

    answered = snap("answered", agent="PJSIP/op101", answered_at=T0 + 8)
    pops.on_event(CallAnswered(at=T0 + 8, call=answered, queue="reception", agent="PJSIP/op101"))
    assert [f["state"] for f in frames(q["PJSIP/op101"])] == ["talking"]
    gone = frames(q["PJSIP/op102"])
    assert [(f["state"], f["reason"]) for f in gone] == [("gone", "answered_elsewhere")]
    assert pops.pops_of("PJSIP/op102") == []

    ended = snap("ended", agent="PJSIP/op101", answered_at=T0 + 8, ended_at=T0 + 60,
                 talk_seconds=52.0,
                 variables=(("MIXMONITOR_FILENAME", "/mon/r1.wav"),))  # fmt: skip
    pops.on_event(CallEnded(at=T0 + 60, call=ended))
    wrap = frames(q["PJSIP/op101"])
    assert [(f["state"], f["recording"], f["talk_seconds"]) for f in wrap] == [
        ("wrapup", "/rec/r1.wav", 52.0)]
    assert pops.close("PJSIP/op101", "1.1", "saved") and pops.pops_of("PJSIP/op101") == []
    await pops.aclose()


async def test_unknown_caller_gets_the_new_patient_card_and_script() -> None:
    pops, q = await make(FakeLookup({}))
    pops.on_event(ring(snap("agent_ringing", caller="89990001122"), "PJSIP/op101"))
    await asyncio.sleep(0.01)
    (f,) = frames(q["PJSIP/op101"])
    assert f["card"]["lookup"] == "unknown" and f["card"]["patient"] is None
    assert f["card"]["caller"] == "+79990001122" and f["card"]["segment"] == "new"
    assert f["card"]["script"]["title"] == "Новый пациент"
    assert frames(q["PJSIP/op102"]) == []  # another operator's phone did not ring
    await pops.aclose()


async def test_slow_crm_does_not_hold_the_card_longer_than_the_lookup_budget() -> None:
    pops, q = await make(FakeLookup({}, delay=5.0), budget=0.05)
    pops.on_event(ring(snap("agent_ringing"), "PJSIP/op101"))
    await asyncio.sleep(0.2)
    (f,) = frames(q["PJSIP/op101"])
    assert f["card"]["lookup"] == "unavailable" and f["card"]["script"]["title"] == "Приветствие"
    await pops.aclose()


async def test_phone_that_stops_ringing_loses_the_card_and_an_ended_call_never_pops() -> None:
    pops, q = await make(FakeLookup({}, delay=0.05))
    call = snap("agent_ringing")
    pops.on_event(CallQueued(at=T0, call=snap(), queue="reception", position=1))
    await asyncio.sleep(0.1)
    pops.on_event(ring(call, "PJSIP/op101"))
    pops.on_event(AgentRingNoAnswer(at=T0 + 20, call=call, queue="reception", agent="PJSIP/op101"))
    assert [(f["state"], f.get("reason")) for f in frames(q["PJSIP/op101"])] == [
        ("ringing", None), ("gone", "no_answer")]

    other = snap("agent_ringing", id="2.2", linkedid="2.2")
    pops.on_event(ring(other, "PJSIP/op102"))  # lookup still running …
    pops.on_event(CallEnded(at=T0 + 21, call=snap("abandoned", id="2.2", linkedid="2.2")))
    await asyncio.sleep(0.1)
    assert frames(q["PJSIP/op102"]) == []  # … and the caller gave up: no card at all
    await pops.aclose()
