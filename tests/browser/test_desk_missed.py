"""The desk's missed-calls panel and click-to-call in real headless Chromium.

The callbacks domain (``/api/callbacks/jobs`` and the ``dialer`` port) is built by another
branch; this test runs the desk against a small plugin implementing *that agreed contract*
(jobs list, claim with 409 for someone else's job, result, live ``callback_job`` frames through
the desk's ``operator_notify`` port, an agent-first ``dial``), inside a real callserver with
pbxsim, PostgreSQL and Redis. The real callbacks plugin is disabled for this test."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import pytest
from aiohttp import web
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from callserver.errors import CallserverError, ErrorCategory
from callserver.plugin_api import Contribution, PluginDeps
from callserver.web.auth import PRINCIPAL
from tests.browser.test_desk_operator import log_in, shot, wait_for
from tests.integration.desk_stack import desk_stack, login

pytestmark = pytest.mark.browser


class Notify(Protocol):
    async def push(self, extension: str, frame: dict[str, Any]) -> None: ...


class JobTaken(CallserverError):
    error_id = "callback-job-taken"
    category = ErrorCategory.CONFLICT


def job(job_id: str, phone: str, name: str, minutes_ago: int) -> dict[str, Any]:
    missed = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - minutes_ago * 60))
    return {"id": job_id, "phone": phone, "patient_name": name, "patient_id": "",
            "reason": "abandoned", "source": "source-b", "queue": "reception",
            "missed_at": missed, "attempts": 0, "state": "open", "claimed_by": "",
            "priority": 1, "next_attempt_at": None, "last_result": "",
            "missed_count": 1}  # fmt: skip


class ContractCallbacks:
    """The agreed callbacks HTTP contract and ``dialer`` port, in memory."""

    name = "contract_callbacks"
    config_type = None
    migrations: Path | None = None
    requires: tuple[str, ...] = ("operator_notify",)
    optional: tuple[str, ...] = ()
    provides: tuple[str, ...] = ("dialer",)

    def __init__(self) -> None:
        self.jobs = {j["id"]: j for j in (job("j1", "+79035550101", "Тестовый Абонент", 5),
                                          job("j2", "+79161234567", "Лаб Пациент", 2))}  # fmt: skip
        self.dials: list[dict[str, Any]] = []
        self.notify: Notify | None = None

    def validate(self, config: None) -> None:
        return None

    def build(self, config: None, deps: PluginDeps) -> Contribution:
        self.notify = deps.ports.get("operator_notify", Notify)
        return Contribution(routes=[
            web.get("/api/callbacks/jobs", self.list_jobs),
            web.post("/api/callbacks/jobs/{id}/claim", self.claim),
            web.post("/api/callbacks/jobs/{id}/result", self.result),
        ], ports={"dialer": self})  # fmt: skip

    async def list_jobs(self, request: web.Request) -> web.Response:
        state = request.query.get("state", "open")
        return web.json_response({"jobs": [j for j in self.jobs.values() if j["state"] == state]})

    async def claim(self, request: web.Request) -> web.Response:
        j, who = self.jobs[request.match_info["id"]], request[PRINCIPAL].user_id
        if j["claimed_by"] and j["claimed_by"] != who:
            raise JobTaken(message="someone else is calling this patient back")
        j.update(claimed_by=who, state="active")
        return await self._changed(j)

    async def result(self, request: web.Request) -> web.Response:
        j = self.jobs[request.match_info["id"]]
        j.update(state="done", last_result=(await request.json())["result"])
        return await self._changed(j)

    async def _changed(self, j: dict[str, Any]) -> web.Response:
        assert self.notify is not None
        await self.notify.push("*", {"type": "callback_job", "job": j})
        return web.json_response({"job": j})

    async def dial(
        self, *, operator: str, phone: str, caller_id: str, context: dict[str, str],
        timeout: float = 30.0,  # noqa: ASYNC109 - the agreed port's signature
    ) -> dict[str, object]:  # fmt: skip
        self.dials.append({"operator": operator, "phone": phone, "context": context})
        await asyncio.sleep(0.2)
        return {"result": "answered", "attempt_id": f"a{len(self.dials)}"}


def rows(browser: webdriver.Chrome, css: str = ".job") -> Sequence[Any]:
    return browser.find_elements(By.CSS_SELECTOR, f"#missed {css}")


async def test_missed_calls_stay_highlighted_until_claimed_and_processed(
    browser: webdriver.Chrome, fresh_pg_dsn: str, redis_url: str, redis_prefix: str
) -> None:
    callbacks = ContractCallbacks()
    env = {"CALLSERVER_PLUGINS_ENABLED": "crm,routing,desk_notify,desk,dashboards",
           "CALLSERVER_DESK_CALLER_ID": "+74951234567"}  # fmt: skip
    async with desk_stack("originate", fresh_pg_dsn, redis_url, redis_prefix, env=env,
                          extra_plugins=(callbacks,)) as st:  # fmt: skip
        await log_in(browser, st.base, "anna")
        await wait_for(lambda: len(rows(browser, ".job.open")) == 2)
        await shot(browser, "10-missed")
        first = rows(browser)[0]
        assert "Лаб Пациент" in first.text  # the most recent miss first

        j1 = browser.find_element(By.CSS_SELECTOR, '#missed .job[data-job-id="j1"] .claim')
        await asyncio.to_thread(j1.click)
        await wait_for(lambda: rows(browser, '.job.mine[data-job-id="j1"]'))
        assert [r.get_attribute("data-job-id") for r in rows(browser, ".job.open")] == ["j2"]

        # another operator claims j2 elsewhere: the list updates live, no longer highlighted
        boris, csrf = await login(st.base, "boris")
        async with boris, boris.post(f"{st.base}/api/callbacks/jobs/j2/claim",
                                     headers={"X-CSRF-Token": csrf}) as r:  # fmt: skip
            assert r.status == 200
        await wait_for(lambda: not rows(browser, ".job.open"))
        assert "Борис Петров" in rows(browser, '[data-job-id="j2"]')[0].text
        await shot(browser, "11-claimed")

        call = browser.find_element(By.CSS_SELECTOR, '#missed .job[data-job-id="j1"] .call-back')
        await asyncio.to_thread(call.click)
        await wait_for(lambda: "дозвонились" in browser.find_element(By.ID, "notice").text)
        context = {"source": "desk", "user_id": str(st.users["anna"]["id"]), "job_id": "j1"}
        assert callbacks.dials == [
            {"operator": "PJSIP/op101", "phone": "+79035550101", "context": context}]

        def save_result() -> None:
            row = browser.find_element(By.CSS_SELECTOR, '#missed .job[data-job-id="j1"]')
            Select(row.find_element(By.CSS_SELECTOR, "select.job-result")).select_by_value(
                "booked")
            row.find_element(By.CSS_SELECTOR, ".job-save").click()

        await asyncio.to_thread(save_result)
        await wait_for(lambda: not rows(browser, '[data-job-id="j1"]'))
        assert callbacks.jobs["j1"]["state"] == "done"
        assert callbacks.jobs["j1"]["last_result"] == "booked"
        await shot(browser, "12-processed")
