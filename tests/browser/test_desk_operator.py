"""The operator desk in real headless Chromium against callserver + pbxsim (real sockets,
PostgreSQL, Redis): log in, the card pops before answer with the right patient, follows the call,
the outcome saved from the page lands in PostgreSQL and the CRM outbox; forged CSRF refused.
Screenshots of each step go to ``tests/artifacts/`` (gitignored)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By

from tests.integration.desk_stack import PASSWORD, desk_stack

pytestmark = pytest.mark.browser
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
RECORDING = "/var/spool/asterisk/monitor/20261201-lab-call.wav"


async def wait_for(check: Callable[[], Any], within: float = 20.0) -> Any:
    deadline = time.monotonic() + within
    while True:
        value = await asyncio.to_thread(check)
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.1)


async def shot(browser: webdriver.Chrome, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    await asyncio.to_thread(browser.save_screenshot, str(ARTIFACTS / f"desk-{name}.png"))


def card(browser: webdriver.Chrome, state: str) -> Any:
    found = browser.find_elements(By.CSS_SELECTOR, f'#pops .pop[data-state="{state}"]')
    return found[0] if found else None


async def log_in(browser: webdriver.Chrome, base: str, login: str) -> None:
    await asyncio.to_thread(browser.set_window_size, 1366, 768)  # the operators' laptops
    await asyncio.to_thread(browser.delete_all_cookies)
    await asyncio.to_thread(browser.get, f"{base}/desk")
    await asyncio.to_thread(browser.execute_script, "localStorage.clear()")
    await asyncio.to_thread(browser.get, f"{base}/desk")
    await wait_for(lambda: browser.find_element(By.ID, "login").is_displayed())
    await shot(browser, "01-login")

    def fill() -> None:
        browser.find_element(By.ID, "login-name").send_keys(login)
        browser.find_element(By.ID, "login-password").send_keys(PASSWORD)
        browser.find_element(By.ID, "login-submit").click()

    await asyncio.to_thread(fill)
    await wait_for(lambda: browser.find_element(By.ID, "conn").text == "на связи")


async def test_operator_sees_the_pop_before_answer_and_saves_the_outcome(
    browser: webdriver.Chrome, fresh_pg_dsn: str, redis_url: str, redis_prefix: str
) -> None:
    env = {"CALLSERVER_DESK_PAID_SOURCES": "yandex,source-a"}
    async with desk_stack("originate", fresh_pg_dsn, redis_url, redis_prefix, env=env) as st:
        await log_in(browser, st.base, "anna")
        assert browser.find_element(By.ID, "me").text == "Анна Смирнова"
        await st.ring_lab_call(recording=RECORDING)

        ringing = await wait_for(lambda: card(browser, "ringing"))
        answered = [c for c in st.server.model.calls() if c.answered_at is not None]
        text = await asyncio.to_thread(lambda: ringing.text)
        await shot(browser, "02-ringing")
        assert answered == [], "the card must be on screen before the operator picks up"
        assert "Лаб Пациент" in text and "+79161234567" in text and "Звонит" in text
        assert "предпочитает утро" in text and "Приветствие" in text and "null" not in text
        assert ringing.find_element(By.CSS_SELECTOR, ".paid").text == "платная реклама"

        await wait_for(lambda: card(browser, "talking"))
        await shot(browser, "03-talking")
        wrapup = await wait_for(lambda: card(browser, "wrapup"), within=30)
        await shot(browser, "04-wrapup")
        link = wrapup.find_element(By.CSS_SELECTOR, "a.recording").get_attribute("href")
        assert link.endswith("/recordings/20261201-lab-call.wav")
        call_id = wrapup.get_attribute("data-call-id")

        def fill_outcome() -> None:
            wrapup.find_element(By.CSS_SELECTOR, 'input[name=tag][value="booking"]').click()
            wrapup.find_element(By.CSS_SELECTOR, 'input[name=outcome][value="booked"]').click()
            wrapup.find_element(By.CSS_SELECTOR, "textarea[name=notes]").send_keys("на 10:00")
            wrapup.find_element(By.CSS_SELECTOR, "button.save-outcome").click()

        await asyncio.to_thread(fill_outcome)
        await wait_for(lambda: not browser.find_elements(By.CSS_SELECTOR, "#pops .pop"))
        await shot(browser, "05-saved")

        conn = await asyncpg.connect(fresh_pg_dsn)
        try:
            row = await conn.fetchrow("SELECT * FROM desk_call_outcomes WHERE call_id=$1", call_id)
            outbox = await conn.fetch("SELECT payload::text AS p FROM crm_outbox"
                                      " WHERE kind='call_outcome'")  # fmt: skip
        finally:
            await conn.close()
        assert row is not None
        assert row["outcome"] == "booked" and list(row["tags"]) == ["booking"]
        assert row["notes"] == "на 10:00" and row["operator"] == "Анна Смирнова"
        assert [json.loads(r["p"])["call_id"] for r in outbox] == [call_id]

        # the page's own session, with a forged CSRF token, is refused
        status = await asyncio.to_thread(browser.execute_async_script, """
            const done = arguments[arguments.length - 1];
            fetch('/api/desk/status', {method: 'POST', credentials: 'same-origin',
                headers: {'Content-Type': 'application/json', 'X-CSRF-Token': 'forged'},
                body: JSON.stringify({status: 'paused', reason: 'x'})}).then(r => done(r.status));
        """)
        assert status == 401

        await asyncio.to_thread(browser.find_element(By.ID, "lang").click)
        await wait_for(lambda: browser.find_element(By.ID, "logout").text == "Log out")
        await shot(browser, "06-english")
