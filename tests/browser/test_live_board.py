"""The supervisor live board in real headless Chromium: snapshot, live events over the
WebSocket, and a hostile caller name rendered as text (never as HTML)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from selenium import webdriver
from selenium.webdriver.common.by import By

from callserver.core.events import CallEnded, CallQueued, CallSnapshot
from callserver.metrics import Metrics
from callserver.web.app import build_web_app
from callserver.web.auth import token_authenticator
from callserver.web.calls import calls_routes
from callserver.web.live import LIVE_WS_PATH, LiveHub, live_routes
from dashboards.plugin import STATIC
from dashboards.plugin import board as board_page

pytestmark = pytest.mark.browser
TOKEN = "board-token"
EVIL = '<img src=x onerror="window.__xss=1">'


class Recent:
    async def recent(self, limit: int) -> list[dict[str, Any]]:
        return [
            {"id": "old.1", "caller": "+79035550101", "ad_source": "source-b", "queue": "reception",
             "agent": "", "state": "abandoned", "started_at": "2026-11-23T05:50:00+00:00",
             "wait_seconds": 9, "talk_seconds": None, "answered_at": None}
        ]

    async def get(self, call_id: str) -> dict[str, Any] | None:
        return None


def snap(call_id: str, state: str, caller_name: str, at: float) -> CallSnapshot:
    return CallSnapshot(
        id=call_id, linkedid=call_id, direction="inbound", state=state,  # type: ignore[arg-type]
        caller="+79161234567", caller_name=caller_name, did="+74951234567", ad_source="source-a",
        queue="reception", agent="", agent_name="", started_at=at, queued_at=at,
    )


@pytest.fixture
async def board() -> AsyncIterator[tuple[str, LiveHub]]:
    hub = LiveHub()
    app = build_web_app(
        authenticators=[token_authenticator(TOKEN)], health_checks={}, metrics=Metrics(),
        routes=[*calls_routes(Recent()), web.get("/", board_page), web.get("/board", board_page),
                *live_routes(hub, lambda: {"calls": [], "agents": [], "queues": {}}, TOKEN)],
        public_paths=["/", "/board", LIVE_WS_PATH], static=[("dashboards", STATIC)],
        on_shutdown=[hub.close],
    )
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield f"http://127.0.0.1:{server.port}", hub
    finally:
        await server.close()


async def wait_for(check: Callable[[], Any], within: float = 10.0) -> Any:
    deadline = time.monotonic() + within
    while True:
        value = await asyncio.to_thread(check)
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.1)


async def test_board_shows_live_calls_and_escapes_caller_names(
    browser: webdriver.Chrome, board: tuple[str, LiveHub]
) -> None:
    base, hub = board
    await asyncio.to_thread(browser.get, f"{base}/#token={TOKEN}")
    await wait_for(lambda: browser.find_element(By.ID, "conn").text == "live")
    # the recent-calls snapshot came from /api/calls with the token
    await wait_for(lambda: "+79035550101" in browser.find_element(By.ID, "recent").text)

    now = time.time()
    hub.publish(CallQueued(at=now, call=snap("1.1", "queued", EVIL, now), queue="reception",
                           position=1))
    waiting = await wait_for(
        lambda: browser.find_element(By.ID, "waiting").text if EVIL in
        browser.find_element(By.ID, "waiting").text else None
    )
    assert "reception" in waiting and "source-a" in waiting
    assert browser.execute_script("return window.__xss === undefined") is True
    assert browser.find_elements(By.CSS_SELECTOR, "#waiting img") == []
    assert browser.find_element(By.ID, "t-waiting").text == "1"

    hub.publish(CallEnded(at=now + 5, call=snap("1.1", "ended", EVIL, now)))
    await wait_for(lambda: browser.find_element(By.ID, "t-waiting").text == "0")


async def test_board_without_token_asks_for_one(
    browser: webdriver.Chrome, board: tuple[str, LiveHub]
) -> None:
    base, _ = board
    await asyncio.to_thread(browser.get, f"{base}/board")
    await asyncio.to_thread(browser.execute_script, "sessionStorage.clear()")
    await asyncio.to_thread(browser.get, f"{base}/board")
    await wait_for(lambda: browser.find_element(By.ID, "login").is_displayed())
    assert not browser.find_element(By.ID, "main").is_displayed()
