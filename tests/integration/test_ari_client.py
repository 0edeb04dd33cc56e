"""AriClient against tests/ari_fake.py over real sockets (REST replayed from the lab transcript)."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from yarl import URL

from callserver.asterisk.ari_client import AriClient
from callserver.asterisk.errors import AriConnectionError, AriError, AriHttpError, AriTimeout
from callserver.config import AriConfig
from tests.ari_fake import FakeAri, recorded_exchanges, stasis_frames

pytestmark = pytest.mark.integration

CHANNEL = "1795413228.13"
RTP_CHANNEL = "1795413229.14"
BRIDGE = "a2553343-2245-4df4-b1ba-1b8c1e8d12dd"


class Sink:
    """Collects events; ``wait(n)`` returns once ``n`` have arrived."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self._changed = asyncio.Event()

    async def __call__(self, event: dict[str, Any]) -> None:
        self.events.append(event)
        self._changed.set()

    async def wait(self, count: int) -> list[dict[str, Any]]:
        async with asyncio.timeout(5.0):
            while len(self.events) < count:
                self._changed.clear()
                await self._changed.wait()
        return self.events


@pytest.fixture
async def fake() -> AsyncIterator[FakeAri]:
    server = FakeAri()
    await server.start()
    yield server
    await server.aclose()


def make_config(fake: FakeAri, **overrides: Any) -> AriConfig:
    values: dict[str, Any] = {
        "url": fake.url,
        "username": "callserver",
        "password": "callserver",
        "app": "callserver",
        "request_timeout": 2.0,
        "reconnect_max": 0.2,
    }
    values.update(overrides)
    return AriConfig(**values)


ClientFactory = Callable[..., AriClient]


@pytest.fixture
async def make_client(fake: FakeAri) -> AsyncIterator[ClientFactory]:
    clients: list[AriClient] = []

    def build(on_event: Any = None, **overrides: Any) -> AriClient:
        client = AriClient(
            make_config(fake, **overrides), on_event=on_event or Sink(), reconnect_min=0.05
        )
        clients.append(client)
        return client

    yield build
    for client in clients:
        await client.aclose()


async def started(client: AriClient, fake: FakeAri, connections: int = 1) -> AriClient:
    await client.start()
    await client.wait_connected(5.0)
    await fake.wait_ws(connections)
    return client


async def test_connects_registers_app_and_delivers_stasis_events_in_order(
    fake: FakeAri, make_client: ClientFactory
) -> None:
    sink = Sink()
    client = await started(make_client(sink), fake)
    path, auth = fake.ws_requests[0]
    assert path == "/ari/events?app=callserver&subscribeAll=false"
    assert auth == "Basic Y2FsbHNlcnZlcjpjYWxsc2VydmVy"  # as in ari-rest-examples.txt
    assert client.connected
    app = await client.application("callserver")
    assert app["name"] == "callserver"
    sent = await fake.replay_stasis()
    events = await sink.wait(sent)
    assert sent == 39
    assert events == [json.loads(frame) for frame in stasis_frames()]
    starts = [e for e in events if e["type"] == "StasisStart"]
    ends = [e for e in events if e["type"] == "StasisEnd"]
    assert [e["channel"]["id"] for e in starts] == [CHANNEL, RTP_CHANNEL]
    assert [e["channel"]["id"] for e in ends] == [RTP_CHANNEL, CHANNEL]
    assert starts[0]["args"] == ["inbound", "74959990000"]
    assert events[0]["type"] == "StasisStart"
    assert events.index(ends[-1]) > events.index(starts[-1])
    assert client.events_received == 39
    assert client.bad_frames == 0


async def test_rest_session_replays_the_transcript_verbs_and_paths(
    fake: FakeAri, make_client: ClientFactory
) -> None:
    client = await started(make_client(), fake)
    info = await client.asterisk_info()
    assert info["system"]["version"] == "22.10.1"
    assert (await client.application("callserver"))["channel_ids"] == []
    channels = await client.channels()
    assert [c["id"] for c in channels] == [CHANNEL]
    assert channels[0]["caller"]["number"] == "79161234567"
    assert await client.get_variable(CHANNEL, "DID") == "74959990000"
    await client.answer(CHANNEL)
    playback = await client.play(CHANNEL, "sound:hello-world", "pb-hello", lang="en")
    assert (playback["id"], playback["state"]) == ("pb-hello", "playing")
    bridge = await client.create_bridge("mixing", name="lab-bridge")
    assert bridge["id"] == BRIDGE
    await client.add_channel(BRIDGE, CHANNEL)
    rtp = await client.external_media("callserver", "127.0.0.1:40000", "alaw")
    assert rtp["id"] == RTP_CHANNEL
    assert rtp["channelvars"]["UNICASTRTP_LOCAL_PORT"] == "10862"
    await client.add_channel(BRIDGE, RTP_CHANNEL)
    assert (await client.bridge(BRIDGE))["channels"] == [CHANNEL, RTP_CHANNEL]
    assert (await client.bridge_play(BRIDGE, "sound:tt-monkeys", "pb-bridge"))["state"] == "queued"
    await client.hangup(RTP_CHANNEL, reason=None)
    await client.hangup(CHANNEL)
    await client.destroy_bridge(BRIDGE)
    expected = [(rec.method, rec.target) for rec in recorded_exchanges()]
    assert len(expected) == 15
    assert fake.requests == expected


async def test_verbs_outside_the_transcript_send_ari_requests(
    fake: FakeAri, make_client: ClientFactory
) -> None:
    """The fake only knows the recorded exchanges, so these get its 404; the requests are what
    counts (paths and parameter names from the ARI reference)."""
    client = make_client()
    calls = [
        client.set_variable(CHANNEL, "ROUTE", "bot"),
        client.remove_channel(BRIDGE, CHANNEL),
        client.play(CHANNEL, "sound:beep"),
        client.create_bridge("mixing,dtmf_events", "b-1"),
        client.external_media("callserver", "127.0.0.1:40002", "slin16", channel_id="em-1"),
        client.originate("PJSIP/op101", caller_id="Clinic <100>", variables={"X": "1"}),
    ]
    for call in calls:
        with pytest.raises(AriHttpError) as info:
            await call
        assert info.value.status == 404
    assert fake.requests == [
        ("POST", f"/ari/channels/{CHANNEL}/variable?variable=ROUTE&value=bot"),
        ("POST", f"/ari/bridges/{BRIDGE}/removeChannel?channel={CHANNEL}"),
        ("POST", f"/ari/channels/{CHANNEL}/play?media=sound:beep"),
        ("POST", "/ari/bridges?type=mixing,dtmf_events&bridgeId=b-1"),
        (
            "POST",
            "/ari/channels/externalMedia?app=callserver&external_host=127.0.0.1:40002"
            "&format=slin16&encapsulation=rtp&transport=udp&direction=both&channelId=em-1",
        ),
        ("POST", "/ari/channels?endpoint=PJSIP/op101&app=callserver&callerId=Clinic+%3C100%3E"),
    ]
    assert json.loads(fake.bodies[-1]) == {"variables": {"X": "1"}}
    assert fake.bodies[0] == b""


async def test_answer_and_hang_up_then_the_channel_is_gone(
    fake: FakeAri, make_client: ClientFactory
) -> None:
    client = make_client()
    await client.answer(CHANNEL)
    await client.hangup(CHANNEL, reason="normal")
    assert fake.requests == [
        ("POST", f"/ari/channels/{CHANNEL}/answer"),
        ("DELETE", f"/ari/channels/{CHANNEL}?reason=normal"),
    ]
    with pytest.raises(AriHttpError) as info:
        await client.answer(CHANNEL)
    assert info.value.status == 404
    assert json.loads(info.value.body) == {"message": "Channel not found"}
    assert "404" in str(info.value)
    assert "Channel not found" in str(info.value)


async def test_unknown_bridge_is_an_http_error_404(make_client: ClientFactory) -> None:
    with pytest.raises(AriHttpError) as info:
        await make_client().destroy_bridge("no-such-bridge")
    assert info.value.details["status"] == 404
    assert info.value.details["method"] == "DELETE"
    assert info.value.details["path"] == "/ari/bridges/no-such-bridge"


async def test_slow_server_raises_timeout_within_the_deadline(
    fake: FakeAri, make_client: ClientFactory
) -> None:
    fake.delay = 3.0
    client = make_client(request_timeout=0.2)
    began = time.monotonic()
    with pytest.raises(AriTimeout) as info:
        await client.asterisk_info()
    assert time.monotonic() - began < 1.5
    assert info.value.details["timeout"] == 0.2
    fake.delay = 0.0
    assert (await client.asterisk_info())["system"]["version"] == "22.10.1"


async def test_cancelling_a_request_propagates_and_the_client_stays_usable(
    fake: FakeAri, make_client: ClientFactory
) -> None:
    fake.delay = 3.0
    client = make_client()
    task = asyncio.create_task(client.answer(CHANNEL))
    await fake.wait_for(lambda: bool(fake.requests))
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    fake.delay = 0.0
    await client.answer(CHANNEL)


async def test_connection_refused_is_an_ari_connection_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = AriConfig(url=f"http://127.0.0.1:{port}/ari", request_timeout=2.0)
    client = AriClient(config, on_event=Sink())
    try:
        with pytest.raises(AriConnectionError):
            await client.channels()
    finally:
        await client.aclose()


@pytest.mark.parametrize("abrupt", [False, True], ids=["close-frame", "tcp-cut"])
async def test_dropped_websocket_reconnects_and_keeps_delivering(
    fake: FakeAri, make_client: ClientFactory, abrupt: bool
) -> None:
    sink = Sink()
    client = await started(make_client(sink), fake)
    await fake.send({"type": "StasisStart", "channel": {"id": "a"}})
    await sink.wait(1)
    await fake.drop(abrupt=abrupt)
    await fake.wait_ws(2)
    await client.wait_connected(5.0)
    assert client.reconnects == 1
    assert fake.ws_requests[1][0] == "/ari/events?app=callserver&subscribeAll=false"
    await fake.send({"type": "StasisEnd", "channel": {"id": "a"}})
    events = await sink.wait(2)
    assert [e["type"] for e in events] == ["StasisStart", "StasisEnd"]


async def test_bad_frames_are_skipped_and_reading_goes_on(
    fake: FakeAri, make_client: ClientFactory
) -> None:
    sink = Sink()
    client = await started(make_client(sink), fake)
    await fake.send('{"type": "StasisStart", "chan')
    await fake.send("[1, 2, 3]")
    await fake.send(stasis_frames()[0])
    events = await sink.wait(1)
    assert events[0]["type"] == "StasisStart"
    assert client.bad_frames == 2
    assert client.events_received == 1
    assert client.connected
    assert client.reconnects == 0


async def test_failing_handler_is_logged_and_never_stops_the_reader(
    fake: FakeAri, make_client: ClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[str] = []
    done = asyncio.Event()

    def handler(event: dict[str, Any]) -> None:  # a plain (non-async) handler works too
        seen.append(event["type"])
        if len(seen) == 1:
            raise RuntimeError("handler bug")
        done.set()

    client = await started(make_client(handler), fake)
    await fake.send({"type": "StasisStart", "channel": {"id": "x\r\ninjected"}})
    await fake.send({"type": "StasisEnd", "channel": {"id": "x"}})
    async with asyncio.timeout(5):
        await done.wait()
    assert seen == ["StasisStart", "StasisEnd"]
    assert client.handler_errors == 1
    messages = [r.getMessage() for r in caplog.records if "on_event failed" in r.getMessage()]
    assert messages == ["ARI events: on_event failed for StasisStart (channel x\\r\\ninjected)"]


async def test_wrong_password_is_a_clear_401(fake: FakeAri, make_client: ClientFactory) -> None:
    client = make_client(password="wrong")
    with pytest.raises(AriHttpError) as info:
        await client.asterisk_info()
    assert info.value.status == 401
    assert "Authentication required" in str(info.value)
    assert "check ari.username / ari.password" in str(info.value)
    await client.start()
    with pytest.raises(AriTimeout, match="401"):
        await client.wait_connected(0.5)
    assert isinstance(client.last_error, AriHttpError)
    assert client.last_error.details["status"] == 401
    assert not client.connected
    assert fake.ws_connections == 0


async def test_events_retry_with_backoff_until_the_password_is_fixed(
    fake: FakeAri, make_client: ClientFactory
) -> None:
    fake.password = "rotated"
    client = make_client()
    await client.start()
    await asyncio.sleep(0.3)
    assert not client.connected
    fake.password = "callserver"
    await client.wait_connected(2.0)
    assert client.last_error is None
    assert client.reconnects == 0  # the first successful connect is not a reconnect


async def test_untrusted_ids_and_values_cannot_change_the_resource(
    fake: FakeAri, make_client: ClientFactory
) -> None:
    client = make_client()
    with pytest.raises(AriHttpError) as info:
        await client.answer("../bridges/x?y=1#z")
    assert info.value.details["status"] == 404
    assert fake.segments[-1] == ["ari", "channels", "../bridges/x?y=1#z", "answer"]
    with pytest.raises(AriHttpError):
        await client.get_variable(CHANNEL, "DID&value=1")
    _, target = fake.requests[-1]
    assert target == f"/ari/channels/{CHANNEL}/variable?variable=DID%26value%3D1"
    hostile = "+79161234567\r\nX: 1&value=2;#%"
    with pytest.raises(AriHttpError):
        await client.set_variable(CHANNEL, "CALLER", hostile)
    query = URL(fake.requests[-1][1]).query
    assert (query.getall("variable"), query.getall("value")) == (["CALLER"], [hostile])
    for bad in ("..", ".", ""):
        with pytest.raises(AriError, match="invalid ARI resource id"):
            await client.hangup(bad)
    assert len(fake.requests) == 3


async def test_aclose_stops_the_reader_and_closes_the_websocket(
    fake: FakeAri, make_client: ClientFactory
) -> None:
    client = await started(make_client(), fake)
    await client.aclose()
    assert not client.connected
    await fake.wait_for(lambda: fake.open_sockets == 0)
    await client.aclose()  # idempotent


async def test_events_upgrade_that_never_answers_times_out_and_retries() -> None:
    accepted = 0

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal accepted
        accepted += 1
        try:
            await reader.read()  # never answers; returns when the client gives up
        finally:
            writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    config = AriConfig(url=f"http://127.0.0.1:{port}/ari", request_timeout=0.1, reconnect_max=0.1)
    client = AriClient(config, on_event=Sink(), reconnect_min=0.05)
    try:
        await client.start()
        with pytest.raises(AriTimeout, match=r"no answer within 0\.1s"):
            await client.wait_connected(0.6)
        assert isinstance(client.last_error, AriTimeout)
        assert accepted >= 2
    finally:
        await client.aclose()
        server.close()
        await server.wait_closed()


async def test_a_peer_that_drops_every_session_at_once_gets_backoff(
    fake: FakeAri, make_client: ClientFactory
) -> None:
    fake.close_on_accept = True
    client = make_client()  # reconnect_min 0.05 s doubling to reconnect_max 0.2 s
    await client.start()
    await fake.wait_for(lambda: fake.ws_connections >= 1)
    await asyncio.sleep(0.6)
    # Without backoff: a connect every 0.05 s (~12); with it: 0.05, 0.1, 0.2, 0.2 … (~5).
    assert 2 <= fake.ws_connections <= 7
    assert fake.ws_connections - 2 <= client.reconnects <= fake.ws_connections - 1
