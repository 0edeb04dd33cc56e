"""The operator desk against pbxsim over real sockets, real PostgreSQL and Redis: the screen-pop
reaches the ringing operator's WebSocket before answer (and nobody else's), follows the call,
the outcome lands in PostgreSQL and the CRM outbox, status goes to Asterisk and back."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import aiohttp
import asyncpg
import pytest

from tests.integration.desk_stack import TOKEN, desk_stack, login, wait_for

pytestmark = pytest.mark.integration
RECORDING = "/var/spool/asterisk/monitor/20261201-lab-call.wav"
ENV = {"CALLSERVER_DESK_PAID_SOURCES": "yandex,source-a"}


async def next_frame(ws: aiohttp.ClientWebSocketResponse, kind: str, within: float = 20.0,
                     **match: Any) -> dict[str, Any]:  # fmt: skip
    async with asyncio.timeout(within):
        while True:
            msg = await ws.receive()
            assert msg.type == aiohttp.WSMsgType.TEXT, msg
            frame: dict[str, Any] = json.loads(msg.data)
            if frame["type"] == kind and all(frame.get(k) == v for k, v in match.items()):
                return frame


async def frames_now(ws: aiohttp.ClientWebSocketResponse) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    while True:
        try:
            msg = await ws.receive(timeout=0.05)
        except TimeoutError:
            return out
        if msg.type == aiohttp.WSMsgType.TEXT:
            out.append(json.loads(msg.data))


async def test_pop_before_answer_follows_the_call_and_outcome_reaches_pg_and_crm(
    fresh_pg_dsn: str, redis_url: str, redis_prefix: str
) -> None:
    async with desk_stack("originate", fresh_pg_dsn, redis_url, redis_prefix, env=ENV) as st:
        anna, csrf = await login(st.base, "anna")
        boris, boris_csrf = await login(st.base, "boris")
        async with anna, boris, anna.ws_connect(f"{st.base}/ws/desk") as ws, \
                boris.ws_connect(f"{st.base}/ws/desk") as ws_b:  # fmt: skip
            await st.ring_lab_call(recording=RECORDING)
            ringing = await next_frame(ws, "pop", state="ringing")
            call_id = ringing["call_id"]
            # before answer: the live model still has the call ringing the agent
            card = ringing["card"]
            assert card["patient"]["name"] == "Лаб Пациент"
            assert card["patient"]["age"] is not None and card["patient"]["age"] >= 56
            assert card["patient"]["notes"] == "предпочитает утро"
            assert card["caller"] == "+79161234567"
            assert card["ad_source"] == "source-a" and card["paid"] is True
            assert card["routing"]["queue"] == "reception" and card["routing"]["mode"] == "queue"
            assert card["operator"] == "Анна Смирнова"
            assert card["script"]["title"] == "Приветствие"
            assert "Анна Смирнова" in card["script"]["body"]

            talking = await next_frame(ws, "pop", state="talking", call_id=call_id)
            assert talking["answered_at"] >= card["ringing_at"]
            wrapup = await next_frame(ws, "pop", state="wrapup", call_id=call_id)
            assert wrapup["recording"] == "/recordings/20261201-lab-call.wav"
            assert wrapup["talk_seconds"] > 0
            # boris's phone never rang: his browser saw no card of this call
            assert [f for f in await frames_now(ws_b) if f["type"] == "pop"] == []

            await wait_for(lambda: _call_row(fresh_pg_dsn, call_id))
            url = f"{st.base}/api/desk/calls/{call_id}/outcome"
            body = {"tags": ["booking"], "outcome": "booked", "notes": "записан на 10:00"}
            async with boris.post(url, json=body, headers={"X-CSRF-Token": boris_csrf}) as r:
                assert r.status == 403, await r.text()
            async with anna.post(url, json=body, headers={"X-CSRF-Token": "forged"}) as r:
                assert r.status == 401
            async with aiohttp.ClientSession() as nobody, nobody.post(url, json=body) as r:
                assert r.status == 401
            async with anna.post(url, json=body, headers={"X-CSRF-Token": csrf}) as r:
                assert r.status == 200, await r.text()
            closed = await next_frame(ws, "pop", state="closed", call_id=call_id)
            assert closed["reason"] == "saved"

        row = await _one(fresh_pg_dsn, "SELECT * FROM desk_call_outcomes WHERE call_id=$1", call_id)
        assert row is not None
        assert row["outcome"] == "booked" and list(row["tags"]) == ["booking"]
        assert row["operator"] == "Анна Смирнова" and row["phone"] == "+79161234567"
        assert row["recording"] == "/recordings/20261201-lab-call.wav"
        outbox = await _one(fresh_pg_dsn, "SELECT kind, payload::text AS p FROM crm_outbox"
                            " WHERE kind='call_outcome'")  # fmt: skip
        assert outbox is not None
        assert json.loads(outbox["p"])["call_id"] == call_id
        crm = await wait_for(lambda: _one(
            fresh_pg_dsn, "SELECT * FROM crm_call_outcomes WHERE call_id=$1", call_id))
        assert crm["outcome"] == "booked" and crm["operator"] == "Анна Смирнова"


async def test_status_goes_to_asterisk_and_comes_back_on_the_socket(
    fresh_pg_dsn: str, redis_url: str, redis_prefix: str
) -> None:
    async with desk_stack("originate", fresh_pg_dsn, redis_url, redis_prefix) as st:
        anna, csrf = await login(st.base, "anna")
        async with anna, anna.ws_connect(f"{st.base}/ws/desk") as ws:
            hello = await next_frame(ws, "status")
            assert hello["status"] == "available"
            async with anna.post(f"{st.base}/api/desk/status", headers={"X-CSRF-Token": csrf},
                                 json={"status": "paused", "reason": "обед"}) as r:  # fmt: skip
                assert r.status == 200, await r.text()
            paused = await next_frame(ws, "status", status="paused")
            assert paused["reason"] == "обед"
            agent = next(a for a in st.server.model.agents() if a.interface == "PJSIP/op101")
            assert agent.paused and agent.paused_reason == "обед"
            async with anna.post(f"{st.base}/api/desk/status", headers={"X-CSRF-Token": csrf},
                                 json={"status": "available"}) as r:  # fmt: skip
                assert r.status == 200
            await next_frame(ws, "status", status="available")
            # a pause reason with a line break would inject an AMI header: refused
            async with anna.post(f"{st.base}/api/desk/status", headers={"X-CSRF-Token": csrf},
                                 json={"status": "paused", "reason": "x\r\nAction: Hangup"}) as r:
                assert r.status == 400


async def test_click_to_call_without_a_dialer_is_503_with_a_clear_message(
    fresh_pg_dsn: str, redis_url: str, redis_prefix: str
) -> None:
    # every plugin but callbacks, the one that provides the dialer
    no_dialer = {"CALLSERVER_PLUGINS_ENABLED": "crm,routing,dashboards,desk,desk_notify"}
    async with desk_stack("originate", fresh_pg_dsn, redis_url, redis_prefix,
                          env=no_dialer) as st:  # fmt: skip
        anna, csrf = await login(st.base, "anna")
        async with anna, anna.post(f"{st.base}/api/desk/dial", headers={"X-CSRF-Token": csrf},
                                   json={"phone": "+79161234567"}) as r:  # fmt: skip
            assert r.status == 503
            assert "dialer" in (await r.json())["message"]
        auth = {"Authorization": f"Bearer {TOKEN}"}
        async with aiohttp.ClientSession(headers=auth) as admin, \
                admin.get(f"{st.base}/api/desk/operators") as r:  # fmt: skip
            names = {o["extension"]: o["name"] for o in (await r.json())["operators"]}
        assert names == {"PJSIP/op101": "Анна Смирнова", "PJSIP/op102": "Борис Петров"}


async def _call_row(dsn: str, call_id: str) -> asyncpg.Record | None:
    return await _one(dsn, "SELECT * FROM calls WHERE id=$1 AND ended_at IS NOT NULL", call_id)


async def _one(dsn: str, sql: str, *args: Any) -> asyncpg.Record | None:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetchrow(sql, *args)
    finally:
        await conn.close()


async def test_stopping_the_server_closes_open_desk_sockets_at_once(
    fresh_pg_dsn: str, redis_url: str, redis_prefix: str
) -> None:
    """Reproduces: an open desk browser held shutdown for the whole 15 s shutdown timeout."""
    async with desk_stack("originate", fresh_pg_dsn, redis_url, redis_prefix) as st:
        anna, _ = await login(st.base, "anna")
        ws = await anna.ws_connect(f"{st.base}/ws/desk")
        await next_frame(ws, "status")
        reader = asyncio.create_task(ws.receive())  # a browser keeps reading
        stopping = time.monotonic()
    elapsed = time.monotonic() - stopping
    msg = await reader
    await anna.close()
    assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
    assert elapsed < 5.0, f"shutdown took {elapsed:.1f} s with a desk socket open"
