"""A whole callserver (every plugin, the desk included) against pbxsim, with real PostgreSQL and
Redis, for the desk's integration and browser tests: demo CRM seeded, operators created through
the admin API, calls started with AMI Originate when the test is ready."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
import asyncpg

from callserver.app import CallServer
from callserver.config import load_config
from callserver.plugins import LoadedPlugin, load_plugins, order
from crm_bridge.demo_seed import seed_demo
from devtools.services import free_port
from tests.pbxsim_proc import Pbx, run_pbxsim

TOKEN = "desk-e2e-token"
PASSWORD = "secret-pass-1"
OPERATORS = (
    {"login": "anna", "name": "Анна Смирнова", "extension": "PJSIP/op101"},
    {"login": "boris", "name": "Борис Петров", "extension": "PJSIP/op102"},
)


@dataclass
class DeskStack:
    server: CallServer
    pbx: Pbx
    base: str
    users: dict[str, dict[str, Any]]

    async def ring_lab_call(self, *, wait_s: float = 8.0, recording: str = "") -> None:
        """pbxsim's ``Local/300@lab-local``: caller 79161234567 (the CRM's "Лаб Пациент") via
        DID 74951234567 → FastAGI route → queue reception (op101 rings 3 s, answers); the call
        ends ``wait_s`` after the Local channel answered. pbxsim's shortcut for this target
        skips ``[from-trunk]``, so the DID and ad source are set as variables (VarSet on AMI, as
        that context does); ``recording`` is set as MIXMONITOR_FILENAME (what MixMonitor does
        on a real Asterisk)."""
        variables = ["__DID=74951234567", "__AD_SOURCE=source-a"]
        if recording:
            variables.append(f"MIXMONITOR_FILENAME={recording}")
        headers: dict[str, Any] = {"Channel": "Local/300@lab-local", "Application": "Wait",
                                   "Data": str(wait_s), "Async": "true", "Variable": variables}
        reply = await self.server.ami.originate(headers, timeout=5.0)
        assert reply.get("Response") == "Success", reply


def _config(pbx: Pbx, dsn: str, redis_url: str, prefix: str, env: Mapping[str, str]) -> Any:
    return load_config(None, env={
        "CALLSERVER_AMI_PORT": str(pbx.ami_port), "CALLSERVER_AMI_SECRET": "callserver",
        "CALLSERVER_ARI_URL": f"http://127.0.0.1:{pbx.ari_port}/ari",
        "CALLSERVER_ARI_PASSWORD": "callserver", "CALLSERVER_AGI_PORT": str(pbx.agi_port),
        "CALLSERVER_DATABASE_DSN": dsn, "CALLSERVER_DATABASE_FLUSH_INTERVAL": "0.05",
        "CALLSERVER_REDIS_URL": redis_url, "CALLSERVER_REDIS_PREFIX": prefix,
        "CALLSERVER_HTTP_PORT": str(free_port()), "CALLSERVER_HTTP_API_TOKEN": TOKEN,
        "CALLSERVER_CRM_OUTBOX_POLL_INTERVAL": "0.1",
        "CALLSERVER_DESK_BOOTSTRAP_ADMIN": "admin:" + PASSWORD, **env,
    })  # fmt: skip


async def wait_for(check: Callable[[], Any], within: float = 20.0) -> Any:
    deadline = time.monotonic() + within
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


async def _create_users(base: str) -> dict[str, dict[str, Any]]:
    users = {}
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {TOKEN}"}) as http:
        async def ready() -> bool:
            async with http.get(f"{base}/api/desk/users") as resp:
                return resp.status == 200 and bool((await resp.json())["users"])

        await wait_for(ready)
        for op in OPERATORS:
            body = {**op, "roles": ["operator"], "queues": ["reception"], "password": PASSWORD}
            async with http.post(f"{base}/api/desk/users", json=body) as resp:
                assert resp.status == 201, await resp.text()
                users[op["login"]] = await resp.json()
    return users


@contextlib.asynccontextmanager
async def desk_stack(
    scenario: str, dsn: str, redis_url: str, prefix: str, *, env: Mapping[str, str] = {},
    extra_plugins: tuple[Any, ...] = (),
) -> AsyncIterator[DeskStack]:  # fmt: skip
    async with run_pbxsim(scenario, speed=1.0, agi_port=free_port()) as pbx:
        config = _config(pbx, dsn, redis_url, prefix, env)
        loaded = [*load_plugins(config), *(LoadedPlugin(p, None) for p in extra_plugins)]
        server = await CallServer.create(config, order(loaded))
        await server.start()
        try:
            base = f"http://127.0.0.1:{config.http.port}"
            users = await _create_users(base)
            conn = await asyncpg.connect(dsn)
            try:
                await seed_demo(conn)
            finally:
                await conn.close()
            await wait_for(lambda: server.ami.state == "connected")
            yield DeskStack(server, pbx, base, users)
        finally:
            await server.aclose()


async def login(base: str, login: str) -> tuple[aiohttp.ClientSession, str]:
    """An HTTP client logged in as ``login`` (cookie jar) and its CSRF token."""
    http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    async with http.post(f"{base}/api/desk/login",
                         json={"login": login, "password": PASSWORD}) as resp:  # fmt: skip
        assert resp.status == 200, await resp.text()
        return http, (await resp.json())["csrf"]
