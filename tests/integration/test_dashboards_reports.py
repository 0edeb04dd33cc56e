"""Marketer reports, heatmap, operator KPIs, staffing and the board's seed on real PostgreSQL,
checked number by number against the known day of ``dashboards.sample_data`` (its docstring
has the table the expected figures are worked out from), over HTTP (JSON, CSV, SVG)."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import date, timedelta
from typing import Any

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from callserver.config import load_config
from callserver.core.bus import EventBus
from callserver.core.model.live import LiveModel
from callserver.metrics import Metrics
from callserver.plugins import load_plugins, migration_sources
from callserver.store.migrate import apply_migrations, core_sources
from callserver.web.app import build_web_app
from callserver.web.auth import token_authenticator
from dashboards.board import BoardSettings, LiveBoard
from dashboards.config import DashboardsConfig
from dashboards.http import DashboardsHttp
from dashboards.hub import BoardHub
from dashboards.overload import OverloadDetector
from dashboards.plugin import _report_settings
from dashboards.reports import ReportFilters, Reports
from dashboards.rollup import Rollup
from dashboards.sample_data import DAY, TZ, at, insert_all, insert_calls
from dashboards.spy import SpyService
from dashboards.store import DashboardsStore, seed_board

TOKEN = "reports-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
YANDEX = {"key": "yandex", "calls": 4, "unique_callers": 4, "new_callers": 2,
          "returning_callers": 2, "answered": 3, "missed": 1, "called_back": 0, "reached": 0,
          "booked": 2, "came": 1, "visit_known": 2, "conversion": 0.5, "show_rate": 0.5,
          "answer_rate": 0.75}  # fmt: skip
TWOGIS = {"key": "2gis", "calls": 3, "unique_callers": 2, "new_callers": 2,
          "returning_callers": 0, "answered": 1, "missed": 2, "called_back": 1, "reached": 2,
          "booked": 0, "came": 0, "visit_known": 0, "conversion": 0.0, "show_rate": None,
          "answer_rate": 0.3333}  # fmt: skip
TOTAL = {"key": None, "calls": 7, "unique_callers": 6, "new_callers": 4,
         "returning_callers": 2, "answered": 4, "missed": 3, "called_back": 1, "reached": 2,
         "booked": 2, "came": 1, "visit_known": 2, "conversion": 0.3333, "show_rate": 0.5,
         "answer_rate": 0.5714}  # fmt: skip


async def migrated_pool(dsn: str, *, with_domains: bool) -> asyncpg.Pool:
    sources = migration_sources(load_plugins(load_config(env={})))
    if not with_domains:
        sources = [s for s in sources if s.namespace == "dashboards"]
    conn = await asyncpg.connect(dsn)
    try:
        await apply_migrations(conn, [*core_sources(), *sources])
    finally:
        await conn.close()
    return await asyncpg.create_pool(dsn, min_size=1, max_size=4)


def rollup(pool: asyncpg.Pool) -> Rollup:
    return Rollup(pool, interval=60, margin=900, callback_window_hours=24,
                  booking_window_hours=72)  # fmt: skip


@pytest.fixture
async def pool(fresh_pg_dsn: str) -> AsyncIterator[asyncpg.Pool]:
    p = await migrated_pool(fresh_pg_dsn, with_domains=True)
    async with p.acquire() as conn:
        await insert_all(conn)
    assert await rollup(p).run_once() == 8  # the inbound calls
    try:
        yield p
    finally:
        await p.close()


def reports(pool: asyncpg.Pool, cfg: DashboardsConfig | None = None) -> Reports:
    return Reports(pool, _report_settings(cfg or DashboardsConfig()))


def day(**filters: str) -> ReportFilters:
    return ReportFilters(DAY, DAY, **filters)


async def test_marketer_report_by_source(pool: asyncpg.Pool) -> None:
    r = await reports(pool).marketer(day(), "source")
    assert r["rows"] == [YANDEX, TWOGIS]
    assert r["total"] == TOTAL
    assert (r["crm"], r["tracking"]) == (True, True)


async def test_grouping_by_campaign_did_and_clinic(pool: asyncpg.Pool) -> None:
    rep = reports(pool)
    by_campaign = await rep.marketer(day(), "campaign")
    assert [(x["key"], x["calls"], x["booked"]) for x in by_campaign["rows"]] == [
        ("implants", 4, 2), ("checkup", 3, 0)]
    by_did = await rep.marketer(day(), "did")
    assert [(x["key"], x["missed"], x["reached"]) for x in by_did["rows"]] == [
        ("+74950000001", 1, 0), ("+74950000002", 2, 2)]
    by_clinic = await rep.marketer(day(), "clinic")
    assert [(x["key"], x["unique_callers"]) for x in by_clinic["rows"]] == [("center", 4),
                                                                             ("north", 2)]
    assert by_clinic["total"] == by_did["total"] == TOTAL


async def test_filters(pool: asyncpg.Pool) -> None:
    rep = reports(pool)
    only = await rep.marketer(day(source="2gis"), "source")
    assert only["rows"] == [TWOGIS] and only["total"] == dict(TWOGIS, key=None)
    assert (await rep.marketer(day(clinic="center"), "source"))["rows"] == [YANDEX]
    assert (await rep.marketer(day(did="+74950000002"), "campaign"))["total"]["calls"] == 3
    assert (await rep.marketer(day(campaign="implants"), "did"))["total"]["booked"] == 2
    none = await rep.marketer(day(source="nobody"), "source")
    assert none["rows"] == [] and none["total"]["calls"] == 0


def by_hand(facts: list[asyncpg.Record], dim: str) -> dict[str | None, dict[str, int]]:
    """The marketer figures worked out in Python from the facts: per key and in total."""
    groups: dict[str | None, dict[int, list[asyncpg.Record]]] = {}
    for r in facts:
        for key in (r[dim], None):
            groups.setdefault(key, {}).setdefault(r["caller_key"], []).append(r)
    out = {}
    for key, callers in groups.items():
        calls = [c for rows in callers.values() for c in rows]

        def anyone(test: Any, callers: dict[int, list[asyncpg.Record]] = callers) -> int:
            return sum(any(test(c) for c in rows) for rows in callers.values())

        out[key] = {
            "calls": len(calls), "unique_callers": len(callers),
            "answered": sum(c["answered"] for c in calls),
            "called_back": sum(c["called_back"] for c in calls),
            "reached": sum(c["reached"] for c in calls),
            "returning_callers": anyone(lambda c: c["known"]),
            "booked": anyone(lambda c: c["appointment_id"] is not None),
            "came": anyone(lambda c: c["appointment_status"] == "came"),
            "visit_known": anyone(lambda c: c["appointment_status"] in ("came", "no_show")),
        }  # fmt: skip
    return out


async def test_a_caller_seen_under_two_keys_counts_once_in_the_total(pool: asyncpg.Pool) -> None:
    """+79160000004 called 2GIS's number (c4) and, here, Yandex's (c5): one unique caller in
    each of the two rows and once in the total."""
    await pool.execute(
        "UPDATE dashboards_call_facts SET did = $1, source = 'yandex', campaign = 'implants',"
        " clinic = 'center' WHERE call_id = 'c5'", "+74950000001",
    )  # fmt: skip
    rep = reports(pool)
    start, end = day().bounds(rep.s.tz)
    facts = await pool.fetch(
        "SELECT * FROM dashboards_call_facts WHERE started_at >= $1 AND started_at < $2",
        start, end,
    )  # fmt: skip
    for dim in ("source", "campaign", "did", "clinic"):
        expected = by_hand(facts, dim)
        got = await rep.marketer(day(), dim)
        for row in [*got["rows"], got["total"]]:
            assert {k: row[k] for k in expected[row["key"]]} == expected[row["key"]], (dim, row)
        assert len(got["rows"]) == len(expected) - 1
    yandex = next(r for r in (await rep.marketer(day(), "source"))["rows"] if r["key"] == "yandex")
    assert (yandex["calls"], yandex["unique_callers"]) == (5, 5)
    assert (await rep.marketer(day(), "source"))["total"]["unique_callers"] == 6


async def test_the_day_is_the_clinics_calendar_day(pool: asyncpg.Pool) -> None:
    rep = reports(pool)
    # c8 at 23:50 Moscow the day before is 20:50 UTC: not in DAY; c7 at 00:30 Moscow is
    prev = await rep.marketer(ReportFilters(DAY - timedelta(days=1), DAY - timedelta(days=1)),
                              "source")  # fmt: skip
    assert prev["total"]["calls"] == 1
    both = await rep.marketer(ReportFilters(DAY - timedelta(days=1), DAY), "source")
    assert both["total"]["calls"] == 8
    utc = await reports(pool, DashboardsConfig(timezone="UTC")).marketer(day(), "source")
    assert utc["total"]["calls"] == 6  # in UTC, c7 (21:30 UTC the day before) falls out


async def test_heatmap(pool: asyncpg.Pool) -> None:
    cells = (await reports(pool).heatmap(day()))["cells"]
    assert cells == [{"dow": 1, "hour": 0, "calls": 1, "missed": 1},
                     {"dow": 1, "hour": 10, "calls": 3, "missed": 1},
                     {"dow": 1, "hour": 11, "calls": 2, "missed": 1},
                     {"dow": 1, "hour": 12, "calls": 1, "missed": 0}]  # fmt: skip


async def test_operator_kpis(pool: asyncpg.Pool) -> None:
    r = await reports(pool).operators(day())
    ops = {o["agent"]: o for o in r["operators"]}
    assert ops["PJSIP/op101"] == {
        "agent": "PJSIP/op101", "handled": 2, "asa": 7.5, "aht": 90.0, "callers": 2, "booked": 1,
        "missed": 1, "callbacks": 1, "callbacks_on_time": 1, "conversion": 0.5,
        "on_time_rate": 1.0}  # fmt: skip
    assert (ops["PJSIP/op102"]["handled"], ops["PJSIP/op102"]["asa"],
            ops["PJSIP/op102"]["aht"], ops["PJSIP/op102"]["booked"]) == (2, 22.5, 145.0, 1)
    assert r["team"] == {"handled": 4, "callers": 4, "booked": 2, "missed": 1, "callbacks": 1,
                         "callbacks_on_time": 1, "asa": 15.0, "aht": 117.5, "conversion": 0.5,
                         "on_time_rate": 1.0}  # fmt: skip
    late = await reports(pool, DashboardsConfig(callback_due_minutes=5)).operators(day())
    assert late["team"]["callbacks_on_time"] == 0  # the callback came 10 minutes after c3


async def test_rollup_follows_later_callbacks_bookings_and_visits(pool: asyncpg.Pool) -> None:
    """After the first pass: c7's number is called back (not reached), its caller books, the
    visit is marked; the next passes of the rollup show each in the report."""
    async with pool.acquire() as conn:
        await conn.execute(
            # written now (the rollup reads rows by when they were written)
            "INSERT INTO calls (id, direction, caller, did, agent, state, started_at, ended_at,"
            " updated_at) VALUES ('co2', 'outbound', '101', '89160000006', 'PJSIP/op102',"
            " 'ended', $1, $2, now())", at("13:00"), at("13:01"))  # fmt: skip
    assert await rollup(pool).run_once() == 0  # no new inbound call
    total = (await reports(pool).marketer(day(), "source"))["total"]
    assert (total["called_back"], total["reached"], total["booked"]) == (2, 2, 2)
    async with pool.acquire() as conn:
        await conn.execute("INSERT INTO crm_patients (id, full_name) VALUES (6, 'Орлова Вера')")
        await conn.execute("INSERT INTO crm_patient_phones VALUES ('+79160000006', 6)")
        appt = await conn.fetchval(
            "INSERT INTO crm_appointments (patient_id, starts_at, status, created_at)"
            " VALUES (6, $1, 'booked', $2) RETURNING id", at("10:00", DAY, 3), at("13:05"))
    await rollup(pool).run_once()
    total = (await reports(pool).marketer(day(), "source"))["total"]
    assert (total["booked"], total["came"], total["visit_known"]) == (3, 1, 2)
    async with pool.acquire() as conn:
        await conn.execute("UPDATE crm_appointments SET status = 'came', updated_at = now()"
                           " WHERE id = $1", appt)  # fmt: skip
    await rollup(pool).run_once()
    r = await reports(pool).marketer(day(), "source")
    assert (r["total"]["came"], r["total"]["visit_known"], r["total"]["show_rate"]) == (
        2, 3, 0.6667)
    assert r["rows"][0]["key"] == "yandex" and r["rows"][0]["booked"] == 3


async def test_rollup_rebuild_gives_the_same_report(pool: asyncpg.Pool) -> None:
    before = await reports(pool).marketer(day(), "campaign")
    assert await rollup(pool).rebuild() == 8
    assert await reports(pool).marketer(day(), "campaign") == before


async def test_staffing_from_the_last_weeks(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        for n in (2, 3):  # operators logged in on Monday 10:00-10:59, two samples
            await conn.execute("INSERT INTO dashboards_agent_samples VALUES ($1, 'reception', $2)",
                               at("10:0" + str(n)), n)  # fmt: skip
    r = await reports(pool).staffing(DAY + timedelta(days=7), weeks=1)
    by = {(x["dow"], x["hour"]): x for x in r["rows"]}
    # Monday 10:00: c1, c2, c3 queued → 3 calls/h, AHT (120 + 200) / 2 = 160 s + 10 s wrap-up
    assert (by[1, 10]["calls_per_hour"], by[1, 10]["aht"], by[1, 10]["needed"]) == (3, 170, 1)
    assert by[1, 10]["logged_in"] == 2.5
    assert (by[1, 11]["calls_per_hour"], by[1, 11]["aht"]) == (2, 70)
    assert (1, 0) not in by  # c7 never reached a queue
    assert (r["from"], r["to"]) == ("2026-11-23", "2026-11-29")


async def test_reports_without_routing_and_crm(fresh_pg_dsn: str) -> None:
    p = await migrated_pool(fresh_pg_dsn, with_domains=False)
    try:
        async with p.acquire() as conn:
            await insert_calls(conn)
        await rollup(p).run_once()
        r = await reports(p).marketer(day(), "source")
        assert (r["crm"], r["tracking"]) == (False, False)
        assert r["total"]["calls"] == 7 and r["total"]["booked"] == 0
        assert r["total"]["returning_callers"] == 0  # nothing knows the patients
        assert [x["key"] for x in r["rows"]] == ["yandex", "2gis"]  # calls' own ad_source
        ops = await reports(p).operators(day())
        assert ops["team"]["handled"] == 4 and ops["team"]["booked"] == 0
    finally:
        await p.close()


async def test_board_seed_restores_todays_figures(pool: asyncpg.Pool) -> None:
    model = LiveModel(EventBus())
    cfg = DashboardsConfig()
    board = LiveBoard(model, BoardSettings.from_config(cfg),
                      lambda q: OverloadDetector(q, cfg.thresholds()))  # fmt: skip
    now = at("13:00").timestamp()
    assert await seed_board(pool, board, now) == 9
    snapshot, _ = board.tick(now)
    today = next(q for q in snapshot["queues"] if q["name"] == "reception")["today"]
    assert today == {"offered": 5, "answered": 4, "abandoned": 1, "short_abandoned": 1,
                     "service_level": 0.6, "abandon_rate": 0.2, "asa": 15.0, "aht": 117.5}
    assert [m["call_id"] for m in snapshot["missed"]] == ["c7"]
    assert board.ignore_before == now


# ---- over HTTP ------------------------------------------------------------------------------


@pytest.fixture
async def client(pool: asyncpg.Pool) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    cfg = DashboardsConfig()
    model = LiveModel(EventBus())
    board = LiveBoard(model, BoardSettings.from_config(cfg),
                      lambda q: OverloadDetector(q, cfg.thresholds()))  # fmt: skip
    clock = lambda: at("13:00").timestamp()  # noqa: E731
    hub = BoardHub(board, pool=pool, live=model, clock=clock, push_interval=0.1,
                   sample_interval=60, on_transition=lambda t: None)  # fmt: skip
    store = DashboardsStore(pool)
    http = DashboardsHttp(hub=hub, reports=reports(pool), store=store, clock=clock,
                          spy=SpyService(None, model, store, clock, 1.0),  # type: ignore[arg-type]
                          language="ru", names=lambda i: "")  # fmt: skip
    app = build_web_app(authenticators=[token_authenticator(TOKEN)], health_checks={},
                        metrics=Metrics(), routes=http.routes(), public_paths=["/reports"],
                        static=[], on_shutdown=[])  # fmt: skip
    async with TestClient(TestServer(app)) as c:
        yield c


async def get(client: TestClient[Any, Any], path: str) -> Any:
    resp = await client.get(path, headers=AUTH)
    assert resp.status == 200, await resp.text()
    return resp


async def test_http_json_csv_and_svg_agree(client: TestClient[Any, Any]) -> None:
    q = f"from={DAY}&to={DAY}"
    data = await (await get(client, f"/api/dashboards/reports/marketer?{q}")).json()
    assert data["rows"] == [YANDEX, TWOGIS] and data["total"] == TOTAL
    resp = await get(client, f"/api/dashboards/reports/marketer?{q}&format=csv")
    assert resp.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO((await resp.read()).decode("utf-8-sig")), delimiter=";"))
    assert rows[0][:4] == ["Источник", "Звонки", "Уникальные", "Новые"]
    assert rows[1][:10] == ["yandex", "4", "4", "2", "2", "3", "1", "0", "0", "2"]
    assert rows[2][:10] == ["2gis", "3", "2", "2", "0", "1", "2", "1", "2", "0"]
    assert rows[3][:10] == ["Итого", "7", "6", "4", "2", "4", "3", "1", "2", "2"]
    en = await get(client, f"/api/dashboards/reports/marketer?{q}&format=csv&lang=en")
    assert (await en.read()).decode("utf-8-sig").startswith("Source;Calls")
    svg = await get(client, f"/api/dashboards/reports/heatmap?{q}&format=svg&metric=missed")
    assert svg.headers["Content-Type"].startswith("image/svg+xml")
    assert "Пн 10:00 — 1" in await svg.text()
    chart = await (await get(client, f"/api/dashboards/reports/marketer?{q}&format=svg")).text()
    assert "yandex" in chart and "<svg" in chart
    ops = await (await get(client, f"/api/dashboards/reports/operators?{q}&format=csv")).read()
    assert "PJSIP/op101;PJSIP/op101;2;7.5;90.0;1;2;1;0.5;1;1;1.0" in ops.decode("utf-8-sig")


async def test_http_refuses_bad_input(client: TestClient[Any, Any]) -> None:
    for bad in ("from=2026-13-01", "from=2026-11-24&to=2026-11-23", "by=caller",
                "from=2020-01-01&to=2026-01-01"):  # fmt: skip
        resp = await client.get(f"/api/dashboards/reports/marketer?{bad}", headers=AUTH)
        assert resp.status == 400
        assert (await resp.json())["error_id"] == "dashboards-invalid"
    assert (await client.get("/api/dashboards/reports/marketer")).status == 401
    resp = await client.post("/api/dashboards/spy", headers=AUTH, data="not json")
    assert resp.status == 400


async def test_config_and_default_dates(client: TestClient[Any, Any]) -> None:
    cfg = await (await get(client, "/api/dashboards/config")).json()
    assert cfg == {"language": "ru", "timezone": "Europe/Moscow", "today": "2026-11-23",
                   "sl_seconds": 20.0, "sl_target": 0.8}  # fmt: skip
    data = await (await get(client, "/api/dashboards/reports/marketer")).json()
    # the last 7 clinic days up to "today": c8 (the evening before) is in as well
    assert (data["filters"]["from"], data["filters"]["to"]) == (str(date(2026, 11, 17)),
                                                                str(DAY))  # fmt: skip
    assert data["total"]["calls"] == 8
    assert TZ.key == "Europe/Moscow"
