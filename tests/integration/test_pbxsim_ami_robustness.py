"""pbxsim's AMI server against bad clients (real sockets, a plain test-local reader)."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator

import pytest

from pbxsim import ami_server
from pbxsim.app import Pbx, PbxOptions
from pbxsim.scenario import load

pytestmark = pytest.mark.integration


@pytest.fixture
async def pbx() -> AsyncIterator[Pbx]:
    sc = dataclasses.replace(load("single-answered"), calls=())
    p = Pbx(sc, PbxOptions(ami_port=0, agi_port=1, speed=50.0))
    await p.start()
    yield p
    await p.aclose()


async def _responses(reader: asyncio.StreamReader, n: int) -> list[dict[str, str]]:
    out: list[dict[str, str]] = []
    buf = b""
    async with asyncio.timeout(5.0):
        while len(out) < n:
            while b"\r\n\r\n" not in buf:
                chunk = await reader.read(65536)
                assert chunk, "connection closed"
                buf += chunk
            raw, buf = buf.split(b"\r\n\r\n", 1)
            msg = dict(line.split(": ", 1) for line in raw.decode().split("\r\n") if ": " in line)
            if "Response" in msg:
                out.append(msg)
    return out


async def test_actions_before_login_and_without_action_get_asterisk_22_errors(pbx: Pbx) -> None:
    """Bug: pbxsim answered ``Authentication Required`` (Asterisk 1.4); manager.c of
    Asterisk 22 answers ``Permission denied``, and ``Missing action in request`` to a
    message without an Action header."""
    reader, writer = await asyncio.open_connection("127.0.0.1", pbx.ami_port)
    try:
        await reader.readline()
        writer.write(b"Action: Ping\r\nActionID: 1\r\n\r\nActionID: 2\r\nFoo: bar\r\n\r\n")
        ping, empty = await _responses(reader, 2)
        assert (ping["Response"], ping["Message"], ping["ActionID"]) == (
            "Error",
            "Permission denied",
            "1",
        )
        assert (empty["Response"], empty["Message"]) == ("Error", "Missing action in request")
        writer.write(b"Action: Login\r\nUsername: callserver\r\nSecret: callserver\r\n\r\n")
        writer.write(b"ActionID: 3\r\n\r\n")
        login, empty = await _responses(reader, 2)
        assert login["Response"] == "Success"
        assert (empty["Message"], empty["ActionID"]) == ("Missing action in request", "3")
    finally:
        writer.close()


async def test_a_client_that_never_reads_its_responses_is_dropped(
    pbx: Pbx, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Bug: responses were buffered without limit for a client that sends actions but never
    reads, and the Logoff drain had no deadline, so the session task hung forever."""
    monkeypatch.setattr(ami_server, "WRITE_TIMEOUT_S", 1.0, raising=False)
    reader, writer = await asyncio.open_connection("127.0.0.1", pbx.ami_port)
    try:
        await reader.readline()
        writer.write(b"Action: Login\r\nUsername: callserver\r\nSecret: callserver\r\n\r\n")
        writer.write(b"Action: CoreSettings\r\n\r\n" * 60000 + b"Action: Logoff\r\n\r\n")
        await writer.drain()
        async with asyncio.timeout(20.0):
            # polled: reading from the client would let the server drain, and no event
            # tells the test that the server dropped the session
            while pbx.server.sessions:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
    finally:
        writer.transport.abort()


async def test_a_client_that_never_logs_in_is_dropped_after_the_auth_timeout(
    pbx: Pbx, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Bug: AUTH_TIMEOUT_S applied per read, so a client sending an action before each
    timeout stayed unauthenticated forever (Asterisk's authtimeout counts from connect)."""
    monkeypatch.setattr(ami_server, "AUTH_TIMEOUT_S", 1.0)
    reader, writer = await asyncio.open_connection("127.0.0.1", pbx.ami_port)
    try:
        await reader.readline()
        async with asyncio.timeout(5.0):
            while True:
                writer.write(b"Action: Ping\r\n\r\n")
                try:
                    data = await asyncio.wait_for(reader.read(65536), 0.3)
                except TimeoutError:
                    continue
                if not data:
                    break
                await asyncio.sleep(0.2)
    finally:
        writer.close()
