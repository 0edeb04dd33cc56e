"""Personal data (152-FZ) in a running server with real PostgreSQL and Redis: a patient's data
exported and erased by phone number (admin only, audited), and the retention job deleting what
is older than its period, in batches, at start-up and on demand."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
import redis.asyncio as aioredis
from aiohttp import web

from callserver.app import CallServer
from callserver.config import load_config
from callserver.plugin_api import Contribution, PluginDeps
from callserver.plugins import LoadedPlugin, load_plugins, order
from callserver.web.auth import Principal
from devtools.services import free_port
from privacy.config import RetentionSettings
from privacy.http import MAX_BODY
from privacy.retention import RetentionJob
from tests.integration import bad_bodies

TOKEN = "privacy-token"
PATIENT = "+79161234567"
OTHER = "+79035550000"
DAY = 86_400.0


class RoleHeader:
    """Test authenticator: ``X-Test-Role: operator`` is a principal with only that role."""

    name = "role_header"
    config_type = None
    migrations = None
    requires: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()
    provides: tuple[str, ...] = ()

    def validate(self, config: None) -> None:
        return None

    def build(self, config: None, deps: PluginDeps) -> Contribution:
        async def auth(request: web.Request) -> Principal | None:
            role = request.headers.get("X-Test-Role")
            return Principal("user", f"{role}-user", frozenset({role})) if role else None

        return Contribution(authenticators=[auth])


Server = tuple[CallServer, str, aiohttp.ClientSession]


@pytest.fixture
async def server(fresh_pg_dsn: str, redis_url: str, redis_prefix: str, tmp_path: Path,
                 ) -> AsyncIterator[Server]:  # fmt: skip
    config = load_config(None, env={
        "CALLSERVER_AMI_ENABLED": "false", "CALLSERVER_AGI_ENABLED": "false",
        "CALLSERVER_ARI_ENABLED": "false", "CALLSERVER_DATABASE_DSN": fresh_pg_dsn,
        "CALLSERVER_REDIS_URL": redis_url, "CALLSERVER_REDIS_PREFIX": redis_prefix,
        "CALLSERVER_HTTP_PORT": str(free_port()), "CALLSERVER_HTTP_API_TOKEN": TOKEN,
        "CALLSERVER_RETENTION_RECORDINGS_DIR": str(tmp_path / "rec"),
    })  # fmt: skip
    plugins = order([*load_plugins(config), LoadedPlugin(RoleHeader(), None)])
    srv = await CallServer.create(config, plugins)
    await srv.start()
    try:
        await asyncio.wait_for(srv.database.ready.wait(), 30)
        headers = {"Authorization": f"Bearer {TOKEN}"}
        async with aiohttp.ClientSession(headers=headers) as http:
            yield srv, f"http://127.0.0.1:{config.http.port}", http
    finally:
        await srv.aclose()


async def _seed_call(conn: asyncpg.Connection, call_id: str, caller: str, e164: str,
                     started: float) -> None:  # fmt: skip
    await conn.execute(
        "INSERT INTO calls (id, caller, caller_e164, caller_name, state, started_at, ended_at,"
        " updated_at, queue, variables) VALUES ($1, $2, $3, 'Иванова', 'ended',"
        " to_timestamp($4), to_timestamp($4 + 60), to_timestamp($4 + 60), 'reception',"
        " '{\"MIXMONITOR_FILENAME\": \"r.wav\"}'::jsonb)", call_id, caller, e164, started)
    for i, kind in enumerate(("CallStarted", "CallQueued", "CallEnded")):
        await conn.execute(
            "INSERT INTO call_events (call_id, type, at, key, payload) VALUES ($1, $2,"
            " to_timestamp($3), $4, $5::jsonb)", call_id, kind, started + i, f"k{i}",
            json.dumps({"caller": caller}))  # fmt: skip
    await conn.execute(
        "INSERT INTO route_decisions (uniqueid, linkedid, origin, queue, mode, rule_version,"
        " profile_status, patient_id, decided_at) VALUES ($1, $1, 'agi', 'reception', 'queue',"
        " 'v1', 'found', '42', to_timestamp($2))", call_id, started)  # fmt: skip


async def _seed(srv: CallServer, base: str, http: aiohttp.ClientSession) -> None:
    now = time.time()
    async with srv.pool.acquire() as conn:
        await _seed_call(conn, "1700.1", "89161234567", PATIENT, now - 3600)
        await _seed_call(conn, "1700.2", "+79161234567", PATIENT, now - 1800)
        await _seed_call(conn, "1700.3", OTHER, OTHER, now - 900)
    for phone, name in ((PATIENT, "Иванова Анна"), (OTHER, "Петров Пётр")):
        async with http.post(f"{base}/api/crm/patients",
                             json={"full_name": name, "phones": phone}) as r:  # fmt: skip
            assert r.status == 201, await r.text()
            patient_id = (await r.json())["id"]
        appointment = {"patient_id": patient_id, "starts_at": "2026-12-10T10:00:00+03:00"}
        async with http.post(f"{base}/api/crm/appointments", json=appointment) as r:
            assert r.status == 201, await r.text()
        async with http.post(f"{base}/api/crm/callback-requests", json={"phone": phone}) as r:
            assert r.status == 202
        async with http.get(f"{base}/api/crm/lookup", params={"phone": phone}) as r:
            assert (await r.json())["patient"]["full_name"] == name  # now cached in Redis


async def _export(base: str, http: aiohttp.ClientSession, phone: str) -> dict[str, Any]:
    async with http.get(f"{base}/api/privacy/export", params={"phone": phone}) as r:
        assert r.status == 200, await r.text()
        data: dict[str, Any] = await r.json()
        return data


async def test_export_gives_every_record_of_one_number_and_is_audited(server: Server) -> None:
    srv, base, http = server
    await _seed(srv, base, http)
    data = await _export(base, http, "8 (916) 123-45-67")  # any form of the number
    assert data["phone"] == PATIENT
    assert [c["id"] for c in data["calls"]] == ["1700.1", "1700.2"]
    assert [e["type"] for e in data["calls"][0]["events"]] == ["CallStarted", "CallQueued",
                                                              "CallEnded"]  # fmt: skip
    assert {d["uniqueid"] for d in data["decisions"]} == {"1700.1", "1700.2"}
    assert [o["payload"]["phone"] for o in data["outbox"]] == [PATIENT]
    (patient,) = data["crm_patients"]
    assert patient["full_name"] == "Иванова Анна"
    assert [p["phone"] for p in patient["phones"]] == [PATIENT]
    assert len(patient["appointments"]) == 1
    assert OTHER not in json.dumps(data) and "Петров" not in json.dumps(data)
    async with srv.pool.acquire() as conn:
        row = await conn.fetchrow("SELECT * FROM privacy_audit WHERE id = $1", data["audit_id"])
    assert row["action"] == "export" and row["actor"] == "api-token"
    assert row["phone_masked"] == "***4567" and PATIENT not in json.dumps(dict(row), default=str)


async def test_erase_removes_or_anonymises_one_patient_and_leaves_the_others(
    server: Server, redis_url: str, redis_prefix: str
) -> None:
    srv, base, http = server
    await _seed(srv, base, http)
    await asyncio.sleep(0.5)  # let the outbox deliver the callback requests to the embedded CRM
    for phone in (PATIENT, OTHER):  # delivery dropped the cached cards: cache them again
        async with http.get(f"{base}/api/crm/lookup", params={"phone": phone}) as r:
            assert (await r.json())["patient"] is not None
    body = {"phone": "+7 916 123-45-67", "reason": "заявление пациента №17 от 01.12.2026"}
    async with http.post(f"{base}/api/privacy/erase", json=body) as r:
        assert r.status == 200, await r.text()
        result = await r.json()
    assert result["phone"] == "***4567" and result["cached_card_removed"] is True
    assert result["erased"]["calls"] == 2 and result["erased"]["call_events"] == 6
    assert result["erased"]["crm_patients"] == 1 and result["erased"]["route_decisions"] == 2
    after = await _export(base, http, PATIENT)
    assert after["calls"] == [] and after["crm_patients"] == [] and after["outbox"] == []
    assert after["records"] == {}
    async with srv.pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM calls") == 3  # statistics stay true
        anonymous = await conn.fetch("SELECT caller, caller_name, variables::text AS v FROM calls"
                                     " WHERE id IN ('1700.1', '1700.2')")  # fmt: skip
        assert all(r["caller"] == "" and r["caller_name"] == "" and r["v"] == "{}"
                   for r in anonymous)  # fmt: skip
        audit = await conn.fetchrow("SELECT * FROM privacy_audit WHERE id = $1", result["audit_id"])
        dump = await conn.fetchval("SELECT string_agg(to_jsonb(a)::text, '') FROM privacy_audit a")
    assert audit["action"] == "erase" and audit["reason"].startswith("заявление")
    assert "9161234567" not in dump
    other = await _export(base, http, OTHER)
    assert len(other["calls"]) == 1 and len(other["crm_patients"]) == 1
    cache = aioredis.from_url(redis_url)
    try:
        assert await cache.exists(f"{redis_prefix}crm:crm:card:{PATIENT}") == 0
        assert await cache.exists(f"{redis_prefix}crm:crm:card:{OTHER}") == 1
    finally:
        await cache.aclose()


@pytest.mark.parametrize(("method", "path", "body"), [
    ("GET", "/api/privacy/export?phone=%2B79161234567", None),
    ("POST", "/api/privacy/erase", {"phone": PATIENT, "reason": "x"}),
])  # fmt: skip
async def test_only_an_admin_may_export_or_erase(
    server: Server, method: str, path: str, body: Any
) -> None:
    _, base, _ = server
    async with aiohttp.ClientSession() as anon:
        async with anon.request(method, base + path, json=body,
                                headers={"X-Test-Role": "supervisor"}) as r:  # fmt: skip
            assert r.status == 403
            assert (await r.json())["error_id"] == "forbidden"
        async with anon.request(method, base + path, json=body) as r:
            assert r.status == 401


@pytest.mark.parametrize("body", [
    {"phone": "not a number", "reason": "x"}, {"phone": PATIENT}, {"phone": PATIENT, "reason": ""},
    {"phone": 79161234567, "reason": "x"}, {"phone": "+7916\x001234567", "reason": "x"},
    {"phone": PATIENT, "reason": "x" * 501},
])  # fmt: skip
async def test_a_bad_erase_request_is_a_400_naming_the_field(server: Server, body: Any) -> None:
    _, base, http = server
    async with http.post(f"{base}/api/privacy/erase", json=body) as r:
        assert r.status == 400
        error = await r.json()
    assert error["error_id"] == "privacy-request-invalid"
    assert error["details"]["field"] in ("phone", "reason", "body")


async def test_a_bad_erase_body_gets_the_one_answer_and_erases_nothing(server: Server) -> None:
    _, base, http = server
    for name, body, status, error_id in bad_bodies.cases(MAX_BODY):
        async with http.post(f"{base}/api/privacy/erase", data=body, headers=bad_bodies.JSON) as r:
            bad_bodies.check_refusal(name, r.status, await r.json(), status, error_id)


def _old_file(folder: Path, name: str, age_days: float) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(b"RIFF")
    moment = time.time() - age_days * DAY
    os.utime(path, (moment, moment))
    return path


async def _count(srv: CallServer, sql: str) -> int:
    async with srv.pool.acquire() as conn:
        n: int = await conn.fetchval(sql)
        return n


async def _wait(check: Callable[[], Awaitable[bool]], within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not await check():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def _first_run_done(base: str, http: aiohttp.ClientSession) -> None:
    async def ran() -> bool:
        async with http.get(f"{base}/metrics") as r:
            return "callserver_retention_runs_total 1.0" in await r.text()

    await _wait(ran)


async def test_the_job_runs_once_the_database_is_ready(server: Server) -> None:
    srv, base, http = server
    await _first_run_done(base, http)
    assert await _count(srv, "SELECT count(*) FROM privacy_audit WHERE action = 'retention'") == 1


async def test_retention_deletes_what_is_older_than_its_period_in_batches(
    server: Server, tmp_path: Path, redis_url: str, redis_prefix: str
) -> None:
    srv, base, http = server
    await _first_run_done(base, http)  # the plugin's own job ran first: this one is alone
    now = time.time()
    async with srv.pool.acquire() as conn:
        for i in range(7):  # 4 years old: past the 3 years of call records
            await _seed_call(conn, f"old.{i}", "89161234567", PATIENT, now - 4 * 365 * DAY)
        await _seed_call(conn, "mid.1", OTHER, OTHER, now - 400 * DAY)  # events past 365 d
        await _seed_call(conn, "new.1", OTHER, OTHER, now - DAY)
        for status in ("delivered", "dead", "pending"):
            await conn.execute(
                "INSERT INTO crm_outbox (idempotency_key, kind, payload, status, updated_at)"
                " VALUES ($1, 'call_record', '{}', $2, now() - interval '100 days')",
                f"k-{status}", status)  # fmt: skip
    old_rec = _old_file(tmp_path / "rec" / "2022", "old.wav", 400)
    new_rec = _old_file(tmp_path / "rec", "new.wav", 3)
    cache = aioredis.from_url(redis_url)
    try:
        await cache.set(f"{redis_prefix}crm:crm:card:+70000000001", "{}")  # no TTL at all
        await cache.set(f"{redis_prefix}crm:crm:card:+70000000002", "{}", ex=60)
        settings = srv.plugins[[p.name for p in srv.plugins].index("retention")].config
        job = RetentionJob(
            type(settings)(**{**settings.__dict__, "batch_size": 3}),
            pool=srv.pool, redis=cache, redis_prefix=redis_prefix,
        )  # fmt: skip
        result = await job.run_once()
        assert 0 < await cache.ttl(f"{redis_prefix}crm:crm:card:+70000000001") <= DAY
        assert await cache.ttl(f"{redis_prefix}crm:crm:card:+70000000002") <= 60
    finally:
        await cache.aclose()
    assert result["call_records"] == 7 * 2  # calls + their routing decisions
    assert result["call_events"] == 7 * 3 + 3  # old timelines + the 400-day-old one
    assert result["outbox"] == 2 and result["recordings"] == 1 and result["crm_cache"] == 1
    assert await _count(srv, "SELECT count(*) FROM calls WHERE id LIKE 'old.%'") == 0
    assert await _count(srv, "SELECT count(*) FROM calls WHERE id IN ('mid.1', 'new.1')") == 2
    assert await _count(srv, "SELECT count(*) FROM call_events WHERE call_id = 'new.1'") == 3
    assert await _count(srv, "SELECT count(*) FROM crm_outbox WHERE status = 'pending'") == 1
    assert not old_rec.exists() and new_rec.exists()


async def test_a_retention_run_without_postgresql_is_counted_and_retried(redis_url: str) -> None:
    pool = await asyncpg.create_pool(f"postgresql://postgres@127.0.0.1:{free_port()}/none",
                                     min_size=0, timeout=0.5)  # fmt: skip
    cache = aioredis.from_url(redis_url)
    job = RetentionJob(RetentionSettings(interval_hours=0.0001), pool=pool, redis=cache,
                       redis_prefix="cstest:none:")  # fmt: skip
    await job.start()
    try:
        deadline = time.monotonic() + 10
        while job.failures < 2:  # the first run failed, and it tried again
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        assert job.runs == 0
    finally:
        await job.aclose()
        await pool.close()
        await cache.aclose()
