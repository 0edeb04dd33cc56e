"""The overload webhook over a real socket: delivered JSON, a slow receiver cut off at the
deadline, a refusing receiver counted as failed; the board never waits for any of it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from dashboards.overload import Transition
from dashboards.webhook import OverloadWebhook


class Receiver:
    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.delay = 0.0
        self.status = 200

    async def handle(self, request: web.Request) -> web.Response:
        self.bodies.append(await request.json())
        await asyncio.sleep(self.delay)
        return web.Response(status=self.status)


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    r = Receiver()
    app = web.Application()
    app.router.add_post("/ads", r.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield r, f"http://127.0.0.1:{server.port}/ads"
    finally:
        await server.close()


def transition(state: str) -> Transition:
    return Transition("reception", state, 1000.0, 150.0, 0.25, 820.0)  # type: ignore[arg-type]


async def settle(hook: OverloadWebhook, total: int, within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while hook.sent + hook.failed < total:
        assert time.monotonic() < deadline, "webhook never finished"
        await asyncio.sleep(0.01)


async def test_transitions_are_posted_in_order(receiver: tuple[Receiver, str]) -> None:
    r, url = receiver
    hook = OverloadWebhook(url, timeout=2.0)
    await hook.start()
    try:
        hook.submit(transition("overloaded"))
        hook.submit(transition("normal"))
        await settle(hook, 2)
    finally:
        await hook.aclose()
    assert (hook.sent, hook.failed) == (2, 0)
    assert [b["event"] for b in r.bodies] == ["overload", "normal"]
    assert r.bodies[0] == {"event": "overload", "message": "reduce advertising",
                           "queue": "reception", "at": 1000.0, "since": 820.0,
                           "estimated_wait": 150.0, "abandon_rate": 0.25}  # fmt: skip


async def test_slow_and_refusing_receivers_fail_within_the_deadline(
    receiver: tuple[Receiver, str],
) -> None:
    r, url = receiver
    hook = OverloadWebhook(url, timeout=0.3)
    await hook.start()
    try:
        r.delay = 1.0
        started = time.monotonic()
        submitted = time.perf_counter()
        hook.submit(transition("overloaded"))
        assert time.perf_counter() - submitted < 0.01  # submit never waits for the network
        await settle(hook, 1)
        assert time.monotonic() - started < 1.5
        r.delay, r.status = 0.0, 500
        hook.submit(transition("normal"))
        await settle(hook, 2)
    finally:
        await hook.aclose()
    assert (hook.sent, hook.failed) == (0, 2)


async def test_no_url_means_board_alarm_only() -> None:
    hook = OverloadWebhook("", timeout=1.0)
    await hook.start()
    hook.submit(transition("overloaded"))
    await hook.aclose()
    assert (hook.sent, hook.failed) == (0, 0)
