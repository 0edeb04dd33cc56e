"""Issue 9, defect 1: one override whose text PostgreSQL refuses stopped all override persistence.

``POST /api/routing/overrides`` with a note cut inside an emoji (``"\\ud83d"``) answered 201 with
``persisted: false``, and from then on every override, delete and expiry was ``persisted: false``
(the refused entry stayed first in the retry queue for good). Real PostgreSQL, real HTTP socket.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

import routing
from callserver.store.errors import StoreQueryError
from callserver.store.migrate import MigrationSource, apply_migrations
from callserver.web.middlewares import error_middleware
from routing.http import routing_routes
from routing.models import AuditEntry, Override
from routing.overrides import OverrideBook, build_override
from routing.reload import RulesHolder
from routing.service import RoutingPorts, RoutingService
from routing.store import PgDecisionLog, PgOverrideStore

EXAMPLE = Path(routing.__file__).parent / "rules.example.toml"
NOON = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
SOURCE = MigrationSource("routing", Path(routing.__file__).parent / "migrations")
GOOD = {"scope": "queue", "value": "reception", "minutes": 5, "mode": "queue"}


@pytest.fixture
async def pool(fresh_pg_dsn: str) -> AsyncIterator[asyncpg.Pool]:
    conn = await asyncpg.connect(fresh_pg_dsn, timeout=10)
    try:
        await apply_migrations(conn, [SOURCE])
    finally:
        await conn.close()
    p = await asyncpg.create_pool(fresh_pg_dsn, min_size=1, max_size=4, timeout=10)
    try:
        yield p
    finally:
        await p.close()


@pytest.fixture
async def client(pool: asyncpg.Pool) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    service = RoutingService(RulesHolder(EXAMPLE), OverrideBook(PgOverrideStore(pool)),
                             RoutingPorts(decisions=PgDecisionLog(pool)),
                             clock=lambda: NOON)  # fmt: skip
    await service.start(install_sighup=False)
    app = web.Application(middlewares=[error_middleware])
    app.add_routes(routing_routes(service))
    async with TestClient(TestServer(app)) as c:
        yield c
    await service.aclose()


@pytest.mark.parametrize("note", ["\ud83d", "flu\x00", "\udcff"])
async def test_bad_note_is_refused_with_400_and_later_overrides_persist(
    client: TestClient[web.Request, web.Application], note: str
) -> None:
    r = await client.post("/api/routing/overrides", json={**GOOD, "note": note})
    assert r.status == 400
    data = await r.json()
    assert data["details"]["field"] == "note" and "note" in data["message"]
    r = await client.post("/api/routing/overrides", json={**GOOD, "note": "грипп 🤒"})
    assert r.status == 201 and (await r.json())["persisted"] is True
    created = (await r.json())["override"]
    r = await client.delete(f"/api/routing/overrides/{created['id']}")
    assert r.status == 200 and (await r.json())["persisted"] is True
    r = await client.get("/api/routing/overrides/audit")
    audit = (await r.json())["audit"]
    assert [(e["action"], e["override"]["note"]) for e in audit] == [
        ("delete", "грипп 🤒"), ("create", "грипп 🤒"),
    ]  # fmt: skip


async def test_bad_text_anywhere_in_the_body_names_its_field(
    client: TestClient[web.Request, web.Application],
) -> None:
    r = await client.post("/api/routing/overrides", json={**GOOD, "value": "recep\x00tion"})
    assert r.status == 400 and (await r.json())["details"]["field"] == "value"
    r = await client.get("/api/routing/decisions/abc%00def")
    assert r.status == 404  # not a 5xx carrying the database's text


async def test_store_cleans_text_a_direct_caller_passed_through(pool: asyncpg.Pool) -> None:
    """The store itself never refuses an override for its text (NUL, half an emoji): cleaned."""
    book = OverrideBook(PgOverrideStore(pool))
    rules = RulesHolder(EXAMPLE).load_initial()
    bad = build_override(rules, GOOD, actor="sup\udcff", now=NOON)
    bad = replace(bad, note="a\x00\ud83d")  # as if built without the HTTP edge's check
    assert await book.add(bad) is True
    good = build_override(rules, GOOD, actor="sup", now=NOON)
    assert await book.add(good) is True
    assert await book.remove(bad.id, actor="x\x00y", now=NOON + timedelta(minutes=1)) is True
    audit = await book.audit(10)
    assert [(e.action, e.override.note) for e in audit] == [
        ("delete", "a\ufffd"), ("create", ""), ("create", "a\ufffd"),
    ]  # fmt: skip
    assert book.refused == 0


class _RefusingStore:
    """An ``OverrideStore`` that refuses (for good) every entry whose note says so."""

    def __init__(self) -> None:
        self.saved: list[AuditEntry] = []
        self.attempts = 0

    async def save(self, entry: AuditEntry) -> None:
        self.attempts += 1
        if entry.override.note == "refuse me":
            raise StoreQueryError(message="save routing override: refused", operation="save")
        self.saved.append(entry)

    async def active(self, now: datetime) -> list[Override]:
        live = {e.override.id: e.override for e in self.saved if e.action == "create"}
        for e in self.saved:
            if e.action != "create":
                live.pop(e.override.id, None)
        return [o for o in live.values() if o.active(now)]

    async def audit(self, limit: int) -> list[AuditEntry]:
        return list(reversed(self.saved))[:limit]


async def test_one_refused_entry_never_blocks_the_others() -> None:
    store = _RefusingStore()
    book = OverrideBook(store)
    rules = RulesHolder(EXAMPLE).load_initial()
    refused = build_override(rules, {**GOOD, "note": "refuse me"}, actor="sup", now=NOON)
    assert await book.add(refused) is False
    later = [build_override(rules, GOOD, actor="sup", now=NOON) for _ in range(3)]
    assert [await book.add(o) for o in later] == [True, True, True]
    for _ in range(3):
        await book.refresh(NOON)  # the refused entry is not retried every refresh
    assert store.attempts == 4 and book.refused == 1
    # still in force on this instance (a supervisor's action), beside the stored ones
    assert {o.id for o in book.active(NOON)} == {refused.id, *(o.id for o in later)}
    assert await book.remove(later[0].id, actor="sup", now=NOON) is True
    assert await book.sweep(NOON + timedelta(minutes=10)) == 3
    assert [e.action for e in store.saved] == ["create"] * 3 + ["delete", "expire", "expire"]
