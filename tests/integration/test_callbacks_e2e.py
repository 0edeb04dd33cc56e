"""Callbacks end to end: pbxsim (its own process, real AMI/FastAGI sockets) + CallServer with
every installed plugin + real PostgreSQL and Redis.

Business hours are widened to the whole week so the tests run at any hour; times in pbxsim are
scenario seconds (``speed`` per wall second)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any, Protocol

import aiohttp
import asyncpg
import pytest

from callserver.app import CallServer
from callserver.config import Config, load_config
from callserver.plugins import LoadedPlugin, load_plugins, order
from devtools.services import free_port
from tests.integration.test_end_to_end import wait_for
from tests.pbxsim_proc import Pbx, run_pbxsim

pytestmark = pytest.mark.integration
TOKEN = "e2e-token"
ALWAYS = {
    "CALLSERVER_CALLBACKS_BUSINESS_HOURS": "00:00-24:00",
    "CALLSERVER_CALLBACKS_BUSINESS_DAYS": "1-7",
    "CALLSERVER_CALLBACKS_PATIENT_HOURS": "00:00-24:00",
    "CALLSERVER_CALLBACKS_CALLER_ID": "74951234567",
}


def callbacks_env(pbx: Pbx, dsn: str, redis_url: str, prefix: str,
                  extra: Mapping[str, str] | None = None) -> dict[str, str]:  # fmt: skip
    return {
        "CALLSERVER_AMI_PORT": str(pbx.ami_port),
        "CALLSERVER_AMI_SECRET": "callserver",
        "CALLSERVER_AMI_RECONNECT_MIN": "0.1",
        "CALLSERVER_AMI_RECONNECT_MAX": "0.5",
        "CALLSERVER_ARI_URL": f"http://127.0.0.1:{pbx.ari_port}/ari",
        "CALLSERVER_ARI_PASSWORD": "callserver",
        "CALLSERVER_AGI_PORT": str(pbx.agi_port),
        "CALLSERVER_DATABASE_DSN": dsn,
        "CALLSERVER_DATABASE_FLUSH_INTERVAL": "0.05",
        "CALLSERVER_REDIS_URL": redis_url,
        "CALLSERVER_REDIS_PREFIX": prefix,
        "CALLSERVER_HTTP_PORT": str(free_port()),
        "CALLSERVER_HTTP_API_TOKEN": TOKEN,
        **ALWAYS,
        **dict(extra or {}),
    }


@contextlib.asynccontextmanager
async def server(env: Mapping[str, str], extra: tuple[Any, ...] = ()) -> AsyncIterator[CallServer]:
    config: Config = load_config(None, env=dict(env))
    plugins = order([*load_plugins(config), *(LoadedPlugin(p, None) for p in extra)])
    srv = await CallServer.create(config, plugins)
    await srv.start()
    try:
        async with asyncio.timeout(30):
            await srv.database.ready.wait()
        yield srv
    finally:
        await srv.aclose()


@contextlib.asynccontextmanager
async def stack(
    scenario: str, dsn: str, redis_url: str, prefix: str, *, speed: float = 4.0,
    extra: Mapping[str, str] | None = None,
) -> AsyncIterator[tuple[CallServer, Pbx]]:  # fmt: skip
    async with run_pbxsim(scenario, speed=speed, agi_port=free_port()) as pbx:  # noqa: SIM117
        async with server(callbacks_env(pbx, dsn, redis_url, prefix, extra)) as srv:
            yield srv, pbx


async def rows(dsn: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(dsn)
    try:
        return list(await conn.fetch(sql, *args))
    except asyncpg.UndefinedTableError:
        return []
    finally:
        await conn.close()


def url(srv: CallServer, path: str) -> str:
    return f"http://127.0.0.1:{srv.config.http.port}{path}"


AUTH = {"Authorization": f"Bearer {TOKEN}"}


async def test_abandoned_call_is_called_back_within_the_budget_and_the_outcome_stored(
    fresh_pg_dsn: str, redis_url: str, redis_prefix: str
) -> None:
    async with stack("callbacks-abandoned", fresh_pg_dsn, redis_url, redis_prefix) as (srv, _):
        sql = "SELECT * FROM callback_jobs WHERE phone = '+79035550101' AND state = 'done'"
        job = (await wait_for(lambda: rows(fresh_pg_dsn, sql), within=40.0))[0]
        assert job["reason"] == "abandoned" and job["source"] == "source-b"
        assert job["queue"] == "reception" and job["outcome"] == "reached"
        assert job["first_attempt_at"] - job["missed_at"] <= 10.0  # the budget
        attempts = await rows(fresh_pg_dsn, "SELECT * FROM callback_attempts WHERE job_id = $1",
                              job["id"])  # fmt: skip
        assert [(a["operator"], a["result"], a["cause"]) for a in attempts] == [
            ("PJSIP/op101", "answered", "ANSWER")]
        assert attempts[0]["uniqueid"]
        async with aiohttp.ClientSession() as http:
            resp = await http.get(url(srv, "/api/callbacks/jobs?state=done"), headers=AUTH)
            listed = (await resp.json())["jobs"]
            assert job["id"] in [j["id"] for j in listed]
            resp = await http.post(url(srv, f"/api/callbacks/jobs/{job['id']}/result"),
                                   json={"result": "booked", "note": "12:00"}, headers=AUTH)
            assert resp.status == 200, await resp.text()
            assert (await resp.json())["outcome"] == "booked"
            metrics = await (await http.get(url(srv, "/metrics"))).text()
        assert 'callserver_callbacks_attempts_total{result="answered"}' in metrics


async def test_busy_patient_is_retried_per_policy_until_the_attempts_run_out(
    fresh_pg_dsn: str, redis_url: str, redis_prefix: str
) -> None:
    extra = {"CALLSERVER_CALLBACKS_RETRY_DELAYS_S": "1.5",
             "CALLSERVER_CALLBACKS_MAX_ATTEMPTS": "2"}  # fmt: skip
    async with stack("callbacks-abandoned", fresh_pg_dsn, redis_url, redis_prefix, extra=extra):
        sql = "SELECT * FROM callback_jobs WHERE phone = '+79035550105' AND state = 'done'"
        job = (await wait_for(lambda: rows(fresh_pg_dsn, sql), within=60.0))[0]
        assert job["outcome"] == "max_attempts" and job["attempts"] == 2
        attempts = await rows(fresh_pg_dsn, "SELECT * FROM callback_attempts WHERE job_id = $1 "
                              "ORDER BY started_at", job["id"])  # fmt: skip
        assert [a["result"] for a in attempts] == ["busy", "busy"]
        assert attempts[1]["started_at"] - attempts[0]["ended_at"] >= 1.5


async def test_repeated_misses_merge_wait_for_an_operator_and_close_when_the_patient_gets_through(
    fresh_pg_dsn: str, redis_url: str, redis_prefix: str
) -> None:
    # no operator is in the callback team: the job waits
    extra = {"CALLSERVER_CALLBACKS_QUEUES": "callback-team"}
    async with stack("callbacks-repeat", fresh_pg_dsn, redis_url, redis_prefix, extra=extra):
        sql = "SELECT * FROM callback_jobs WHERE phone = '+79035550101'"
        merged = await wait_for(
            lambda: _where(rows(fresh_pg_dsn, sql), lambda r: r["missed_count"] == 2), 40.0
        )
        assert merged["state"] == "open" and merged["attempts"] == 0
        closed = await wait_for(
            lambda: _where(rows(fresh_pg_dsn, sql), lambda r: r["state"] == "done"), 40.0
        )
        assert closed["id"] == merged["id"] and closed["outcome"] == "patient_called"
        assert await rows(fresh_pg_dsn, "SELECT * FROM callback_attempts") == []


async def _where(fetch: Any, pred: Any) -> Any:
    for r in await fetch:
        if pred(r):
            return r
    return None


async def test_web_form_validates_rate_limits_and_creates_a_job(
    fresh_pg_dsn: str, redis_url: str, redis_prefix: str
) -> None:
    extra = {"CALLSERVER_CALLBACKS_FORM_PER_CLIENT": "6",
             "CALLSERVER_CALLBACKS_QUEUES": "callback-team"}  # fmt: skip
    async with stack("originate", fresh_pg_dsn, redis_url, redis_prefix, extra=extra) as (srv, _):
        form = url(srv, "/api/callback-requests")
        async with aiohttp.ClientSession() as http:
            resp = await http.post(form, json={"phone": "позвоните мне"})
            body = await resp.json()
            assert resp.status == 400 and body["details"]["field"] == "phone"
            resp = await http.post(form, json={"name": "Анна"})
            assert resp.status == 400 and (await resp.json())["message"] == "phone: required"
            resp = await http.post(form, data=b"{not json")
            assert resp.status == 400
            ok = {"phone": "+7 916 123-45-67", "name": "Анна", "comment": "про импланты",
                  "utm": {"utm_source": "yandex"}}  # fmt: skip
            resp = await http.post(form, json=ok)
            assert resp.status == 201, await resp.text()
            job_id = (await resp.json())["id"]
            codes = [(await http.post(form, json=ok)).status for _ in range(3)]
            assert codes == [201, 201, 429]  # 3 per phone and hour
            resp = await http.post(form, json={**ok, "phone": "+79161234599"})
            assert resp.status == 429  # 6 per client address
            assert (await resp.json())["error_id"] == "callback-rate-limited"
            job = await (await http.get(url(srv, f"/api/callbacks/jobs/{job_id}"),
                                        headers=AUTH)).json()  # fmt: skip
            # the jobs API itself is not public
            assert (await http.get(url(srv, "/api/callbacks/jobs"))).status == 401
        assert job["reason"] == "web_form" and job["name"] == "Анна"
        assert job["phone"] == "+79161234567" and job["missed_count"] == 3


async def test_web_form_with_a_scoped_token(
    fresh_pg_dsn: str, redis_url: str, redis_prefix: str
) -> None:
    extra = {"CALLSERVER_CALLBACKS_FORM_TOKEN": "site-secret",
             "CALLSERVER_CALLBACKS_QUEUES": "callback-team"}  # fmt: skip
    async with stack("originate", fresh_pg_dsn, redis_url, redis_prefix, extra=extra) as (srv, _):
        form = url(srv, "/api/callback-requests")
        body = {"phone": "+79161234567", "client_ip": "203.0.113.9"}
        async with aiohttp.ClientSession() as http:
            assert (await http.post(form, json=body)).status == 403
            bad = {"Authorization": "Bearer nope"}
            assert (await http.post(form, json=body, headers=bad)).status == 403
            good = {"Authorization": "Bearer site-secret"}
            assert (await http.post(form, json=body, headers=good)).status == 201
            # the scoped token opens the form only, not the API
            assert (await http.get(url(srv, "/api/callbacks/jobs"), headers=good)).status == 401


async def test_two_instances_share_the_jobs_without_double_dialing(
    fresh_pg_dsn: str, redis_url: str, redis_prefix: str
) -> None:
    async with run_pbxsim("callbacks-abandoned", speed=4.0, agi_port=free_port()) as pbx:
        env = callbacks_env(pbx, fresh_pg_dsn, redis_url, redis_prefix)
        env2 = {**env, "CALLSERVER_HTTP_PORT": str(free_port()),
                "CALLSERVER_AGI_PORT": str(free_port())}  # fmt: skip
        async with server(env), server(env2):
            sql = "SELECT * FROM callback_jobs WHERE phone = '+79035550101' AND state = 'done'"
            await wait_for(lambda: rows(fresh_pg_dsn, sql), within=40.0)
            deadline = time.monotonic() + 3.0
            while time.monotonic() < deadline:  # let any duplicate surface
                attempts = await rows(fresh_pg_dsn, "SELECT * FROM callback_attempts "
                                      "WHERE phone = '+79035550101'")  # fmt: skip
                assert len(attempts) == 1, attempts
                await asyncio.sleep(0.2)
        assert attempts[0]["result"] == "answered"


class DialerUser:
    """A stand-in for desk's click-to-call: requires our ``dialer`` port."""

    name = "dialer-user"
    config_type: type[Any] | None = None
    migrations: Path | None = None
    requires: tuple[str, ...] = ("dialer",)
    optional: tuple[str, ...] = ()
    provides: tuple[str, ...] = ()
    port: Any = None

    def validate(self, config: None) -> None:
        return None

    def build(self, config: None, deps: Any) -> Any:
        from callserver.plugin_api import Contribution

        self.port = deps.ports.get("dialer", Dialer)
        return Contribution()


class Dialer(Protocol):
    async def dial(
        self, *, operator: str, phone: str, caller_id: str, context: dict[str, str],
        timeout: float = ...,  # noqa: ASYNC109 - the agreed port's ring time
    ) -> dict[str, Any]: ...  # fmt: skip


async def test_the_dialer_port_rings_the_operator_then_the_patient(
    fresh_pg_dsn: str, redis_url: str, redis_prefix: str
) -> None:
    """``callbacks-dialer`` scenario: op101 answers after 3 s; 79990000004 answers,
    79990000005 is busy; op102 is not registered (Originate Reason 5 or 3)."""
    user = DialerUser()
    async with run_pbxsim("callbacks-dialer", speed=4.0, agi_port=free_port()) as pbx:
        env = callbacks_env(pbx, fresh_pg_dsn, redis_url, redis_prefix,
                            {"CALLSERVER_CALLBACKS_QUEUES": "callback-team"})  # fmt: skip
        async with server(env, (user,)) as srv:
            await wait_for(lambda: srv.ami.state == "connected", 20.0)
            busy = await user.port.dial(operator="PJSIP/op101", phone="+79990000005",
                                        caller_id="", context={"label": "Анна"}, timeout=20.0)
            answered = await user.port.dial(operator="PJSIP/op101", phone="+79990000004",
                                            caller_id="", context={}, timeout=20.0)
            nobody = await user.port.dial(operator="PJSIP/op102", phone="+79990000004",
                                          caller_id="", context={}, timeout=8.0)
    assert busy["result"] == "busy" and answered["result"] == "answered"
    assert nobody["result"] == "operator_no_answer"
    got = await rows(fresh_pg_dsn, "SELECT id, job_id, result, state FROM callback_attempts "
                     "ORDER BY started_at")  # fmt: skip
    assert [(r["id"], r["job_id"], r["result"], r["state"]) for r in got] == [
        (busy["attempt_id"], None, "busy", "done"),
        (answered["attempt_id"], None, "answered", "done"),
        (nobody["attempt_id"], None, "operator_no_answer", "done"),
    ]
