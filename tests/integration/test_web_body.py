"""``callserver.web.body`` over a real socket: a body arriving in pieces is read whole (the
first piece alone used to be parsed: a valid slow body was a 400), and the limit holds whether
or not the client announces a length."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from callserver.metrics import Metrics
from callserver.web.app import build_web_app
from callserver.web.auth import token_authenticator
from callserver.web.body import json_object

LIMIT = 1024
AUTH = {"Authorization": "Bearer t", "Content-Type": "application/json"}


async def echo(request: web.Request) -> web.Response:
    return web.json_response(await json_object(request, max_bytes=LIMIT))


def _app() -> web.Application:
    return build_web_app(authenticators=[token_authenticator("t")], health_checks={},
                         metrics=Metrics(), routes=[web.post("/api/echo", echo)])  # fmt: skip


async def _pieces(data: bytes, size: int) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]
        await asyncio.sleep(0.02)  # each piece its own read on the server


async def test_a_body_arriving_in_pieces_is_read_whole() -> None:
    sent = {"note": "x" * 300, "minutes": 30, "scope": "all"}
    raw = json.dumps(sent).encode()
    async with TestClient(TestServer(_app())) as client:
        resp = await client.post("/api/echo", data=_pieces(raw, 40), headers=AUTH)
        assert resp.status == 200, await resp.text()
        assert await resp.json() == sent
        resp = await client.post("/api/echo", data=raw, headers=AUTH)  # in one piece
        assert await resp.json() == sent


async def test_the_limit_holds_with_or_without_a_length() -> None:
    raw = json.dumps({"note": "x" * LIMIT}).encode()
    async with TestClient(TestServer(_app())) as client:
        for data in (raw, _pieces(raw, 100)):  # Content-Length, then chunked without one
            resp = await client.post("/api/echo", data=data, headers=AUTH)
            answer = await resp.json()
            assert resp.status == 413, answer
            assert answer == {"error_id": "body-too-large",
                              "message": f"body larger than {LIMIT} bytes",
                              "details": {"field": "body", "max_bytes": LIMIT}}  # fmt: skip
        exact = b'{"n": "' + b"y" * (LIMIT - 9) + b'"}'
        assert len(exact) == LIMIT
        resp = await client.post("/api/echo", data=_pieces(exact, 100), headers=AUTH)
        assert resp.status == 200 and (await resp.json())["n"] == "y" * (LIMIT - 9)
