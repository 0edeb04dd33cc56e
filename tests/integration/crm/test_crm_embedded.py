"""Embedded CRM: demo seed, lookup cards, idempotent pushes, cache invalidation on writes, API."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace

import asyncpg
import redis.asyncio as aioredis
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from callserver.core.bus import EventBus
from callserver.core.events import CallEnded
from callserver.web.middlewares import error_middleware
from crm_bridge.cache import RedisLookupCache
from crm_bridge.config import CrmConfig
from crm_bridge.demo_seed import load_demo_patients, seed_demo
from crm_bridge.embedded import EmbeddedCrm
from crm_bridge.embedded_admin import CrmAdmin
from crm_bridge.http import crm_routes
from crm_bridge.models import CallbackRequest
from crm_bridge.outbox import Outbox, OutboxWorker
from crm_bridge.service import CrmService
from crm_bridge.validation import parse_patient
from crm_bridge.wire import call_record_from_event, push_payload
from crm_bridge.wiring import CrmBridge
from tests.integration.crm.test_crm_outbox import FAST, snapshot


async def seeded(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        report = await seed_demo(conn)
        assert report.patients == 300 and report.clinics == 3
        assert (await seed_demo(conn)).patients == 0  # a second seed changes nothing


def national(e164: str) -> str:
    """``+79161234567`` → ``8 (916) 123-45-67``: how an operator types it."""
    d = e164[2:]
    return f"8 ({d[:3]}) {d[3:6]}-{d[6:8]}-{d[8:]}"


async def test_demo_seed_and_lookup_of_a_full_card(crm_pool: asyncpg.Pool) -> None:
    await seeded(crm_pool)
    async with crm_pool.acquire() as conn:
        stats = await conn.fetchrow(
            "SELECT count(*) FILTER (WHERE vip) AS vip,"
            " count(DISTINCT coordinator) FILTER (WHERE coordinator <> '') AS coordinators"
            " FROM crm_patients"
        )
        pid = await conn.fetchval(
            "SELECT p.id FROM crm_patients p WHERE EXISTS (SELECT 1 FROM crm_appointments a"
            " WHERE a.patient_id = p.id AND a.starts_at > now() AND a.status IN"
            " ('booked','confirmed')) AND EXISTS (SELECT 1 FROM crm_appointments a WHERE"
            " a.patient_id = p.id AND a.status = 'came') AND EXISTS (SELECT 1 FROM"
            " crm_treatment_plans t JOIN crm_treatment_plan_items i ON i.plan_id = t.id"
            " WHERE t.patient_id = p.id AND i.status = 'planned') ORDER BY p.id LIMIT 1"
        )
        phone = await conn.fetchval(
            "SELECT min(phone) FROM crm_patient_phones WHERE patient_id = $1", pid
        )
    assert stats["vip"] > 0 and stats["coordinators"] == 6
    crm = EmbeddedCrm(crm_pool)
    service = CrmService(crm, Outbox(crm_pool))
    card = await service.lookup(national(phone))
    assert card is not None and card.id == str(pid)
    assert phone in card.phones
    assert card.next_appointment is not None and card.next_appointment.doctor
    assert card.next_appointment.room and card.next_appointment.specialty
    assert card.last_visit is not None and card.plan_items
    assert all(item.status == "planned" for item in card.plan_items)
    assert await service.lookup("+7 999 000 00 00") is None


async def test_pushes_are_written_once_per_idempotency_key(crm_pool: asyncpg.Pool) -> None:
    await seeded(crm_pool)
    patient = load_demo_patients()[0]
    outbox = Outbox(crm_pool, FAST)
    crm = EmbeddedCrm(crm_pool)
    service = CrmService(crm, outbox)
    snap = replace(snapshot(1), caller=national(patient.phones[0]))
    record = call_record_from_event(CallEnded(at=1.0, call=snap))
    await service.push_call_record(record)
    await service.create_callback_request(
        CallbackRequest(phone=patient.phones[0], call_id=snap.id, request_id=snap.id)
    )
    worker = OutboxWorker(outbox, service.delivery_target(), worker_id="w")
    assert await worker.run_once() == 2
    # a redelivery (e.g. after a lost acknowledgement) changes nothing
    data = await _payload(crm_pool, record.idempotency_key)
    await crm.deliver("call_record", data, idempotency_key=record.idempotency_key)
    async with crm_pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM crm_call_records") == 1
        row = await conn.fetchrow(
            "SELECT c.patient_id, p.last_operator FROM crm_callback_requests c"
            " JOIN crm_patients p ON p.id = c.patient_id"
        )
    assert row["last_operator"] == "PJSIP/op101"


async def _payload(pool: asyncpg.Pool, key: str) -> dict[str, object]:
    async with pool.acquire() as conn:
        return dict(json.loads(await conn.fetchval(
            "SELECT payload::text FROM crm_outbox WHERE idempotency_key = $1", key
        )))  # fmt: skip


async def test_cached_card_is_invalidated_by_delivered_push_and_api_writes(
    crm_pool: asyncpg.Pool, redis_client: aioredis.Redis, redis_prefix: str
) -> None:
    await seeded(crm_pool)
    patient = load_demo_patients()[5]
    phone = patient.phones[0]
    cache = RedisLookupCache(redis_client, prefix=redis_prefix, ttl=60, negative_ttl=60)
    outbox = Outbox(crm_pool, FAST)
    admin = CrmAdmin(crm_pool)
    service = CrmService(EmbeddedCrm(crm_pool), outbox, cache)
    first = await service.lookup(phone)
    assert first is not None and await cache.get(phone) == (True, first)
    async with crm_pool.acquire() as conn:  # a change behind the cache's back: not seen yet
        await conn.execute("UPDATE crm_patients SET notes = 'x' WHERE id = $1", int(first.id))
    assert (await service.lookup(phone)) == first
    snap = replace(snapshot(2), caller=phone, agent="PJSIP/op104")
    await service.push_call_record(call_record_from_event(CallEnded(at=2.0, call=snap)))
    await OutboxWorker(outbox, service.delivery_target(), worker_id="w").run_once()
    after_push = await service.lookup(phone)
    assert after_push is not None
    assert after_push.last_operator == "PJSIP/op104" and after_push.notes == "x"
    app = web.Application(middlewares=[error_middleware])
    app.add_routes(crm_routes(crm=service, outbox=outbox, admin=admin, cache=cache))
    async with TestClient(TestServer(app)) as client:
        resp = await client.patch(f"/api/crm/patients/{first.id}", json={"vip": True})
        assert resp.status == 200 and (await resp.json())["vip"] is True
        card = await service.lookup(phone)
        assert card is not None and card.vip
        unknown = "+79990001122"
        assert await service.lookup(unknown) is None
        assert await cache.get(unknown) == (True, None)  # unknown callers are cached too
        resp = await client.post(
            "/api/crm/patients", json={"full_name": "Новый Пациент", "phones": ["8 999 000-11-22"]}
        )
        assert resp.status == 201
        card = await service.lookup(unknown)
        assert card is not None and card.full_name == "Новый Пациент"


async def test_embedded_crm_rest_api(crm_pool: asyncpg.Pool) -> None:
    await seeded(crm_pool)
    outbox = Outbox(crm_pool)
    service = CrmService(EmbeddedCrm(crm_pool), outbox)
    app = web.Application(middlewares=[error_middleware])
    app.add_routes(crm_routes(crm=service, outbox=outbox, admin=CrmAdmin(crm_pool)))
    patient = load_demo_patients()[3]
    async with TestClient(TestServer(app)) as client:
        found = await (
            await client.get("/api/crm/patients", params={"q": patient.phones[0]})
        ).json()
        [hit] = found["patients"]
        assert hit["full_name"] == patient.full_name
        by_name = await (await client.get("/api/crm/patients", params={"q": "ова"})).json()
        assert len(by_name["patients"]) == 50
        resp = await client.get("/api/crm/lookup", params={"phone": national(patient.phones[0])})
        assert (await resp.json())["patient"]["id"] == hit["id"]
        resp = await client.get("/api/crm/lookup", params={"phone": "12"})
        assert resp.status == 400 and (await resp.json())["error_id"] == "phone-invalid"
        assert (await client.get("/api/crm/patients/999999")).status == 404
        resp = await client.post("/api/crm/patients", json={"full_name": "X", "phones": "123"})
        assert resp.status == 400 and (await resp.json())["details"]["field"] == "phones"
        doctors = (await (await client.get("/api/crm/doctors")).json())["doctors"]
        resp = await client.post("/api/crm/appointments", json={
            "patient_id": hit["id"], "doctor": doctors[0]["full_name"],
            "clinic": doctors[0]["clinic"],
            "starts_at": "2030-01-10T09:30:00+03:00", "room": "101", "service": "консультация",
        })  # fmt: skip
        assert resp.status == 201, await resp.text()
        appt_id = (await resp.json())["id"]
        card = await (await client.get(f"/api/crm/patients/{hit['id']}")).json()
        assert card["next_appointment"]["id"] in {appt_id, card["next_appointment"]["id"]}
        resp = await client.patch(f"/api/crm/appointments/{appt_id}", json={"status": "confirmed"})
        assert resp.status == 200
        resp = await client.patch(f"/api/crm/appointments/{appt_id}", json={"status": "maybe"})
        assert resp.status == 400
        listed = await (
            await client.get("/api/crm/appointments", params={"patient_id": hit["id"]})
        ).json()
        assert any(
            a["id"] == appt_id and a["status"] == "confirmed" for a in listed["appointments"]
        )
        resp = await client.post("/api/crm/callback-requests", json={"phone": "8 916 555 44 33"})
        assert resp.status == 202
        assert (await outbox.stats())["pending"] == 1
        assert len((await (await client.get("/api/crm/clinics")).json())["clinics"]) == 3


async def test_bridge_end_to_end_from_bus_event_to_embedded_row(
    crm_pool: asyncpg.Pool, redis_client: aioredis.Redis, redis_prefix: str
) -> None:
    await seeded(crm_pool)
    patient = load_demo_patients()[9]
    config = CrmConfig(outbox_poll_interval=0.05)
    bridge = CrmBridge.build(
        config, pool=crm_pool, redis=redis_client, redis_prefix=redis_prefix, instance_id="t"
    )
    bus = EventBus()
    bus.subscribe(bridge.service.on_event)
    await bridge.start()
    try:
        before = await bridge.service.lookup(patient.phones[0])
        assert before is not None and before.last_operator == ""
        snap = replace(snapshot(4), caller=patient.phones[0], agent="PJSIP/op106")
        bus.publish(CallEnded(at=5.0, call=snap))
        for _ in range(100):
            card = await bridge.service.lookup(patient.phones[0])
            if card is not None and card.last_operator == "PJSIP/op106":
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("call record not delivered / cache not invalidated")
    finally:
        await bridge.aclose()
    assert len(bridge.routes()) == 16
    assert bridge.counters()["crm_pushes_delivered_total"] == 1


async def test_name_search_takes_like_wildcards_and_backslashes_literally(
    crm_pool: asyncpg.Pool,
) -> None:
    """Bug: the name search escaped % and _ but not the backslash, LIKE's escape character:
    ``q=Smith\\`` made PostgreSQL refuse the pattern (HTTP 502) and ``a\\b`` matched ``ab``."""
    admin = CrmAdmin(crm_pool)
    for name in ("Back\\slash", "Backslash", "Pro_cent 100%", "Pro-cent 1000"):
        await admin.create_patient(parse_patient({"full_name": name, "phones": "+79160000001"}))
    app = web.Application(middlewares=[error_middleware])
    outbox = Outbox(crm_pool)
    app.add_routes(crm_routes(crm=CrmService(EmbeddedCrm(crm_pool), outbox), outbox=outbox,
                              admin=admin))  # fmt: skip
    async with TestClient(TestServer(app)) as client:
        for q, names in (
            ("k\\s", ["Back\\slash"]),
            ("slash\\", []),
            ("o_c", ["Pro_cent 100%"]),
            ("100%", ["Pro_cent 100%"]),
        ):
            resp = await client.get("/api/crm/patients", params={"q": q})
            assert resp.status == 200, (q, await resp.text())
            assert [p["full_name"] for p in (await resp.json())["patients"]] == names, q


async def test_a_shared_number_attaches_pushes_to_the_patient_the_lookup_showed(
    crm_pool: asyncpg.Pool,
) -> None:
    """Bug: pushes picked *any* patient with the caller's number (``LIMIT 1`` without an order)
    while the lookup shows the most recently updated one: a parent's call was filed on a
    child's card, whose last_operator and updated_at then changed the next lookup's card."""
    admin = CrmAdmin(crm_pool)
    shared = "+79160000077"
    first = await admin.create_patient(parse_patient({"full_name": "A", "phones": shared}))
    second = await admin.create_patient(parse_patient({"full_name": "B", "phones": shared}))
    await admin.update_patient(second, {"notes": "the one the operator sees"})
    crm = EmbeddedCrm(crm_pool)
    shown = await crm.lookup(shared)
    assert shown is not None and shown.id == str(second)
    snap = replace(snapshot(3), caller=shared, agent="PJSIP/op105")
    record = call_record_from_event(CallEnded(at=3.0, call=snap))
    kind, data = push_payload(record)
    await crm.deliver(kind, data, idempotency_key=record.idempotency_key)
    await crm.deliver(
        "callback_request", {"phone": shared, "request_id": "r1"}, idempotency_key="cb:r1"
    )
    async with crm_pool.acquire() as conn:
        assert await conn.fetchval("SELECT patient_id FROM crm_call_records") == second
        assert await conn.fetchval("SELECT patient_id FROM crm_callback_requests") == second
        assert await conn.fetchval(
            "SELECT last_operator FROM crm_patients WHERE id = $1", first
        ) == ""  # fmt: skip
    again = await crm.lookup(shared)
    assert again is not None and again.id == str(second)
    assert again.last_operator == "PJSIP/op105"
