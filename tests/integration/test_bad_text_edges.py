"""Issue 9, defect 5: text PostgreSQL refuses (NUL, lone surrogates) broke requests and records.

* Asterisk-supplied text (caller name, ``Cause-txt`` …) with NUL, half an emoji or a huge name:
  the call is still stored and its record reaches the CRM outbox (cleaned at the AMI edge, in the
  rows and in the outbox).
* API bodies, query strings and path parts with such text: a 400 naming the field, never a 5xx
  carrying the database's text.

Real PostgreSQL, real HTTP sockets; the AMI stream is the golden Asterisk transcript.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

import callserver.store
import crm_bridge
from callserver.asterisk.ami_codec import AmiCodec, AmiMessage
from callserver.asterisk.ami_translate import AmiTranslator
from callserver.config import DatabaseConfig
from callserver.core.bus import EventBus
from callserver.core.model import LiveModel
from callserver.store.call_repository import CallRepository
from callserver.store.call_writer import CallWriter, WriterTimeouts
from callserver.store.migrate import MigrationSource, apply_migrations
from callserver.web.calls import calls_routes
from callserver.web.middlewares import error_middleware
from crm_bridge.embedded import EmbeddedCrm
from crm_bridge.embedded_admin import CrmAdmin
from crm_bridge.http import MAX_BODY as MAX_CRM_BODY
from crm_bridge.http import crm_routes
from crm_bridge.outbox import Outbox
from crm_bridge.service import CrmService
from tests.integration import bad_bodies
from tests.transcripts import from_asterisk

SOURCES = [
    MigrationSource("callserver", Path(callserver.store.__file__).parent / "migrations"),
    MigrationSource("crm_bridge", Path(crm_bridge.__file__).parent / "migrations"),
]
FAST = WriterTimeouts(connect=2.0, command=5.0, close=10.0, retry_min=0.05, retry_max=0.2)
HUGE = "Я" * 50_000


@pytest.fixture
async def pool(fresh_pg_dsn: str) -> AsyncIterator[asyncpg.Pool]:
    conn = await asyncpg.connect(fresh_pg_dsn, timeout=10)
    try:
        await apply_migrations(conn, SOURCES)
    finally:
        await conn.close()
    p = await asyncpg.create_pool(fresh_pg_dsn, min_size=1, max_size=4, timeout=10)
    try:
        yield p
    finally:
        await p.close()


def _hostile_stream() -> list[AmiMessage]:
    """The answered call of the golden transcript, its caller name NUL-laden and 50,000
    characters long, its hangup cause with a NUL and half an emoji (which no UTF-8 byte
    stream carries, but any other source of a ``str`` can)."""
    data = from_asterisk("ami-queue-answered-call.txt")
    data = data.replace(b"CallerIDName: 79161234567", ("CallerIDName: Ив\x00ан" + HUGE).encode())
    data = data.replace(b"MemberName: ", b"MemberName: \x00")
    out = []
    for msg in AmiCodec().feed(data):
        if msg.name == "Hangup":
            fields = {**msg.fields, "Cause-txt": "Normal\x00 Clearing \ud83d"}
            msg = AmiMessage(msg.kind, msg.name, fields)
        out.append(msg)
    return out


async def test_hostile_asterisk_text_still_stores_the_call_and_its_crm_record(
    fresh_pg_dsn: str, pool: asyncpg.Pool
) -> None:
    writer = CallWriter(fresh_pg_dsn, DatabaseConfig(dsn=fresh_pg_dsn, flush_interval=0.05),
                        timeouts=FAST)  # fmt: skip
    crm = CrmService(EmbeddedCrm(pool), Outbox(pool))
    bus = EventBus()
    bus.subscribe(writer.submit)
    bus.subscribe(crm.on_event)
    translator = AmiTranslator(LiveModel(bus))
    await writer.start()
    await crm.start()
    for msg in _hostile_stream():
        translator.handle(msg)
    await crm.aclose()
    await writer.aclose()
    assert writer.dropped_calls == 0 and bus.subscriber_errors == 0
    call = await CallRepository(pool).get("1795413075.4")
    assert call is not None and call["state"] == "ended"
    assert call["caller_name"] == ("Иван" + HUGE)[:200]  # ami_translate.MAX_CALLER_NAME
    assert call["hangup_cause"] == "Normal Clearing \ufffd"
    rows = await pool.fetch("SELECT kind, payload::text AS p FROM crm_outbox")
    assert [r["kind"] for r in rows] == ["call_record"]
    record = json.loads(rows[0]["p"])
    assert (
        record["call_id"] == "1795413075.4" and record["hangup_cause"] == "Normal Clearing \ufffd"
    )
    assert "\x00" not in record["agent_name"]


@pytest.fixture
async def client(pool: asyncpg.Pool) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    outbox = Outbox(pool)
    app = web.Application(middlewares=[error_middleware])
    app.add_routes(crm_routes(crm=CrmService(EmbeddedCrm(pool), outbox), outbox=outbox,
                              admin=CrmAdmin(pool)))  # fmt: skip
    app.add_routes(calls_routes(CallRepository(pool)))
    async with TestClient(TestServer(app)) as c:
        yield c


PATIENT = {"full_name": "Петрова Анна", "phones": ["+79161234567"]}


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("POST", "/api/crm/patients", {**PATIENT, "full_name": "Анна \ud83d"}, "full_name"),
        ("POST", "/api/crm/patients", {**PATIENT, "notes": "line 1\nline\x002"}, "notes"),
        (
            "POST",
            "/api/crm/patients",
            {**PATIENT, "phones": ["+79161234567", "\x00"]},
            "phones[1]",
        ),
        ("POST", "/api/crm/patients", {**PATIENT, "segment\x00": "x"}, "segment"),
        (
            "POST",
            "/api/crm/callback-requests",
            {"phone": "+79161234567", "comment": "\udcff"},
            "comment",
        ),
        (
            "POST",
            "/api/crm/appointment-requests",
            {"phone": "+79161234567", "full_name": "\x00"},
            "full_name",
        ),
        ("GET", "/api/crm/patients?q=%00", None, "q"),
        ("GET", "/api/crm/appointments?since=2026-12-01T09:00%2B03:00%00", None, "since"),
    ],
)
async def test_api_text_postgres_refuses_is_a_400_naming_the_field(
    client: TestClient[web.Request, web.Application],
    method: str,
    path: str,
    body: dict[str, Any] | None,
    field: str,
) -> None:
    data = None if body is None else json.dumps(body).encode()  # \ud83d travels as an escape
    r = await client.request(method, path, data=data)
    assert r.status == 400, await r.text()
    answer = await r.json()
    assert answer["details"]["field"] == field and field.split("[")[0] in answer["message"]


async def test_patch_and_path_text_postgres_refuses(
    client: TestClient[web.Request, web.Application],
) -> None:
    r = await client.post("/api/crm/patients", json=PATIENT)
    assert r.status == 201
    patient = (await r.json())["id"]
    r = await client.patch(f"/api/crm/patients/{patient}", data=b'{"notes": "a\\u0000b"}')
    assert r.status == 400 and (await r.json())["details"]["field"] == "notes"
    r = await client.patch(f"/api/crm/patients/{patient}", json={"notes": "a\nb 🙂"})
    assert r.status == 200 and (await r.json())["notes"] == "a\nb 🙂"
    r = await client.get("/api/calls/abc%00def")  # the calls API: not found, not a 500
    assert r.status == 404


@pytest.mark.parametrize(("method", "path"), [
    ("POST", "/api/crm/callback-requests"), ("POST", "/api/crm/appointment-requests"),
    ("POST", "/api/crm/patients"), ("PATCH", "/api/crm/patients/1"),
    ("POST", "/api/crm/appointments"),
])  # fmt: skip
async def test_api_a_bad_body_gets_the_one_answer(
    client: TestClient[web.Request, web.Application], method: str, path: str
) -> None:
    for name, body, status, error_id in bad_bodies.cases(MAX_CRM_BODY):
        r = await client.request(method, path, data=body, headers=bad_bodies.JSON)
        bad_bodies.check_refusal(name, r.status, await r.json(), status, error_id)
    r = await client.get("/api/crm/patients")
    assert r.status == 200 and (await r.json())["patients"] == []  # nothing was created
