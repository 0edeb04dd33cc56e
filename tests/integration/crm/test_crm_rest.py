"""External REST CRM against a real aiohttp server: lookups, timeouts, retries, HMAC."""

from __future__ import annotations

import time
from dataclasses import replace

import asyncpg
import pytest
import redis.asyncio as aioredis

from crm_bridge.cache import RedisLookupCache
from crm_bridge.errors import CrmRejected, CrmTimeout, CrmUnavailable, CrmValidationError
from crm_bridge.outbox import Outbox, OutboxWorker
from crm_bridge.rest_adapter import RestCrm, RestSettings
from crm_bridge.service import CrmService
from crm_bridge.signing import HEADER, sign, verify
from devtools.services import free_port
from tests.integration.crm.conftest import SECRET, ClinicCrm
from tests.integration.crm.test_crm_outbox import FAST, record

CARD = {
    "id": "P-17",
    "full_name": "Иванова Анна Сергеевна",
    "phones": ["+79161234567"],
    "birth_date": "1985-03-02",
    "vip": True,
    "coordinator": "PJSIP/op103",
    "next_appointment": {
        "id": "A-9",
        "starts_at": "2030-01-10T09:30:00+03:00",
        "doctor": "Смирнова Е. П.",
        "room": "204",
    },
    "plan_items": [{"id": "I-1", "description": "имплантат 46", "price": "45000.00"}],
    "balance": "1500.00",
    "prepayment_required": False,
}


def rest(crm: ClinicCrm, **overrides: object) -> RestCrm:
    settings = RestSettings(
        lookup_url_template=crm.base + "/lookup?phone={phone}",
        webhook_url=crm.base + "/webhook",
        hmac_secret=SECRET,
        timeout=0.3,
        push_timeout=1.0,
        retries=1,
    )
    return RestCrm(replace(settings, **overrides))  # type: ignore[arg-type]


async def test_lookup_reads_the_card_and_caches_it(
    clinic_crm: ClinicCrm, crm_pool: asyncpg.Pool, redis_client: aioredis.Redis, redis_prefix: str
) -> None:
    clinic_crm.cards["+79161234567"] = CARD
    backend = rest(clinic_crm)
    cache = RedisLookupCache(redis_client, prefix=redis_prefix)
    service = CrmService(backend, Outbox(crm_pool), cache, lookup_timeout=0.5)
    try:
        card = await service.lookup("8 (916) 123-45-67")
        assert card is not None and card.full_name == CARD["full_name"] and card.vip
        assert card.next_appointment is not None and card.next_appointment.room == "204"
        assert str(card.plan_items[0].price) == "45000.00"
        assert await service.lookup("+7 916 123 45 67") == card
        assert clinic_crm.lookups == 1  # second lookup was a cache hit
        assert await service.lookup("+79160000000") is None  # 404 → unknown
    finally:
        await backend.aclose()


async def test_slow_lookup_hits_the_timeout_quickly(
    clinic_crm: ClinicCrm, crm_pool: asyncpg.Pool
) -> None:
    clinic_crm.cards["+79161234567"] = CARD
    clinic_crm.lookup_delay = 1.0
    backend, short = rest(clinic_crm, timeout=5.0), rest(clinic_crm, timeout=0.2)
    service = CrmService(backend, Outbox(crm_pool), lookup_timeout=0.15)
    started = time.monotonic()
    try:
        with pytest.raises(CrmTimeout):
            await service.lookup("+79161234567")
        assert time.monotonic() - started < 0.4  # routing decides without the card
        started = time.monotonic()
        with pytest.raises(CrmTimeout):  # the adapter's own deadline too
            await short.lookup("+79161234567")
        assert time.monotonic() - started < 0.5
    finally:
        await backend.aclose()
        await short.aclose()


async def test_lookup_retries_5xx_then_gives_up(clinic_crm: ClinicCrm) -> None:
    clinic_crm.mode = "error"
    backend = rest(clinic_crm, retries=2, timeout=2.0)
    try:
        with pytest.raises(CrmUnavailable):
            await backend.lookup("+79161234567")
        assert clinic_crm.lookups == 3
    finally:
        await backend.aclose()


async def test_malformed_card_is_rejected_not_guessed(clinic_crm: ClinicCrm) -> None:
    clinic_crm.cards["+79161234567"] = {**CARD, "vip": "maybe"}
    backend = rest(clinic_crm)
    try:
        with pytest.raises(CrmValidationError) as info:
            await backend.lookup("+79161234567")
        assert info.value.details["field"] == "vip"
    finally:
        await backend.aclose()


async def test_webhook_is_signed_and_a_wrong_secret_is_dead_lettered(
    clinic_crm: ClinicCrm, crm_pool: asyncpg.Pool
) -> None:
    good, bad = rest(clinic_crm), rest(clinic_crm, hmac_secret="wrong")
    try:
        await good.deliver("call_record", {"call_id": "1"}, idempotency_key="call-record:1")
        assert clinic_crm.accepted["call-record:1"] == 1 and clinic_crm.bad_signatures == 0
        await good.deliver("call_record", {"call_id": "1"}, idempotency_key="call-record:1")
        assert clinic_crm.accepted["call-record:1"] == 1  # 409 "already have it" is success
        with pytest.raises(CrmRejected):
            await bad.deliver("call_record", {"call_id": "2"}, idempotency_key="call-record:2")
        outbox = Outbox(crm_pool, FAST)
        await CrmService(bad, outbox).push_call_record(record(3))
        await OutboxWorker(outbox, bad, worker_id="w").run_once()
        [dead] = await outbox.list_dead()
        assert "HTTP 401" in dead.last_error
    finally:
        await good.aclose()
        await bad.aclose()
    assert clinic_crm.bad_signatures == 2


def test_signature_verifies_only_the_signed_body_within_tolerance() -> None:
    body = b'{"type":"call_record","data":{"phone":"+79161234567"}}'
    header = sign(SECRET, body, now=1_800_000_000)
    assert verify(SECRET, header, body, now=1_800_000_100)
    assert not verify(SECRET, header, body + b" ", now=1_800_000_100)
    assert not verify("other", header, body, now=1_800_000_100)
    assert not verify(SECRET, header, body, now=1_800_000_400)  # replay after 5 minutes
    assert not verify(SECRET, "v1=abc", body)
    assert HEADER == "X-Callserver-Signature"


async def test_after_a_timeout_the_next_lookup_works_and_redis_down_is_survived(
    clinic_crm: ClinicCrm, crm_pool: asyncpg.Pool
) -> None:
    clinic_crm.cards["+79161234567"] = CARD
    clinic_crm.lookup_delay = 1.0
    backend = rest(clinic_crm, timeout=0.1)
    dead_redis = aioredis.from_url(f"redis://127.0.0.1:{free_port()}", socket_connect_timeout=0.1)
    cache = RedisLookupCache(dead_redis, prefix="cstest:none:", timeout=0.2)
    service = CrmService(backend, Outbox(crm_pool), cache, lookup_timeout=0.5)
    try:
        with pytest.raises(CrmTimeout):  # cancelled mid-read
            await backend.lookup("+79161234567")
        clinic_crm.lookup_delay = 0.0
        card = await service.lookup("+79161234567")  # cache unreachable: straight to the CRM
        assert card is not None and card.id == "P-17"
    finally:
        await backend.aclose()
        await dead_redis.aclose()


async def test_a_redirected_webhook_is_not_taken_for_a_delivery() -> None:
    """Bug: aiohttp followed a 302 from the webhook as a GET without the body; the page it
    landed on answered 200 and the push was marked delivered although nobody stored it."""
    from aiohttp import web
    from aiohttp.test_utils import TestServer

    seen: list[str] = []

    async def moved(request: web.Request) -> web.StreamResponse:
        seen.append(f"{request.method} {request.path}")
        raise web.HTTPFound("/login")

    async def login(request: web.Request) -> web.StreamResponse:
        seen.append(f"{request.method} {request.path}")
        return web.Response(text="<html>please log in</html>")

    app = web.Application()
    app.router.add_post("/webhook", moved)
    app.router.add_route("*", "/login", login)
    async with TestServer(app) as server:
        crm = RestCrm(
            RestSettings(
                lookup_url_template=str(server.make_url("/lookup?phone={phone}")),
                webhook_url=str(server.make_url("/webhook")),
                hmac_secret=SECRET,
            )
        )
        try:
            with pytest.raises(CrmRejected):
                await crm.deliver("call_record", {"call_id": "1"}, idempotency_key="call-record:1")
        finally:
            await crm.aclose()
    assert seen == ["POST /webhook"]
