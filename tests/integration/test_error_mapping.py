"""One error mapping for every domain: status from the error's category, one body shape,
no library or database text in answers ≥ 500 or from errors that may carry it."""

from __future__ import annotations

import importlib
import pkgutil
import re

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

import callbacks
import callserver
import crm_bridge
import dashboards
import routing
from callserver.errors import CallserverError, ErrorCategory
from callserver.metrics import Metrics
from callserver.web.app import build_web_app
from callserver.web.auth import token_authenticator
from callserver.web.live import LIVE_WS_PATH, LiveHub, live_routes
from callserver.web.middlewares import STATUS_BY_CATEGORY

LEAK = "relation calls_pkey violated at 10.0.0.5 SECRETTEXT"


def _all_error_classes() -> list[type[CallserverError]]:
    for package in (callserver, routing, crm_bridge, callbacks, dashboards):
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            if not info.name.endswith("__main__"):
                importlib.import_module(info.name)
    seen: list[type[CallserverError]] = []
    todo: list[type[CallserverError]] = [CallserverError]
    while todo:
        cls = todo.pop()
        seen.append(cls)
        todo.extend(cls.__subclasses__())
    return sorted({c for c in seen if not c.__module__.startswith("tests")},
                  key=lambda c: f"{c.__module__}.{c.__qualname__}")  # fmt: skip


ERRORS = _all_error_classes()


def test_every_domain_declares_categories_for_its_errors() -> None:
    names = {c.__module__.split(".")[0] for c in ERRORS}
    assert {"callserver", "routing", "crm_bridge"} <= names
    assert all(isinstance(c.category, ErrorCategory) for c in ERRORS)


@pytest.mark.parametrize("cls", ERRORS, ids=lambda c: f"{c.__module__}.{c.__name__}")
async def test_error_answers_with_its_category_status_and_the_one_body_shape(
    cls: type[CallserverError],
) -> None:
    async def raising(request: web.Request) -> web.Response:
        raise cls(message=f"failed: {LEAK}", field="note")

    app = build_web_app(
        authenticators=[token_authenticator("t")], health_checks={}, metrics=Metrics(),
        routes=[web.get("/api/raise", raising)],
    )  # fmt: skip
    async with TestClient(TestServer(app)) as client:
        resp = await client.get("/api/raise", headers={"Authorization": "Bearer t"})
        body = await resp.json()
    assert resp.status == STATUS_BY_CATEGORY[cls.category]
    assert set(body) == {"error_id", "message", "details"}
    assert body["error_id"] == cls.error_id
    if resp.status >= 500 or cls.public_message is not None:
        assert "SECRETTEXT" not in str(body)
        assert re.fullmatch(r"[0-9a-f]{12}", body["details"]["incident"])
    else:
        assert body["details"] == {"field": "note"}


async def test_an_unknown_exception_is_a_500_with_an_incident_id_that_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def crash(request: web.Request) -> web.Response:
        raise RuntimeError(LEAK)

    app = build_web_app(authenticators=[token_authenticator("t")], health_checks={},
                        metrics=Metrics(), routes=[web.get("/api/crash", crash)])  # fmt: skip
    async with TestClient(TestServer(app)) as client:
        resp = await client.get("/api/crash", headers={"Authorization": "Bearer t"})
        body = await resp.json()
    assert resp.status == 500 and body["error_id"] == "internal-error"
    assert "SECRETTEXT" not in str(body)
    assert body["details"]["incident"] in caplog.text


async def test_a_query_string_token_opens_the_live_websocket_only() -> None:
    """Issue 9, defect 4: ``?token=`` with an Upgrade header returned patient data; a token in
    a URL (proxy and browser logs) may open the live WebSocket only."""

    async def patients(request: web.Request) -> web.Response:
        return web.json_response({"patients": ["secret"]})

    app = build_web_app(
        authenticators=[token_authenticator("t")], health_checks={}, metrics=Metrics(),
        routes=[web.get("/api/crm/patients", patients), *live_routes(LiveHub(), dict, "t")],
        public_paths=[LIVE_WS_PATH],
    )
    async with TestClient(TestServer(app)) as client:
        resp = await client.get("/api/crm/patients?token=t", headers={"Upgrade": "websocket"})
        assert resp.status == 401
        assert "secret" not in await resp.text()
        ws = await client.ws_connect("/ws/live?token=t")
        await ws.close()
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await client.ws_connect("/ws/live?token=t", headers={"Origin": "http://evil.example"})
        assert refused.value.status == 403
        with pytest.raises(aiohttp.WSServerHandshakeError) as no_token:
            await client.ws_connect("/ws/live?token=wrong")
        assert no_token.value.status == 401
