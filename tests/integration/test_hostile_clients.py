"""Slow and half-open peers on every listener are timed out and counted, and never accumulate:
HTTP clients dribbling headers or a body (slowloris) or sending nothing, a live WebSocket client
that never reads, FastAGI peers that connect and say nothing or half an environment, and on the
client side an "Asterisk" that accepts AMI and says nothing, half a frame, or stops answering.
Each test asserts the open connections / sessions return to their baseline."""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import pytest

import callserver.app
from callserver.app import CallServer
from callserver.asterisk.ami_connection import AmiClient
from callserver.config import AmiConfig, load_config
from devtools.services import free_port

TOKEN = "hostile-token"
PEERS = 20


async def wait_until(check: Callable[[], bool], within: float, what: str) -> float:
    """Seconds until ``check()`` held; fails naming ``what`` after ``within`` s."""
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < within, f"not within {within} s: {what}"
        await asyncio.sleep(0.05)
    return time.monotonic() - started


@pytest.fixture
async def server(fresh_pg_dsn: str, redis_url: str, redis_prefix: str,
                 monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[CallServer]:  # fmt: skip
    monkeypatch.setattr(callserver.app, "HTTP_KEEPALIVE_TIMEOUT", 1.0)
    config = load_config(None, env={
        "CALLSERVER_AMI_ENABLED": "false", "CALLSERVER_ARI_ENABLED": "false",
        "CALLSERVER_AGI_PORT": str(free_port()), "CALLSERVER_AGI_COMMAND_TIMEOUT": "0.5",
        "CALLSERVER_AGI_SESSION_TIMEOUT": "2",
        "CALLSERVER_DATABASE_DSN": fresh_pg_dsn, "CALLSERVER_REDIS_URL": redis_url,
        "CALLSERVER_REDIS_PREFIX": redis_prefix, "CALLSERVER_HTTP_PORT": str(free_port()),
        "CALLSERVER_HTTP_API_TOKEN": TOKEN,
    })  # fmt: skip
    srv = await CallServer.create(config)
    srv.http_deadline.timeout = 1.0
    await srv.start()
    try:
        await asyncio.wait_for(srv.database.ready.wait(), 30)
        await _settled()  # the plugins' after-database components have started their tasks
        yield srv
    finally:
        await srv.aclose()


async def _settled() -> None:
    """Wait (at most 10 s) until the number of tasks stayed the same for 0.5 s."""
    async with asyncio.timeout(10):
        count, same = -1, 0
        while same < 5:
            now = len(asyncio.all_tasks())
            same, count = (same + 1, count) if now == count else (0, now)
            await asyncio.sleep(0.1)


async def _open(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port)


async def _closed_by_peer(reader: asyncio.StreamReader, within: float) -> bytes:
    """Everything the peer sent until it closed; fails if it stays open ``within`` s."""
    data = b""
    async with asyncio.timeout(within):
        try:
            while chunk := await reader.read(65536):
                data += chunk
        except ConnectionResetError:  # closed with our unread bytes in its buffer: a reset
            pass
    return data


async def _dribble(writer: asyncio.StreamWriter, data: bytes, stop: asyncio.Event) -> None:
    for byte in data:
        if stop.is_set() or writer.is_closing():
            return
        try:
            writer.write(bytes([byte]))
            await writer.drain()
        except ConnectionError:
            return
        await asyncio.sleep(0.1)


async def test_slow_headers_idle_connects_and_slow_bodies_are_cut_and_counted(
    server: CallServer,
) -> None:
    port = server.config.http.port
    baseline = server.http_connections
    stop = asyncio.Event()
    head = b"GET /api/calls HTTP/1.1\r\nHost: x\r\n" + b"X-Slow: " + b"a" * 400 + b"\r\n\r\n"
    body = b'{"scope": "all", "mode": "queue", "minutes": 5}'
    slow_body = (f"POST /api/routing/overrides HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
                 f"{TOKEN}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}"
                 f"\r\n\r\n").encode()  # fmt: skip
    peers = [await _open(port) for _ in range(3 * PEERS)]
    dribblers = []
    for i, (_, writer) in enumerate(peers):
        if i < PEERS:  # headers one byte per 0.1 s
            dribblers.append(asyncio.create_task(_dribble(writer, head, stop)))
        elif i < 2 * PEERS:  # head complete, body one byte per 0.1 s
            writer.write(slow_body)
            dribblers.append(asyncio.create_task(_dribble(writer, body, stop)))
        # the rest connect and send nothing
    await wait_until(lambda: server.http_connections >= baseline + 3 * PEERS, 5, "all connected")
    t0 = time.monotonic()
    answers = await asyncio.gather(*(_closed_by_peer(r, within=5.0) for r, _ in peers))
    # keep-alive 1 s cuts slow heads and idle connects; deadline 1 s + lingering 1 s slow bodies
    assert time.monotonic() - t0 < 3.0
    stop.set()
    await asyncio.gather(*dribblers)
    for _, writer in peers:
        writer.close()
    assert all(a == b"" for a in answers[:PEERS]), "slow headers got an answer: none expected"
    assert all(a.startswith(b"HTTP/1.1 408") and b'"request-timeout"' in a
               for a in answers[PEERS:2 * PEERS])  # fmt: skip
    assert all(a == b"" for a in answers[2 * PEERS:])
    assert server.http_deadline.client_timeouts == PEERS
    await wait_until(lambda: server.http_connections == baseline, 3, "connections back")


class BigEvent:
    """Stands in for a domain event: the hub only calls ``to_json``."""

    def __init__(self, size: int) -> None:
        self.text = '{"type": "Noise", "pad": "' + "x" * size + '"}'

    def to_json(self) -> str:
        return self.text


async def _ws_handshake(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # fills fast: it never reads
    sock.connect(("127.0.0.1", port))
    sock.setblocking(False)
    reader, writer = await asyncio.open_connection(sock=sock)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write((f"GET /ws/live?token={TOKEN} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket"
                  f"\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                  f"Sec-WebSocket-Version: 13\r\n\r\n").encode())  # fmt: skip
    status = await reader.readuntil(b"\r\n\r\n")
    assert status.startswith(b"HTTP/1.1 101"), status
    return reader, writer


async def test_a_live_websocket_client_that_never_reads_is_dropped_and_counted(
    server: CallServer,
) -> None:
    baseline = server.http_connections
    tasks_before = len(asyncio.all_tasks())
    peers = [await _ws_handshake(server.config.http.port) for _ in range(5)]
    await wait_until(lambda: server.hub.clients == 5, 5, "5 WebSocket clients")
    event = BigEvent(20_000)

    async def flood() -> None:
        while server.hub.clients:
            for _ in range(50):
                server.hub.publish(event)  # type: ignore[arg-type]
            await asyncio.sleep(0.01)

    async with asyncio.timeout(15):
        await flood()
    assert server.hub.dropped_clients == 5
    for _, writer in peers:
        writer.close()
    await wait_until(lambda: server.http_connections == baseline, 15, "connections back")
    await wait_until(lambda: len(asyncio.all_tasks()) <= tasks_before, 3, "handler tasks gone")


AGI_HALF = b"agi_network: yes\nagi_network_script: route\nagi_request: agi://x/route\nagi_ch"


async def test_fastagi_peers_saying_nothing_or_half_an_environment_are_timed_out(
    server: CallServer,
) -> None:
    port = server.agi.port
    errors_before = server.agi.errors
    tasks_before = len(asyncio.all_tasks())
    peers = [await _open(port) for _ in range(2 * PEERS)]
    for _, writer in peers[PEERS:]:
        writer.write(AGI_HALF)
    await wait_until(lambda: server.agi.sessions_active == 2 * PEERS, 5, "sessions started")
    started = time.monotonic()
    await asyncio.gather(*(_closed_by_peer(r, within=5.0) for r, _ in peers))
    assert time.monotonic() - started < 2.0  # command_timeout 0.5 s, not the session's 2 s
    for _, writer in peers:
        writer.close()
    await wait_until(lambda: server.agi.sessions_active == 0, 3, "sessions ended")
    assert server.agi.errors - errors_before == 2 * PEERS
    await wait_until(lambda: len(asyncio.all_tasks()) <= tasks_before, 3, "session tasks gone")


@dataclass
class FakeAsterisk:
    """An AMI port that misbehaves per ``behaviour``; counts connections open right now."""

    behaviour: str
    open_now: int = 0
    most_open: int = 0
    accepted: int = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        self.open_now += 1
        self.most_open = max(self.most_open, self.open_now)
        try:
            if self.behaviour in ("half_frame", "goes_silent"):
                writer.write(b"Asterisk Call Manager/9.0.0\r\n")
            if self.behaviour == "half_frame":
                writer.write(b"Response: Succ")
            if self.behaviour == "goes_silent":  # answers the login, then never a pong
                login = await reader.readuntil(b"\r\n\r\n")
                action_id = login.split(b"ActionID: ")[1].split(b"\r\n")[0]
                writer.write(b"Response: Success\r\nActionID: " + action_id +
                             b"\r\nMessage: Authentication accepted\r\n\r\n")  # fmt: skip
            while await reader.read(4096):  # swallow whatever the client sends
                pass
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self.open_now -= 1
            writer.close()


@pytest.mark.parametrize("behaviour", ["says_nothing", "half_frame", "goes_silent"])
async def test_an_ami_peer_that_says_nothing_or_half_or_stops_is_left_and_retried(
    behaviour: str,
) -> None:
    fake = FakeAsterisk(behaviour)
    listener = await asyncio.start_server(fake.handle, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    config = AmiConfig(port=port, secret="s", connect_timeout=0.3, action_timeout=0.2,
                       ping_interval=0.2, reconnect_min=0.05, reconnect_max=0.1)  # fmt: skip
    client = AmiClient(config, on_event=lambda _msg: None)
    await client.start()
    try:
        await wait_until(lambda: client.connect_attempts >= 4, 10, "four attempts")
        if behaviour == "goes_silent":
            assert client.reconnects >= 2  # it did log in, then gave the silent peer up
        else:
            assert client.state != "connected" and client.reconnects == 0
        assert fake.most_open == 1  # every abandoned connection was closed before the next
    finally:
        await client.aclose()
    await wait_until(lambda: fake.open_now == 0, 3, "the last connection closed")
    listener.close()
    await listener.wait_closed()
