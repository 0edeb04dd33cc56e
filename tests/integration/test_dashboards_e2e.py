"""The dashboards inside a whole callserver (every installed plugin) against pbxsim over real
sockets: the board API and WebSocket agree with the call PostgreSQL recorded, the Prometheus
families appear, and the roles are enforced."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
from aiohttp import web

from callserver.app import CallServer
from callserver.config import load_config
from callserver.plugin_api import Contribution, PluginDeps
from callserver.plugins import LoadedPlugin, load_plugins, order
from callserver.web.auth import Principal
from devtools.services import free_port
from tests.integration.test_end_to_end import fetch_call, server_config, wait_for
from tests.pbxsim_proc import run_pbxsim

AUTH = {"Authorization": "Bearer e2e-token"}


class RolePlugin:
    """Test-only authenticator: ``X-Test-Role: marketer`` → a user with that one role."""

    name = "test_roles"
    config_type: type[Any] | None = None
    migrations: Path | None = None
    requires: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()
    provides: tuple[str, ...] = ()

    def validate(self, config: None) -> None:
        return None

    def build(self, config: None, deps: PluginDeps) -> Contribution:
        async def check(request: web.Request) -> Principal | None:
            role = request.headers.get("X-Test-Role")
            return Principal("user", f"test-{role}", frozenset({role})) if role else None

        return Contribution(authenticators=[check])


@contextlib.asynccontextmanager
async def server(scenario: str, dsn: str, redis_url: str, prefix: str
                 ) -> AsyncIterator[tuple[CallServer, str]]:  # fmt: skip
    async with run_pbxsim(scenario, speed=4.0, agi_port=free_port()) as pbx:
        base = server_config(pbx, dsn, redis_url, prefix)
        # the marketer report reads the rollup: roll up every half second here
        config = load_config(None, env={**base.env, "CALLSERVER_DASHBOARDS_ROLLUP_INTERVAL": "0.5"})
        plugins = [*load_plugins(config), LoadedPlugin(RolePlugin(), None)]
        srv = await CallServer.create(config, order(plugins))
        await srv.start()
        try:
            yield srv, f"http://127.0.0.1:{config.http.port}"
        finally:
            await srv.aclose()


async def board_json(http: aiohttp.ClientSession, base: str) -> dict[str, Any]:
    async with http.get(f"{base}/api/dashboards/board", headers=AUTH) as resp:
        assert resp.status == 200
        data: dict[str, Any] = await resp.json()
        return data


def reception(board: dict[str, Any]) -> dict[str, Any] | None:
    return next((q for q in board["queues"] if q["name"] == "reception"), None)


async def test_board_agrees_with_the_recorded_call(
    fresh_pg_dsn: str, redis_url: str, redis_prefix: str
) -> None:
    async with server("single-answered", fresh_pg_dsn, redis_url, redis_prefix) as (_, base), \
            aiohttp.ClientSession() as http:  # fmt: skip
        row: asyncpg.Record = await wait_for(lambda: fetch_call(fresh_pg_dsn, "ended"))

        async def ended_on_board() -> dict[str, Any] | None:
            q = reception(await board_json(http, base))
            return q if q and q["today"]["aht"] is not None else None

        q = await wait_for(ended_on_board)
        wait, talk = row["wait_seconds"], row["talk_seconds"]
        assert q["today"]["offered"] == q["today"]["answered"] == 1
        assert q["today"]["asa"] == pytest.approx(wait, abs=1e-3)
        assert q["today"]["aht"] == pytest.approx(talk, abs=1e-3)
        assert q["today"]["service_level"] == (1.0 if wait <= 20 else 0.0)
        ops = {o["interface"]: o for o in (await board_json(http, base))["operators"]}
        assert ops["PJSIP/op101"]["calls_today"] == 1

        async with http.get(f"{base}/metrics") as resp:
            text = await resp.text()
        assert 'callserver_dashboards_queue_offered_today{queue="reception"} 1.0' in text
        assert 'callserver_dashboards_operators{state="offline"}' in text

        async def rolled_up() -> dict[str, Any] | None:
            async with http.get(f"{base}/api/dashboards/reports/marketer", headers=AUTH) as resp:
                report: dict[str, Any] = await resp.json()
            return report if report["total"]["calls"] else None

        report = await wait_for(rolled_up)
        assert (report["total"]["calls"], report["total"]["answered"]) == (1, 1)
        assert [r["key"] for r in report["rows"]] == ["source-a"]


async def test_board_websocket_needs_a_fresh_ticket_and_pushes_the_board(
    fresh_pg_dsn: str, redis_url: str, redis_prefix: str
) -> None:
    async with server("single-answered", fresh_pg_dsn, redis_url, redis_prefix) as (_, base), \
            aiohttp.ClientSession() as http:  # fmt: skip
        async with http.post(f"{base}/api/dashboards/ticket", headers=AUTH) as resp:
            ticket = (await resp.json())["ticket"]
        ws_url = base.replace("http", "ws") + "/ws/board"
        async with http.ws_connect(f"{ws_url}?ticket={ticket}") as ws:
            first = json.loads((await ws.receive(timeout=5)).data)
            second = json.loads((await ws.receive(timeout=5)).data)
            assert {"queues", "operators", "missed", "alarms", "waiting"} <= set(first)
            assert second["generated_at"] > first["generated_at"]
        for bad in (f"?ticket={ticket}", "", "?ticket=forged"):
            with pytest.raises(aiohttp.WSServerHandshakeError) as err:
                await http.ws_connect(f"{ws_url}{bad}")
            assert err.value.status == 403
        async with http.ws_connect(ws_url, headers={"X-Test-Role": "supervisor"}) as ws:
            assert "queues" in json.loads((await ws.receive(timeout=5)).data)


async def test_roles(fresh_pg_dsn: str, redis_url: str, redis_prefix: str) -> None:
    async with server("single-answered", fresh_pg_dsn, redis_url, redis_prefix) as (_, base), \
            aiohttp.ClientSession() as http:  # fmt: skip
        async def status(path: str, role: str) -> int:
            async with http.get(base + path, headers={"X-Test-Role": role}) as resp:
                return resp.status

        await wait_for(lambda: fetch_call(fresh_pg_dsn, "ended"))  # the schema is there

        assert await status("/api/dashboards/board", "operator") == 403
        assert await status("/api/dashboards/board", "supervisor") == 200
        assert await status("/api/dashboards/reports/marketer", "marketer") == 200
        assert await status("/api/dashboards/reports/operators", "marketer") == 403
        assert await status("/api/dashboards/staffing", "marketer") == 403
        assert await status("/api/dashboards/staffing", "admin") == 200
        async with http.post(f"{base}/api/dashboards/ticket",
                             headers={"X-Test-Role": "marketer"}) as resp:  # fmt: skip
            assert resp.status == 403
        spy = f"{base}/api/dashboards/spy"
        for body, code, error in (
            ({"agent": "PJSIP/op101", "mode": "listen", "supervisor": "PJSIP/sup1"}, 409,
             "dashboards-operator-not-in-call"),  # the call is over
            ({"agent": "PJSIP/op999", "mode": "listen", "supervisor": "PJSIP/sup1"}, 404,
             "dashboards-unknown-operator"),
            ({"agent": "PJSIP/op101", "mode": "record", "supervisor": "PJSIP/sup1"}, 400,
             "dashboards-invalid"),
            ({"agent": "PJSIP/op101", "mode": "listen"}, 400, "dashboards-invalid"),  # no phone
        ):  # fmt: skip
            async with http.post(spy, json=body, headers=AUTH) as resp:
                assert (resp.status, (await resp.json())["error_id"]) == (code, error)
        async with http.post(spy, json={}, headers={"X-Test-Role": "marketer"}) as resp:
            assert resp.status == 403
        async with http.get(f"{spy}/audit", headers=AUTH) as resp:
            assert (resp.status, (await resp.json())["audit"]) == (200, [])
        async with http.get(f"{base}/board") as resp:  # the page itself is public
            assert resp.status == 200 and "board.js" in await resp.text()
