"""Routing on real PostgreSQL (migrations, call tracking records, overrides + audit shared by two
instances) and its HTTP API over a real socket."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

import routing
from callserver.config import load_config
from callserver.plugins import load_plugins, migration_sources
from callserver.store.migrate import MigrationSource, apply_migrations
from callserver.web.middlewares import error_middleware
from routing.http import MAX_BODY, routing_routes
from routing.models import CallerProfile, RouteRequest
from routing.overrides import OverrideBook, build_override
from routing.reload import RulesHolder
from routing.service import RoutingPorts, RoutingService, RoutingSettings
from routing.store import PgDecisionLog, PgOverrideStore, PgTrackingSync, sync_tracking
from tests.integration import bad_bodies

EXAMPLE = Path(routing.__file__).parent / "rules.example.toml"
NOON = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
SOURCE = MigrationSource("routing", Path(routing.__file__).parent / "migrations")


@pytest.fixture
async def pool(fresh_pg_dsn: str) -> AsyncIterator[asyncpg.Pool]:
    conn = await asyncpg.connect(fresh_pg_dsn, timeout=10)
    try:
        assert await apply_migrations(conn, [SOURCE]) == ["routing/0001_routing.sql"]
        assert await apply_migrations(conn, [SOURCE]) == []
    finally:
        await conn.close()
    p = await asyncpg.create_pool(fresh_pg_dsn, min_size=1, max_size=4, timeout=10)
    try:
        yield p
    finally:
        await p.close()


def _service(pool: asyncpg.Pool, log: PgDecisionLog | None = None) -> RoutingService:
    return RoutingService(
        RulesHolder(EXAMPLE),
        OverrideBook(PgOverrideStore(pool)),
        RoutingPorts(decisions=log),
        clock=lambda: NOON,
    )


def test_routing_migrations_are_found_through_its_plugin() -> None:
    sources = migration_sources(load_plugins(load_config(env={})))
    assert any(s.namespace == "routing" for s in sources)


async def test_decisions_are_recorded_and_read_back(pool: asyncpg.Pool) -> None:
    log = PgDecisionLog(pool, flush_interval=0.02)
    service = _service(pool, log)
    await service.start(install_sighup=False)
    await log.start()
    try:
        await service.route(RouteRequest("u-1", "l-1", did="74951234567", caller="+79161234567"))
        await service.route(RouteRequest("u-2", did="74957654321"))
        await asyncio.sleep(0.2)
        assert log.written == 2
        stored = await log.get("l-1")
        assert stored is not None
        d = stored.to_dict()
        assert (d["uniqueid"], d["ad_source"], d["campaign"], d["paid"], d["queue"]) == (
            "u-1", "source-a", "yandex-implants-q4", True, "reception",
        )  # fmt: skip
        assert "paid" in stored.decision.reasons
        assert d["rule_version"] == service.rules.current.version
        assert d["profile_status"] == "skipped"
        fresh = _service(pool, log)  # another instance: not in its memory, read from PostgreSQL
        other = await fresh.record_for("u-2")
        assert other is not None and other.decision.tracking.source == "source-b"
        assert await log.get("nope") is None
        tracking = await log.tracking_for(["l-1", "u-2", "nope"])
        assert set(tracking) == {"l-1", "u-2"}
        assert tracking["l-1"]["campaign"] == "yandex-implants-q4"
        assert await log.tracking_for([]) == {}
    finally:
        await log.aclose()
        await service.aclose()


async def test_tracking_tables_follow_rules_loads(pool: asyncpg.Pool, tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_text(EXAMPLE.read_text(encoding="utf-8"), encoding="utf-8")
    service = RoutingService(RulesHolder(path), OverrideBook(),
                             RoutingPorts(rules_listener=PgTrackingSync(pool)),
                             RoutingSettings(reload_poll_s=0.02), clock=lambda: NOON)  # fmt: skip
    await service.start(install_sighup=False)
    try:
        rows = await pool.fetch("SELECT did, campaign, source, paid FROM routing_dids")
        assert ("74951234567", "yandex-implants-q4", "source-a", True) in [tuple(r) for r in rows]
        n = await pool.fetchval("SELECT count(*) FROM routing_campaigns")
        assert n == len(service.rules.current.campaigns)
        text = path.read_text(encoding="utf-8") + '\n[dids.74950000001]\nsource = "radio"\n'
        path.write_text(text, encoding="utf-8")
        for _ in range(100):
            await asyncio.sleep(0.02)
            if await pool.fetchval("SELECT source FROM routing_dids WHERE did = '74950000001'"):
                break
        version = await pool.fetchval(
            "SELECT rule_version FROM routing_dids WHERE did = '74950000001'"
        )
        assert version == service.rules.current.version
        await sync_tracking(pool, service.rules.current)  # idempotent
    finally:
        await service.aclose()


async def test_overrides_shared_between_instances_with_audit(pool: asyncpg.Pool) -> None:
    a, b = _service(pool), _service(pool)
    await a.start(install_sighup=False)
    await b.start(install_sighup=False)
    try:
        o = build_override(a.rules.current, {"scope": "queue", "value": "reception",
                                             "minutes": 30, "mode": "bot"},
                           actor="sup-1", now=NOON)  # fmt: skip
        assert await a.overrides.add(o)
        await b.overrides.refresh(NOON)
        assert [x.id for x in b.overrides.active(NOON)] == [o.id]
        decision = await b.route(RouteRequest("u-9", did="74951234567"))
        assert decision.mode == "bot" and f"override:{o.id}" in decision.reasons
        assert await b.overrides.remove(o.id, actor="sup-2", now=NOON + timedelta(minutes=1))
        # a still has it in memory; its expiry sweep must not audit it twice
        await a.overrides.sweep(NOON + timedelta(hours=1))
        audit = await a.overrides.audit(10)
        assert [(e.action, e.actor) for e in audit] == [("delete", "sup-2"), ("create", "sup-1")]
        await a.overrides.refresh(NOON)
        assert a.overrides.active(NOON) == []
    finally:
        await a.aclose()
        await b.aclose()


@pytest.fixture
async def client(
    pool: asyncpg.Pool,
) -> AsyncIterator[tuple[TestClient[web.Request, web.Application], RoutingService]]:
    service = _service(pool)
    await service.start(install_sighup=False)
    app = web.Application(middlewares=[error_middleware])
    app.add_routes(routing_routes(service))
    async with TestClient(TestServer(app)) as c:
        yield c, service
    await service.aclose()


async def test_http_overrides_lifecycle(
    client: tuple[TestClient[web.Request, web.Application], RoutingService],
) -> None:
    c, service = client
    r = await c.get("/api/routing/rules/version")
    assert (await r.json())["version"] == service.rules.current.version
    body = {"scope": "queue", "value": "reception", "minutes": 30, "mode": "bot", "note": "flu"}
    r = await c.post("/api/routing/overrides", json=body, headers={"X-Actor": "anna"})
    assert r.status == 201
    created = (await r.json())["override"]
    assert created["created_by"] == "anna" and (await r.json())["persisted"] is True
    r = await c.get("/api/routing/overrides")
    assert [o["id"] for o in (await r.json())["overrides"]] == [created["id"]]
    r = await c.delete(f"/api/routing/overrides/{created['id']}")
    assert r.status == 200
    r = await c.delete(f"/api/routing/overrides/{created['id']}")
    assert r.status == 404
    r = await c.get("/api/routing/overrides/audit?limit=5")
    assert [e["action"] for e in (await r.json())["audit"]] == ["delete", "create"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"scope": "queue", "value": "reception", "minutes": 30}, "mode"),
        ({"scope": "queue", "value": "", "minutes": 30, "mode": "bot"}, "value"),
        ({"scope": "all", "minutes": 0, "mode": "bot"}, "minutes"),
        ({"scope": "all", "minutes": 5, "queue": "nowhere"}, "queue"),
        ({"scope": "everything", "minutes": 5, "mode": "bot"}, "scope"),
        ({"scope": "all", "minutes": 5, "mode": "bot", "extra": 1}, "extra"),
    ],
)
async def test_http_override_validation(
    client: tuple[TestClient[web.Request, web.Application], RoutingService],
    body: object,
    field: str,
) -> None:
    c, _ = client
    r = await c.post("/api/routing/overrides", json=body)
    assert r.status == 400
    data = await r.json()
    assert (data["error_id"], data["details"]["field"]) == ("routing-override-invalid", field)


async def test_http_override_refuses_a_bad_body_with_the_one_answer(
    client: tuple[TestClient[web.Request, web.Application], RoutingService],
) -> None:
    c, service = client
    for name, body, status, error_id in bad_bodies.cases(MAX_BODY):
        r = await c.post("/api/routing/overrides", data=body, headers=bad_bodies.JSON)
        bad_bodies.check_refusal(name, r.status, await r.json(), status, error_id)
    assert service.overrides.active(service.now()) == []


async def test_http_decision_and_rules(
    client: tuple[TestClient[web.Request, web.Application], RoutingService],
) -> None:
    c, service = client
    await service.route(RouteRequest("1795.1", "1795.0", did="74957654321"))
    r = await c.get("/api/routing/decisions/1795.0")
    assert r.status == 200
    assert (await r.json())["ad_source"] == "source-b"
    r = await c.get("/api/routing/decisions/none")
    assert r.status == 404
    r = await c.get("/api/routing/rules")
    data = await r.json()
    assert data["queues"] == ["doctors", "reception"] and data["last_error"] == ""
    r = await c.post("/api/routing/rules/reload")
    assert r.status == 200 and (await r.json())["reloaded"] is True


class _Directory:
    """A CRM whose card id carries a NUL byte (PostgreSQL text cannot hold it)."""

    async def lookup(self, phone_e164: str) -> CallerProfile | None:
        return CallerProfile("P\x00-17") if phone_e164 == "+79161234567" else None


async def test_one_unwritable_record_does_not_block_the_decision_log(pool: asyncpg.Pool) -> None:
    """Bug: a record PostgreSQL refuses (a CRM patient id with a NUL byte) failed its batch on
    every flush, so it and every call tracking record queued after it were never written."""
    log = PgDecisionLog(pool, flush_interval=0.02)
    service = RoutingService(
        RulesHolder(EXAMPLE), OverrideBook(), RoutingPorts(directory=_Directory(), decisions=log),
        clock=lambda: NOON,
    )  # fmt: skip
    await service.start(install_sighup=False)
    try:
        await service.route(RouteRequest("u-bad", caller="+79161234567", did="74951234567"))
        for i in range(3):
            await service.route(RouteRequest(f"u-{i}", caller="+79160000000", did="74951234567"))
        assert await log.flush() == 3
    finally:
        await service.aclose()
        await log.aclose()
    assert log.dropped == 1 and log.written == 3
    async with pool.acquire() as conn:
        ids = await conn.fetch("SELECT uniqueid FROM route_decisions ORDER BY uniqueid")
    assert [r["uniqueid"] for r in ids] == ["u-0", "u-1", "u-2"]


async def test_a_decision_is_stored_before_the_route_script_ends(pool: asyncpg.Pool) -> None:
    """The chaos harness found decisions lost when callserver was killed within the 0.2 s the
    log buffered them: the route script now waits (briefly) for its decision to be written."""
    log = PgDecisionLog(pool, flush_interval=5.0)  # a long interval: only the wake-up writes
    service = _service(pool, log)
    await service.start(install_sighup=False)
    await log.start()
    try:
        await service.route(RouteRequest("u-9", "l-9", did="74951234567"))
        assert await service.decision_written("u-9", 2.0) is True
        count = await pool.fetchval("SELECT count(*) FROM route_decisions WHERE uniqueid='u-9'")
        assert count == 1
        assert await service.decision_written("never-routed", 0.01) is True  # nothing to wait
    finally:
        await log.aclose()
        await service.aclose()


async def test_waiting_for_a_decision_is_bounded_when_postgresql_is_away(
    pool: asyncpg.Pool,
) -> None:
    log = PgDecisionLog(pool, flush_interval=5.0)  # not started: nothing writes
    service = _service(pool, log)
    await service.start(install_sighup=False)
    try:
        await service.route(RouteRequest("u-10", "l-10", did="74951234567"))
        started = asyncio.get_running_loop().time()
        assert await service.decision_written("u-10", 0.05) is False
        assert asyncio.get_running_loop().time() - started < 0.5
    finally:
        await service.aclose()
