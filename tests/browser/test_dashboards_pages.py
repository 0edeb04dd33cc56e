"""The board and the reports page in real headless Chromium over a real server (PostgreSQL
with the known day of ``dashboards.sample_data``, the real live model and board hub), with
screenshots under ``tests/artifacts/``."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestServer
from selenium import webdriver
from selenium.webdriver.common.by import By

from callserver.config import load_config
from callserver.core.bus import EventBus
from callserver.core.model.live import LiveModel
from callserver.core.model.records import MemberInfo
from callserver.metrics import Metrics
from callserver.plugins import load_plugins, migration_sources
from callserver.store.migrate import apply_migrations, core_sources
from callserver.web.app import build_web_app
from callserver.web.auth import token_authenticator
from dashboards.board import BoardSettings, LiveBoard
from dashboards.config import DashboardsConfig
from dashboards.http import BOARD_WS_PATH, STATIC, DashboardsHttp
from dashboards.hub import BoardHub
from dashboards.overload import OverloadDetector
from dashboards.plugin import _report_settings
from dashboards.reports import Reports
from dashboards.rollup import Rollup
from dashboards.sample_data import DAY, insert_all
from dashboards.spy import SpyService
from dashboards.store import DashboardsStore

pytestmark = pytest.mark.browser
TOKEN = "board-token"
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
NAMES = {"PJSIP/op101": "Анна Смирнова", "PJSIP/op102": "Иван Котов"}


@dataclass
class Site:
    base: str
    model: LiveModel
    pool: asyncpg.Pool


@pytest.fixture
async def site(fresh_pg_dsn: str) -> AsyncIterator[Site]:
    conn = await asyncpg.connect(fresh_pg_dsn)
    try:
        await apply_migrations(conn, [*core_sources(),
                                      *migration_sources(load_plugins(load_config(env={})))])
        await insert_all(conn)
    finally:
        await conn.close()
    pool = await asyncpg.create_pool(fresh_pg_dsn, min_size=1, max_size=4)
    await Rollup(pool, interval=60, margin=900, callback_window_hours=24,
                 booking_window_hours=72).run_once()  # fmt: skip
    bus = EventBus()
    model = LiveModel(bus)
    cfg = DashboardsConfig()
    board = LiveBoard(model, BoardSettings.from_config(cfg, lambda i: NAMES.get(i, "")),
                      lambda q: OverloadDetector(q, cfg.thresholds()))  # fmt: skip
    bus.subscribe(board.on_event)
    hub = BoardHub(board, pool=pool, live=model, clock=time.time, push_interval=0.2,
                   sample_interval=60, on_transition=lambda t: None)  # fmt: skip
    store = DashboardsStore(pool)
    http = DashboardsHttp(hub=hub, reports=Reports(pool, _report_settings(cfg)), store=store,
                          spy=SpyService(None, model, store, time.time, 1.0),  # type: ignore[arg-type]
                          clock=time.time, language="ru", names=lambda i: NAMES.get(i, ""))
    app = build_web_app(authenticators=[token_authenticator(TOKEN)], health_checks={},
                        metrics=Metrics(), routes=http.routes(),
                        public_paths=["/", "/board", "/reports", BOARD_WS_PATH],
                        static=[("dashboards", STATIC)], on_shutdown=[hub.aclose])  # fmt: skip
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    await hub.start()
    try:
        yield Site(f"http://127.0.0.1:{server.port}", model, pool)
    finally:
        await server.close()
        await hub.aclose()
        await pool.close()


async def wait_for(check: Callable[[], Any], within: float = 15.0) -> Any:
    deadline = time.monotonic() + within
    while True:
        value = await asyncio.to_thread(check)
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.1)


def text_of(browser: webdriver.Chrome, element_id: str) -> str:
    return str(browser.find_element(By.ID, element_id).text)


def staff(model: LiveModel, now: float) -> None:
    for op, status, paused, reason in (("PJSIP/op101", "not_inuse", False, ""),
                                       ("PJSIP/op102", "not_inuse", False, ""),
                                       ("PJSIP/op103", "not_inuse", True, "обед"),
                                       ("PJSIP/op104", "unavailable", False, "")):  # fmt: skip
        model.member_status(MemberInfo("reception", op, f"Оператор {op[-3:]}", status, paused,
                                       reason), at=now)  # fmt: skip


def shot(browser: webdriver.Chrome, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    browser.save_screenshot(str(path))
    return path


async def test_reports_page_shows_the_known_day(browser: webdriver.Chrome, site: Site) -> None:
    await asyncio.to_thread(browser.get, f"{site.base}/reports?from={DAY}&to={DAY}#token={TOKEN}")
    await wait_for(lambda: browser.execute_script("return document.body.dataset.loaded") == "1")
    rows = [r.text for r in browser.find_elements(By.CSS_SELECTOR, "#marketer tbody tr")]
    assert rows == ["yandex 4 4 2 2 3 1 0 0 2 50% 50%", "2gis 3 2 2 0 1 2 1 2 0 0% —",
                    "Итого 7 6 4 2 4 3 1 2 2 33.3% 50%"]  # fmt: skip
    ops = [r.text for r in browser.find_elements(By.CSS_SELECTOR, "#operators tbody tr")]
    assert ops[0].startswith("Анна Смирнова 2 8 с 1:30 1 50% 1 100%")
    assert ops[-1].startswith("Команда 4 15 с 1:58")
    # the three SVG charts came through blob: URLs and rendered
    for img in ("chart-marketer", "chart-heatmap", "chart-missed"):
        assert browser.execute_script(
            f"const i = document.getElementById('{img}'); return i.src.startsWith('blob:') "
            "&& i.naturalWidth > 0")
    assert shot(browser, "dashboards-report.png").stat().st_size > 10_000
    browser.find_element(By.CSS_SELECTOR, "[data-lang=en]").click()
    await wait_for(lambda: "Total 7 6" in text_of(browser, "marketer"))
    browser.find_element(By.CSS_SELECTOR, "[data-lang=ru]").click()
    await wait_for(lambda: "Итого 7 6" in text_of(browser, "marketer"))


async def test_board_screenshot_with_live_calls(browser: webdriver.Chrome, site: Site) -> None:
    now = time.time()
    staff(site.model, now - 600)
    for i, caller in enumerate(("+79161112233", "+79035550101")):
        uid = f"live{i}"
        site.model.channel_created(uid, uid, f"PJSIP/trunk-{uid}", caller=caller,
                                   context="from-trunk", at=now - 95 + i * 30)  # fmt: skip
        site.model.caller_joined_queue(uid, uid, "reception", i + 1, at=now - 90 + i * 30)
    site.model.agent_connected("live0", "reception", "PJSIP/op101", at=now - 40)
    await asyncio.to_thread(browser.get, f"{site.base}/board#token={TOKEN}")
    await wait_for(lambda: text_of(browser, "conn") == "на связи")
    await wait_for(lambda: "+79035550101" in text_of(browser, "waiting"))
    agents = text_of(browser, "agents")
    assert "Анна Смирнова разговаривает +79161112233" in agents
    assert "перерыв — обед" in agents and "не в сети" in agents
    assert "Слушать" in agents and "Вмешаться" in agents
    assert "reception" in text_of(browser, "queues")
    assert shot(browser, "dashboards-board.png").stat().st_size > 10_000
