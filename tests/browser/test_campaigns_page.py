"""The supervisors' campaigns page in real headless Chromium over the real API and PostgreSQL:
Russian first, English switchable, a hostile campaign name shown as text, pause/resume."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from selenium import webdriver
from selenium.webdriver.common.by import By

from callserver.metrics import Metrics
from callserver.web.app import build_web_app
from callserver.web.auth import token_authenticator
from campaigns.http import CampaignsApi
from campaigns.models import parse_settings
from campaigns.plugin import STATIC, page
from campaigns.store import CampaignStore
from tests.integration.campaigns_support import migrate

pytestmark = pytest.mark.browser
TOKEN = "campaign-page-token"
EVIL = '<img src=x onerror="window.__xss=1">'


@pytest.fixture
async def site(fresh_pg_dsn: str) -> AsyncIterator[tuple[str, CampaignStore, int]]:
    pool = await asyncpg.create_pool(fresh_pg_dsn, min_size=1, max_size=4)
    await migrate(pool)
    store = CampaignStore(pool)
    cid = await store.create(EVIL, "reminder", parse_settings({}), "test")
    api = CampaignsApi(store, pool, time.time, lambda: None)
    app = build_web_app(
        authenticators=[token_authenticator(TOKEN)], health_checks={}, metrics=Metrics(),
        routes=[*api.routes(), web.get("/campaigns", page)], public_paths=["/campaigns"],
        static=[("campaigns", STATIC)], on_shutdown=[],
    )  # fmt: skip
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield f"http://127.0.0.1:{server.port}", store, cid
    finally:
        await server.close()
        await pool.close()


async def wait_for(check: Callable[[], Any], within: float = 10.0) -> Any:
    deadline = time.monotonic() + within
    while True:
        value = await asyncio.to_thread(check)
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.1)


async def test_campaigns_page(
    site: tuple[str, CampaignStore, int], browser: webdriver.Chrome
) -> None:
    base, store, cid = site
    await asyncio.to_thread(browser.get, f"{base}/campaigns#token={TOKEN}")
    row = await wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, "#rows tr"))
    cells = row[0].find_elements(By.TAG_NAME, "td")
    assert cells[1].text == EVIL  # text, not HTML
    assert browser.execute_script("return window.__xss") is None
    assert browser.find_element(By.TAG_NAME, "h1").text == "Обзвоны"
    assert cells[3].text == "на паузе"
    await asyncio.to_thread(row[0].find_element(By.TAG_NAME, "button").click)
    for _ in range(100):
        if (await store.campaign(cid))["state"] == "running":
            break
        await asyncio.sleep(0.05)
    assert (await store.campaign(cid))["state"] == "running"
    await wait_for(lambda: "идёт" in browser.find_element(By.ID, "rows").text)
    await asyncio.to_thread(browser.find_element(By.ID, "lang").click)
    assert browser.find_element(By.TAG_NAME, "h1").text == "Campaigns"
    await wait_for(lambda: "running" in browser.find_element(By.ID, "rows").text)
