"""The HTTP layer over a real socket: auth, health, calls API, metrics, error mapping."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from callserver.errors import CallserverError, ErrorCategory
from callserver.metrics import Metrics
from callserver.web.app import build_web_app
from callserver.web.auth import token_authenticator
from callserver.web.calls import calls_routes
from callserver.web.health import ComponentHealth
from callserver.web.live import LIVE_WS_PATH

TOKEN = "s3cret-token"


class FakeCalls:
    def __init__(self) -> None:
        self.rows = [{"id": str(i), "caller": "+7916000000" + str(i)} for i in range(5)]
        self.limits: list[int] = []

    async def recent(self, limit: int) -> list[dict[str, Any]]:
        self.limits.append(limit)
        return self.rows[:limit]

    async def get(self, call_id: str) -> dict[str, Any] | None:
        return next((r for r in self.rows if r["id"] == call_id), None)


class WidgetNotFound(CallserverError):
    error_id = "widget-not-found"
    category = ErrorCategory.NOT_FOUND


@pytest.fixture
async def client() -> AsyncIterator[TestClient[web.Request, web.Application]]:
    async def ok() -> ComponentHealth:
        return ComponentHealth("ok")

    async def down() -> ComponentHealth:
        return ComponentHealth("down", "connection refused")

    async def boom(request: web.Request) -> web.Response:
        raise WidgetNotFound(message="no widget 7", widget=7)

    async def crash(request: web.Request) -> web.Response:
        raise RuntimeError("bug")

    async def echo(request: web.Request) -> web.Response:
        return web.json_response(await request.json())

    metrics = Metrics()
    metrics.counter("callserver_test_total", "test counter", lambda: 3)
    metrics.gauge("callserver_live_calls", "calls", lambda: {("queued",): 2}, labels=("state",))
    app = build_web_app(
        authenticators=[token_authenticator(TOKEN)],
        health_checks={"ami": ok, "database": down},
        metrics=metrics,
        routes=[
            *calls_routes(FakeCalls()),
            web.get("/api/boom", boom),
            web.get("/api/crash", crash),
            web.post("/api/echo", echo),
        ],
    )
    async with TestClient(TestServer(app)) as c:
        yield c


AUTH = {"Authorization": f"Bearer {TOKEN}"}


async def test_api_needs_the_bearer_token(client: TestClient[web.Request, web.Application]) -> None:
    assert (await client.get("/api/calls")).status == 401
    bad = await client.get("/api/calls", headers={"Authorization": "Bearer nope"})
    assert bad.status == 401
    assert (await bad.json())["error_id"] == "unauthorized"
    good = await client.get("/api/calls?limit=2", headers=AUTH)
    assert good.status == 200
    assert [c["id"] for c in (await good.json())["calls"]] == ["0", "1"]


async def test_health_reports_each_component(
    client: TestClient[web.Request, web.Application],
) -> None:
    resp = await client.get("/healthz")
    body = await resp.json()
    assert resp.status == 503
    assert body["components"]["ami"]["status"] == "ok"
    assert body["components"]["database"] == {"status": "down", "detail": "connection refused"}


@pytest.mark.parametrize("limit", ["0", "-1", "abc", "100000"])
async def test_bad_limit_is_a_clear_400(
    client: TestClient[web.Request, web.Application], limit: str
) -> None:
    resp = await client.get(f"/api/calls?limit={limit}", headers=AUTH)
    assert resp.status == 400
    assert (await resp.json())["error_id"] == "bad-limit"


async def test_unknown_call_is_404(client: TestClient[web.Request, web.Application]) -> None:
    resp = await client.get("/api/calls/nope", headers=AUTH)
    assert resp.status == 404


async def test_domain_errors_map_to_json(client: TestClient[web.Request, web.Application]) -> None:
    resp = await client.get("/api/boom", headers=AUTH)
    assert resp.status == 404
    assert await resp.json() == {
        "error_id": "widget-not-found",
        "message": "no widget 7",
        "details": {"widget": 7},
    }
    crash = await client.get("/api/crash", headers=AUTH)
    assert crash.status == 500
    assert (await crash.json())["error_id"] == "internal-error"


async def test_bad_json_is_400(client: TestClient[web.Request, web.Application]) -> None:
    resp = await client.post("/api/echo", data=b"{not json", headers=AUTH)
    assert resp.status == 400
    assert (await resp.json())["error_id"] == "bad-json"


async def test_metrics_are_public_prometheus_text(
    client: TestClient[web.Request, web.Application],
) -> None:
    resp = await client.get("/metrics")
    text = await resp.text()
    assert resp.status == 200
    assert "callserver_test_total 3.0" in text
    assert 'callserver_live_calls{state="queued"} 2.0' in text


async def test_storage_errors_do_not_leak_sql_to_the_client() -> None:
    from callserver.store.errors import StoreQueryError

    async def broken(request: web.Request) -> web.Response:
        raise StoreQueryError(message='relation "calls" violates constraint calls_pkey')

    app = build_web_app(authenticators=[token_authenticator(TOKEN)], health_checks={},
                        metrics=Metrics(), routes=[web.get("/api/broken", broken)])  # fmt: skip
    async with TestClient(TestServer(app)) as c:
        resp = await c.get("/api/broken", headers=AUTH)
        body = await resp.json()
    assert resp.status == 500
    assert body["error_id"] == "store-query-failed"
    assert "calls_pkey" not in str(body)


async def test_a_live_client_that_goes_away_is_forgotten_without_waiting_for_an_event() -> None:
    import asyncio

    from callserver.web.live import LiveHub, live_routes

    hub = LiveHub()
    app = build_web_app(authenticators=[token_authenticator(TOKEN)], health_checks={},
                        metrics=Metrics(), routes=live_routes(hub, dict, TOKEN),
                        public_paths=[LIVE_WS_PATH], on_shutdown=[hub.close])  # fmt: skip
    async with TestClient(TestServer(app)) as c:
        ws = await c.ws_connect(f"/ws/live?token={TOKEN}")
        for _ in range(100):
            if hub.clients == 1:
                break
            await asyncio.sleep(0.01)
        assert hub.clients == 1
        await ws.close()
        for _ in range(200):
            if hub.clients == 0:
                break
            await asyncio.sleep(0.01)
        assert hub.clients == 0
