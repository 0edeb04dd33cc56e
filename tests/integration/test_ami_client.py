"""AmiClient against a scripted AMI peer: a real asyncio server on 127.0.0.1 that replays the golden
transcripts' bytes (with our ActionIDs) and answers actions. The peer parses frames itself, on
purpose without our codec."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from types import TracebackType

import pytest

from callserver.asterisk.ami_codec import AmiMessage
from callserver.asterisk.ami_connection import AmiClient
from callserver.asterisk.ami_translate import AmiTranslator
from callserver.asterisk.errors import AmiActionError, AmiConnectionError, AmiTimeout
from callserver.asterisk.resync import resync
from callserver.config import AmiConfig
from callserver.core.bus import EventBus
from callserver.core.events import DomainEvent
from callserver.core.model import LiveModel
from tests import transcripts

BANNER = b"Asterisk Call Manager/11.0.0\r\n"
Script = Callable[[asyncio.StreamWriter, int], Awaitable[bool]]
ActionScript = Callable[[str, asyncio.StreamWriter, int], Awaitable[bool]]


def reply(name: str, action: str) -> tuple[bytes, bytes]:
    """The bytes Asterisk sent after the client's ``action`` in transcript ``name``, and the
    ActionID the transcript used for it."""
    segs = transcripts.segments(name)
    for i, seg in enumerate(segs):
        if not seg.from_asterisk and f"Action: {action}\r\n".encode() in seg.data:
            old_id = seg.data.split(b"ActionID: ", 1)[1].split(b"\r\n", 1)[0]
            return segs[i + 1].data, old_id
    raise LookupError(f"{action} not in {name}")


def with_id(name: str, action: str, action_id: str) -> bytes:
    data, old = reply(name, action)
    return data.replace(b"ActionID: " + old + b"\r\n", f"ActionID: {action_id}\r\n".encode())


ONE_CHANNEL = (
    b"Event: CoreShowChannel\r\nActionID: {aid}\r\nChannel: PJSIP/trunk-00000004\r\n"
    b"CallerIDNum: 79161234567\r\nUniqueid: 1795413075.4\r\nLinkedid: 1795413075.4\r\n\r\n"
)


def core_show_channels(action_id: str, items: list[bytes]) -> bytes:
    aid = action_id.encode()
    return (
        b"Response: Success\r\nActionID: " + aid + b"\r\nEventList: start\r\n"
        b"Message: Channels will follow\r\n\r\n"
        + b"".join(item.replace(b"{aid}", aid) for item in items)
        + b"Event: CoreShowChannelsComplete\r\nActionID: "
        + aid
        + b"\r\nEventList: Complete\r\nListItems: %d\r\n\r\n" % len(items)
    )


class FakeAmi:
    """Scripted AMI server. ``after_login(writer, connection_no)`` runs after each successful
    login, ``after_action(action, writer, connection_no)`` after each other answered action;
    they return False to close that connection."""

    def __init__(
        self,
        *,
        secret: str = "callserver",
        after_login: Script | None = None,
        after_action: ActionScript | None = None,
    ) -> None:
        self.secret = secret
        self.after_login = after_login
        self.after_action = after_action
        self.login_times: list[float] = []
        self.actions: list[dict[str, str]] = []
        self.answer_pings = True
        self.channels = [ONE_CHANNEL]
        self.accept_filters = 0
        """Filter actions answered Success; later ones get Permission denied."""
        self.connections = 0
        self.closed = 0
        self.port = 0
        self._writers: list[asyncio.StreamWriter] = []
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> FakeAmi:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.close()
        await self._server.wait_closed()
        await asyncio.sleep(0.01)

    def names(self) -> list[str]:
        return [a["Action"] for a in self.actions]

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        number = self.connections
        self._writers.append(writer)
        writer.write(BANNER)
        buf = b""
        try:
            while data := await reader.read(4096):
                buf += data
                while b"\r\n\r\n" in buf:
                    frame, buf = buf.split(b"\r\n\r\n", 1)
                    lines = frame.decode().split("\r\n")
                    fields = dict(line.split(": ", 1) for line in lines)
                    if not await self._answer(fields, writer, number):
                        return
        except ConnectionError:
            pass
        finally:
            self.closed += 1
            writer.close()

    async def _answer(
        self, fields: dict[str, str], writer: asyncio.StreamWriter, number: int
    ) -> bool:
        self.actions.append(fields)
        action, aid = fields["Action"], fields["ActionID"]
        if action == "Login":
            self.login_times.append(time.monotonic())
            if fields["Secret"] != self.secret:
                writer.write(with_id("ami-login-failed.txt", "Login", aid))
                await writer.drain()
                return False
            writer.write(with_id("ami-login.txt", "Login", aid))
            return await self.after_login(writer, number) if self.after_login else True
        if action == "Ping":
            if self.answer_pings:
                writer.write(with_id("ami-login.txt", "Ping", aid))
        elif action == "QueueStatus":
            writer.write(with_id("ami-login.txt", "QueueStatus", aid))
        elif action == "CoreShowChannels":
            writer.write(core_show_channels(aid, self.channels))
        elif action == "Originate":
            data = with_id("ami-originate.txt", "Originate", aid)
            response, rest = data.split(b"\r\n\r\n", 1)
            writer.write(response + b"\r\n\r\n")
            await writer.drain()
            await asyncio.sleep(0.05)  # the client must wait for the OriginateResponse event
            writer.write(rest)
        elif action == "Logoff":
            writer.write(with_id("ami-login.txt", "Logoff", aid))
            return False
        elif action == "Filter":
            ok = self.accept_filters > 0
            self.accept_filters -= ok
            answer = "Success\r\nMessage: Success" if ok else "Error\r\nMessage: Permission denied"
            writer.write(f"Response: {answer}\r\nActionID: {aid}\r\n\r\n".encode())
        elif action != "Silent":
            err = f"Response: Error\r\nActionID: {aid}\r\nMessage: Invalid/unknown command\r\n\r\n"
            writer.write(err.encode())
        await writer.drain()
        return await self.after_action(action, writer, number) if self.after_action else True


def config(port: int, **overrides: float | str) -> AmiConfig:
    values: dict[str, float | str] = {
        "connect_timeout": 2.0,
        "action_timeout": 1.0,
        "ping_interval": 30.0,
        "reconnect_min": 0.05,
        "reconnect_max": 0.4,
        "secret": "callserver",
        **overrides,
    }
    return AmiConfig(host="127.0.0.1", port=port, username="callserver", **values)  # type: ignore[arg-type]


class Recorder:
    def __init__(self) -> None:
        self.events: list[AmiMessage] = []
        self.connected = 0

    def on_event(self, msg: AmiMessage) -> None:
        self.events.append(msg)

    async def on_connected(self) -> None:
        self.connected += 1

    def names(self) -> list[str]:
        return [e.name for e in self.events]


async def eventually(check: Callable[[], bool], within: float = 5.0) -> None:
    """Poll ``check`` (a plain attribute test) every 10 ms; fail by timeout after ``within`` s."""
    async with asyncio.timeout(within):
        while not check():  # noqa: ASYNC110 - polling counters of the object under test
            await asyncio.sleep(0.01)


def client_for(cfg: AmiConfig, rec: Recorder) -> AmiClient:
    return AmiClient(cfg, on_event=rec.on_event, on_connected=rec.on_connected)


def our_tasks() -> list[asyncio.Task[object]]:
    return [t for t in asyncio.all_tasks() if "ami_connection" in repr(t.get_coro())]


async def test_login_then_events_and_on_connected() -> None:
    rec = Recorder()
    async with FakeAmi() as peer:
        client = client_for(config(peer.port), rec)
        await client.start()
        await client.wait_connected(5)
        await eventually(lambda: rec.connected == 1 and len(rec.events) == 2)
        assert client.state == "connected"
        assert rec.names() == ["FullyBooted", "SuccessfulAuth"]
        assert client.events_received == 2
        login = peer.actions[0]
        assert (login["Username"], login["Secret"], login["Events"]) == (
            "callserver",
            "callserver",
            "on",
        )
        await client.aclose()
        state: str = client.state  # (mypy narrowed the attribute to "connected" above)
        assert state == "disconnected"
        assert peer.names()[-1] == "Logoff"
    assert our_tasks() == []


async def test_wrong_secret_is_reported_and_retried_with_backoff(
    caplog: pytest.LogCaptureFixture,
) -> None:
    rec = Recorder()
    async with FakeAmi(secret="right-one") as peer:
        client = client_for(config(peer.port, secret="s3cr3t-wrong"), rec)
        with caplog.at_level(logging.ERROR, logger="callserver.asterisk.ami_connection"):
            await client.start()
            await eventually(lambda: len(peer.login_times) >= 4)
            await client.aclose()
    assert client.state == "disconnected"
    assert rec.connected == 0
    assert client.last_error is not None and "Authentication failed" in client.last_error
    assert "'callserver'" in client.last_error and "s3cr3t" not in client.last_error
    refusals = [r.getMessage() for r in caplog.records if "login refused" in r.getMessage()]
    assert len(refusals) >= 3
    assert all("'callserver'" in m and "s3cr3t" not in m for m in refusals)
    gaps = [b - a for a, b in zip(peer.login_times, peer.login_times[1:], strict=False)]
    assert gaps[0] < 0.09 and gaps[2] > 0.1  # 0.025-0.05 s, then 0.1-0.2 s: exponential


async def test_auth_failed_state_while_waiting_to_retry() -> None:
    async with FakeAmi(secret="right-one") as peer:
        cfg = config(peer.port, secret="bad", reconnect_min=5.0, reconnect_max=10.0)
        client = client_for(cfg, Recorder())
        await client.start()
        await eventually(lambda: client.state == "auth_failed")
        assert 2.5 <= client.next_retry_in <= 5.0
        with pytest.raises(AmiTimeout):
            await client.wait_connected(0.05)
        await client.aclose()


async def test_ping_and_errors_of_send_action() -> None:
    async with FakeAmi() as peer:
        client = client_for(config(peer.port), Recorder())
        with pytest.raises(AmiConnectionError):
            await client.send_action("Ping", timeout=1)
        await client.start()
        await client.wait_connected(5)
        pong = await client.send_action("Ping", timeout=1)
        assert (pong.name, pong["Ping"]) == ("Success", "Pong")
        assert pong.action_id == peer.actions[-1]["ActionID"]
        with pytest.raises(AmiActionError) as err:
            await client.send_action("NoSuchThing", timeout=1)
        assert err.value.details["response"] == "Invalid/unknown command"
        with pytest.raises(ValueError):
            await client.send_action("Redirect", {"Channel": "x\r\nAction: Hangup"}, timeout=1)
        await client.aclose()


async def test_list_actions_collect_their_events() -> None:
    rec = Recorder()
    async with FakeAmi() as peer:
        client = client_for(config(peer.port), rec)
        await client.start()
        await client.wait_connected(5)
        items = await client.send_list_action("QueueStatus", {"Queue": "reception"}, timeout=2)
        assert [m.name for m in items] == ["QueueParams", *["QueueMember"] * 3]
        assert [m["Location"] for m in items[1:]] == ["PJSIP/op101", "PJSIP/op102", "PJSIP/op103"]
        assert {m.action_id for m in items} == {peer.actions[-1]["ActionID"]}
        channels = await client.send_list_action("CoreShowChannels", timeout=2)
        assert [(m.name, m["Linkedid"]) for m in channels] == [("CoreShowChannel", "1795413075.4")]
        assert "QueueMember" not in rec.names() and "CoreShowChannel" not in rec.names()
        await client.aclose()


async def test_originate_resolves_with_its_originate_response() -> None:
    rec = Recorder()
    async with FakeAmi() as peer:
        client = client_for(config(peer.port), rec)
        await client.start()
        await client.wait_connected(5)
        headers = {"Channel": "Local/100@lab-local", "Application": "Wait", "Data": "12"}
        event = await client.originate(headers, timeout=5)
        sent = peer.actions[-1]
        assert (sent["Action"], sent["Async"]) == ("Originate", "true")
        assert event.name == "OriginateResponse"
        assert event.action_id == sent["ActionID"]
        assert (event["Response"], event["Reason"], event["Uniqueid"]) == (
            "Success",
            "4",
            "1795413141.8",
        )
        await eventually(lambda: "AgentComplete" in rec.names())
        assert "OriginateResponse" in rec.names() and "Newchannel" in rec.names()
        await client.aclose()


async def test_peer_closing_mid_stream_reconnects_and_resyncs() -> None:
    call = transcripts.from_asterisk("ami-queue-answered-call.txt")
    body = call.split(b"Message: Authentication accepted\r\n\r\n", 1)[1]
    cut = body.index(b"Event: AgentCalled") + 40  # inside the AgentCalled event

    async def half_a_call_then_close(writer: asyncio.StreamWriter, number: int) -> bool:
        if number > 1:
            return True
        writer.write(body[:cut])
        await writer.drain()
        await asyncio.sleep(0.2)  # leave time for an action to be pending
        return False

    rec = Recorder()
    async with FakeAmi(after_login=half_a_call_then_close) as peer:
        client = client_for(config(peer.port), rec)
        await client.start()
        await client.wait_connected(5)
        with pytest.raises(AmiConnectionError):
            await client.send_action("Silent", timeout=5)
        await eventually(lambda: rec.connected == 2)
        assert client.reconnects == 1 and client.state == "connected"
        complete = body[:cut].count(b"\r\n\r\n")
        names = rec.names()
        assert "AgentCalled" not in names  # the torn event is dropped, never half-delivered
        # login events (FullyBooted, SuccessfulAuth) twice, the complete events of the torn
        # stream between (which begins with the transcript's own two login events)
        assert names.count("FullyBooted") == 3
        assert len(names) == 2 + complete + 2
        assert (await client.send_action("Ping", timeout=1))["Ping"] == "Pong"
        await client.aclose()


async def test_action_timeout_leaves_the_connection_usable() -> None:
    async with FakeAmi() as peer:
        client = client_for(config(peer.port), Recorder())
        await client.start()
        await client.wait_connected(5)
        started = time.monotonic()
        with pytest.raises(AmiTimeout):
            await client.send_action("Silent", timeout=0.2)
        assert 0.15 < time.monotonic() - started < 1.0
        assert (await client.send_action("Ping", timeout=1))["Ping"] == "Pong"
        assert client._pending == {}
        await client.aclose()


async def test_missed_pong_reconnects() -> None:
    rec = Recorder()
    async with FakeAmi() as peer:
        cfg = config(peer.port, ping_interval=0.1, action_timeout=0.2)
        client = client_for(cfg, rec)
        await client.start()
        await client.wait_connected(5)
        await eventually(lambda: peer.names().count("Ping") >= 2)
        peer.answer_pings = False
        await eventually(lambda: rec.connected == 2)
        assert "no pong" in (client.last_error or "")
        await client.aclose()


async def test_frame_too_large_reconnects() -> None:
    async def flood(writer: asyncio.StreamWriter, number: int) -> bool:
        if number == 1:
            writer.write(b"Event: Flood\r\nData: " + b"x" * (1024 * 1024 + 10))
            await writer.drain()
        return True

    rec = Recorder()
    async with FakeAmi(after_login=flood) as peer:
        client = client_for(config(peer.port), rec)
        await client.start()
        await eventually(lambda: rec.connected == 2)
        assert "AmiFrameTooLarge" in (client.last_error or "")
        await client.aclose()


async def test_failing_on_event_does_not_stop_the_reader(caplog: pytest.LogCaptureFixture) -> None:
    seen: list[str] = []

    def on_event(msg: AmiMessage) -> None:
        seen.append(msg.name)
        if msg.name == "FullyBooted":
            raise RuntimeError("handler bug")

    async with FakeAmi() as peer:
        client = AmiClient(config(peer.port), on_event=on_event)
        await client.start()
        await eventually(lambda: seen == ["FullyBooted", "SuccessfulAuth"])
        assert client.callback_errors == 1
        assert any("on_event callback failed" in r.getMessage() for r in caplog.records)
        assert client.state == "connected"
        await client.aclose()


async def test_start_with_peer_down_then_up() -> None:
    async with FakeAmi() as probe:
        port = probe.port
    rec = Recorder()
    client = client_for(config(port), rec)
    await client.start()  # never raises on a down peer
    await eventually(lambda: client.connect_attempts >= 2)
    assert client.state in ("disconnected", "connecting")
    assert "cannot connect" in (client.last_error or "")
    peer = FakeAmi()
    peer.port = port
    async with peer:
        await client.wait_connected(5)
        await eventually(lambda: rec.connected == 1)
        await client.aclose()


async def test_cancellation_mid_read_leaves_no_stray_task() -> None:
    async def drip(writer: asyncio.StreamWriter, number: int) -> bool:
        for byte in b"Event: Slow\r\nChannel: PJSIP/trunk-1\r\n":
            if writer.is_closing():
                break
            writer.write(bytes([byte]))
            await asyncio.sleep(0.01)
        return True

    async with FakeAmi(after_login=drip) as peer:
        client = client_for(config(peer.port, action_timeout=0.3), Recorder())
        await client.start()
        await client.wait_connected(5)
        waiter = asyncio.create_task(client.send_action("Silent", timeout=5))
        await asyncio.sleep(0.05)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        assert client._pending == {}
        await asyncio.sleep(0.05)  # the reader is now inside the dripping event
        await client.aclose()
        assert our_tasks() == []
        await eventually(lambda: peer.closed == 1)


async def test_call_that_ended_while_disconnected_is_closed_once_by_resync() -> None:
    """Client + translator + live model + resync, as the composition root wires them: the peer
    drops the connection mid-call; after the reconnect CoreShowChannels no longer lists the call,
    so resync closes it: one CallEnded, not repeated by a later reconnect."""
    call = transcripts.from_asterisk("ami-queue-answered-call.txt")
    body = call.split(b"Message: Authentication accepted\r\n\r\n", 1)[1]
    answered = body[: body.index(b"Event: AgentComplete")]

    async def script(action: str, writer: asyncio.StreamWriter, number: int) -> bool:
        if action != "QueueStatus":  # resync asks CoreShowChannels, then QueueStatus
            return True
        if number == 1:
            writer.write(answered)  # the call arrives, is queued and answered …
            await writer.drain()
        return number > 2  # … and connections 1 and 2 drop right after their resync

    bus = EventBus()
    published: list[DomainEvent] = []
    bus.subscribe(published.append)
    model = LiveModel(bus)
    translator = AmiTranslator(model)
    resyncs: list[int] = []

    async def on_connected() -> None:
        await resync(client, model, timeout=2.0, clock=lambda: 1795413100.0)
        resyncs.append(len(model))

    async with FakeAmi(after_action=script) as peer:
        peer.channels = []
        client = AmiClient(config(peer.port), on_event=translator.handle, on_connected=on_connected)
        await client.start()
        await eventually(lambda: len(resyncs) == 3)
        ended = [e for e in published if e.type == "CallEnded"]
        answered_events = [e for e in published if e.type == "CallAnswered"]
        assert len(answered_events) == 1
        assert len(ended) == 1
        assert resyncs[1:] == [0, 0]  # no live call left after the resyncs
        assert client.reconnects == 2
        await client.aclose()

