"""The supervisor live board in real headless Chromium: the board arrives over its WebSocket
within a second of a change in the live model, and a hostile caller name is rendered as text
(never as HTML)."""

from __future__ import annotations

import asyncio
import time

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By

from tests.browser.test_dashboards_pages import TOKEN, Site, site, staff, text_of, wait_for

pytestmark = pytest.mark.browser
EVIL = '<img src=x onerror="window.__xss=1">'
__all__ = ["site"]  # the fixture, shared with the pages' tests


async def test_board_shows_live_calls_and_escapes_caller_names(
    browser: webdriver.Chrome, site: Site
) -> None:
    await asyncio.to_thread(browser.get, f"{site.base}/#token={TOKEN}")
    await wait_for(lambda: text_of(browser, "conn") == "на связи")
    now = time.time()
    staff(site.model, now)
    site.model.channel_created("x1", "x1", "PJSIP/trunk-x1", caller="+79161234567",
                               caller_name=EVIL, context="from-trunk", at=now)  # fmt: skip
    site.model.caller_joined_queue("x1", "x1", "reception", 1, at=now)
    started = time.monotonic()
    waiting = await wait_for(lambda: text_of(browser, "waiting") if EVIL in
                             text_of(browser, "waiting") else None)  # fmt: skip
    assert time.monotonic() - started < 1.5  # pushed within a tick (0.2 s here), not polled
    assert "reception" in waiting
    assert browser.execute_script("return window.__xss === undefined") is True
    assert browser.find_elements(By.CSS_SELECTOR, "#waiting img") == []

    site.model.caller_abandoned("x1", "reception", position=1, at=now + 9)
    site.model.channel_hungup("x1", at=now + 9)
    await wait_for(lambda: "+79161234567" in text_of(browser, "missed"))
    assert "+79161234567" not in text_of(browser, "waiting")


async def test_board_without_token_asks_for_one(browser: webdriver.Chrome, site: Site) -> None:
    await asyncio.to_thread(browser.get, f"{site.base}/board")
    await asyncio.to_thread(browser.execute_script, "sessionStorage.clear()")
    await asyncio.to_thread(browser.get, f"{site.base}/board")
    await wait_for(lambda: browser.find_element(By.ID, "login").is_displayed())
    assert not browser.find_element(By.ID, "main").is_displayed()
