"""FastAGI server over real sockets: a test peer plays Asterisk (recorded transcript, bad peers)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import pytest

from callserver.asterisk.agi_server import AgiEnvironment, AgiSession, FastAgiServer
from callserver.asterisk.errors import (
    AgiCommandError,
    AgiConcurrentCommand,
    AgiError,
    AgiHangup,
    AgiProtocolError,
    AgiTimeout,
)
from tests.transcripts import segments, to_asterisk
from tests.unit.test_agi_codec import asterisk_parse_args

pytestmark = pytest.mark.integration

IO_TIMEOUT = 3.0
COMMAND_TIMEOUT = 0.4
ENV = (
    b"agi_network: yes\nagi_network_script: route\nagi_request: agi://127.0.0.1/route\n"
    b"agi_channel: PJSIP/trunk-00000009\nagi_callerid: 79161234567\nagi_uniqueid: 17.9\n\n"
)

Handler = Callable[[AgiSession], Awaitable[None]]


@asynccontextmanager
async def running(handlers: dict[str, Handler], **kw: float) -> AsyncIterator[FastAgiServer]:
    kw.setdefault("command_timeout", COMMAND_TIMEOUT)
    kw.setdefault("session_timeout", 3.0)
    server = FastAgiServer("127.0.0.1", 0, handlers, **kw)
    await server.start()
    try:
        yield server
    finally:
        await server.aclose(grace=0.5)
    assert server.sessions_active == 0


class Peer:
    """A minimal Asterisk side of one FastAGI connection (no callserver code)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.received = bytearray()

    @classmethod
    async def connect(cls, server: FastAgiServer) -> Peer:
        async with asyncio.timeout(IO_TIMEOUT):
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        return cls(reader, writer)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        async with asyncio.timeout(IO_TIMEOUT):
            await self.writer.drain()

    async def line(self) -> bytes:
        async with asyncio.timeout(IO_TIMEOUT):
            data = await self.reader.readline()
        self.received += data
        return data

    async def rest(self) -> bytes:
        """Everything until the server closes (fails the test if it does not within IO_TIMEOUT)."""
        async with asyncio.timeout(IO_TIMEOUT):
            data = await self.reader.read()
        self.received += data
        return data

    async def answer_all(self, reply: bytes = b"200 result=1\n") -> list[bytes]:
        """Answer every command with ``reply`` until the server closes; return the commands."""
        lines = []
        while line := await self.line():
            lines.append(line)
            await self.send(reply)
        return lines

    def close(self) -> None:
        self.writer.close()


@contextmanager
def ticking() -> Iterator[list[int]]:
    """A task ticking every 5 ms: proof the event loop never freezes while a peer misbehaves."""
    ticks = [0]

    async def tick() -> None:
        while True:
            await asyncio.sleep(0.005)
            ticks[0] += 1

    task = asyncio.get_running_loop().create_task(tick())
    try:
        yield ticks
    finally:
        task.cancel()


async def settled(server: FastAgiServer, total: int) -> None:
    """Wait (≤ IO_TIMEOUT) until ``total`` sessions started and none is active."""
    async with asyncio.timeout(IO_TIMEOUT):
        while True:  # the counters are plain ints (for metrics), so poll them
            if server.sessions_total >= total and not server.sessions_active:
                return
            await asyncio.sleep(0.005)


async def test_recorded_session_replayed_byte_for_byte() -> None:
    seen: list[AgiEnvironment] = []
    values: list[str | None] = []

    async def route(session: AgiSession) -> None:
        env = session.env
        seen.append(env)
        await session.verbose(f"callserver route: dnid={env.dnid} callerid={env.callerid}")
        values.append(await session.get_variable("AD_SOURCE"))
        await session.set_variable("ROUTE_QUEUE", "reception")
        await session.set_variable("ROUTE_MODE", "queue")

    parts = [s for s in segments("agi-session.txt") if s.data]
    async with running({"route": route}) as server:
        peer = await Peer.connect(server)
        for part in parts:
            if part.from_asterisk:
                for i in range(0, len(part.data), 7):  # the environment in 7-byte writes
                    await peer.send(part.data[i : i + 7])
            else:
                for expected in part.data.splitlines(keepends=True):
                    assert await peer.line() == expected
        assert await peer.rest() == b""
        peer.close()
        await settled(server, 1)
    assert bytes(peer.received) == to_asterisk("agi-session.txt")
    env = seen[0]
    assert env.channel == "PJSIP/trunk-00000004"
    assert env.callerid == "79161234567"
    assert env.dnid == "74951234567"
    assert env.args == ("74951234567", "source-a")
    assert values == ["source-a"]
    assert (server.sessions_total, server.errors, server.unknown_scripts) == (1, 0, 0)


async def test_untrusted_caller_id_arrives_as_one_quoted_argument() -> None:
    async def route(session: AgiSession) -> None:
        await session.set_variable("CALLER_COPY", "x\nHANGUP")
        await session.verbose(f"name={session.env.calleridname} end")

    async with running({"route": route}) as server:
        peer = await Peer.connect(server)
        await peer.send(b'agi_network_script: route\nagi_calleridname: a" b\\\n\n')
        lines = await peer.answer_all()
        peer.close()
    assert lines == [
        b'SET VARIABLE CALLER_COPY "x HANGUP"\n',
        b'VERBOSE "name=a\\" b\\\\ end" 1\n',
    ]
    assert asterisk_parse_args(lines[0]) == ["SET", "VARIABLE", "CALLER_COPY", "x HANGUP"]
    assert asterisk_parse_args(lines[1]) == ["VERBOSE", 'name=a" b\\ end', "1"]


async def test_cyrillic_caller_name_split_across_reads() -> None:
    names: list[str] = []

    async def route(session: AgiSession) -> None:
        names.append(session.env.calleridname)

    data = "agi_network_script: route\nagi_calleridname: Клиника Север\n\n".encode()
    cut = data.index("К".encode()) + 1  # inside the two bytes of "К"
    async with running({"route": route}) as server:
        peer = await Peer.connect(server)
        await peer.send(data[:cut])
        await asyncio.sleep(0.05)
        await peer.send(data[cut:])
        assert await peer.rest() == b""
        peer.close()
    assert names == ["Клиника Север"]


async def test_error_replies_510_520_511_and_hangup() -> None:
    outcomes: list[Any] = []

    async def route(session: AgiSession) -> None:
        for parts in (("NOSUCH", "THING"), ("GET", "VARIABLE"), ("GET", "VARIABLE", "X")):
            try:
                outcomes.append(await session.command(*parts))
            except AgiCommandError as exc:
                outcomes.append((exc.details["code"], exc.details["reply"]))
        try:
            await session.get_variable("Y")
        except AgiHangup:
            outcomes.append(("hangup", session.hungup))
        try:
            await session.verbose("after hangup")
        except AgiHangup:
            outcomes.append("no command after hangup")

    usage = b"520-Invalid command syntax.  Proper usage follows:\nUsage: GET VARIABLE <name>\n"
    async with running({"route": route}) as server:
        peer = await Peer.connect(server)
        await peer.send(ENV)
        assert await peer.line() == b"NOSUCH THING\n"
        await peer.send(b"510 Invalid or unknown command\n")
        assert await peer.line() == b"GET VARIABLE\n"
        await peer.send(usage + b"520 End of proper usage.\n")
        assert await peer.line() == b"GET VARIABLE X\n"
        await peer.send(b"200 result=0\n")
        assert await peer.line() == b"GET VARIABLE Y\n"
        await peer.send(b"HANGUP\n511 Command Not Permitted on a dead channel\n")
        assert await peer.rest() == b""
        peer.close()
        await settled(server, 1)
    assert outcomes[0] == (510, "510 Invalid or unknown command")
    assert outcomes[1][0] == 520 and "Usage: GET VARIABLE <name>" in outcomes[1][1]
    assert outcomes[1][1].endswith("520 End of proper usage.")
    assert outcomes[2].code == 200 and outcomes[2].result == "0"
    assert outcomes[3:] == [("hangup", True), "no command after hangup"]
    assert server.errors == 0


async def test_511_alone_means_hangup() -> None:
    got: list[str] = []

    async def route(session: AgiSession) -> None:
        try:
            await session.set_variable("A", "1")
        except AgiHangup:
            got.append("hangup")
            raise

    async with running({"route": route}) as server:
        peer = await Peer.connect(server)
        await peer.send(ENV)
        assert await peer.answer_all(b"511 Command Not Permitted on a dead channel\n") == [
            b"SET VARIABLE A 1\n"
        ]
        peer.close()
        await settled(server, 1)
    assert got == ["hangup"] and server.errors == 0


@pytest.mark.parametrize(
    "partial", [b"", b"agi_network_script: route\nagi_chan", b"agi_network_script: route\n"]
)
async def test_peer_closing_before_the_blank_line_never_spins(partial: bytes) -> None:
    called: list[bool] = []

    async def route(session: AgiSession) -> None:
        called.append(True)

    async with running({"route": route}, command_timeout=2.0) as server:
        with ticking() as ticks:
            peer = await Peer.connect(server)
            await peer.send(partial)
            peer.close()
            started = time.monotonic()
            await settled(server, 1)
            ended = time.monotonic() - started
            cpu = time.process_time()
            before = ticks[0]
            await asyncio.sleep(0.2)
            cpu = time.process_time() - cpu
            assert ticks[0] - before >= 10
    assert ended < 1.0, "the session waited for a timeout instead of seeing EOF"
    assert cpu < 0.15, f"{cpu:.3f} s of CPU in 0.2 s idle: something spins"
    assert called == []
    assert server.errors == (1 if partial else 0)  # a bare TCP probe is not an error


async def test_half_close_after_environment_ends_the_session() -> None:
    got: list[str] = []

    async def route(session: AgiSession) -> None:
        try:
            await session.verbose("hello")
        except AgiHangup:
            got.append("hangup")
            raise

    async with running({"route": route}) as server:
        with ticking() as ticks:
            peer = await Peer.connect(server)
            await peer.send(ENV)
            peer.writer.write_eof()
            assert await peer.line() == b"VERBOSE hello 1\n"
            assert await peer.rest() == b""
            peer.close()
            await settled(server, 1)
            await asyncio.sleep(0.05)
            assert ticks[0] >= 3
    assert got == ["hangup"] and server.errors == 0


@pytest.mark.parametrize(
    "garbage",
    [
        b"GET / HTTP/1.1\r\nHost: callserver\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" * 1000,  # TLS hello bytes, no newline
        b"agi_channel: " + b"x" * 20_000,
    ],
)
async def test_garbage_is_refused_and_the_server_keeps_serving(garbage: bytes) -> None:
    calls: list[str] = []

    async def route(session: AgiSession) -> None:
        calls.append(session.env.channel)

    async with running({"route": route}) as server:
        with ticking() as ticks:
            peer = await Peer.connect(server)
            await peer.send(garbage)
            assert await peer.rest() == b""
            peer.close()
            good = await Peer.connect(server)
            await good.send(ENV)
            assert await good.rest() == b""
            good.close()
            await settled(server, 2)
            await asyncio.sleep(0.05)
            assert ticks[0] >= 3
    assert calls == ["PJSIP/trunk-00000009"]
    assert server.errors == 1


async def test_garbage_reply_stops_the_handler() -> None:
    got: list[type[BaseException]] = []

    async def route(session: AgiSession) -> None:
        try:
            await session.get_variable("X")
        except AgiError as exc:
            got.append(type(exc))
            raise

    async with running({"route": route}) as server:
        peer = await Peer.connect(server)
        await peer.send(ENV)
        assert await peer.answer_all(b"hello there\n") == [b"GET VARIABLE X\n"]
        peer.close()
        await settled(server, 1)
    assert got == [AgiProtocolError] and server.errors == 1


async def test_unknown_script_gets_a_notice_and_a_clean_close(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def route(session: AgiSession) -> None:
        raise AssertionError("must not run")

    async with running({"route": route}) as server:
        peer = await Peer.connect(server)
        await peer.send(b"agi_network_script: /nosuch\\nFORGED?x=1\nagi_callerid: 79161234567\n\n")
        assert await peer.answer_all() == [
            b'VERBOSE "callserver: no handler for this AGI script" 1\n'
        ]
        peer.close()
        await settled(server, 1)
    assert server.unknown_scripts == 1 and server.errors == 0
    record = next(r for r in caplog.records if "no handler" in r.getMessage())
    assert "***4567" in record.getMessage() and "79161234567" not in record.getMessage()


async def test_handler_exception_is_logged_masked_and_escaped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def route(session: AgiSession) -> None:
        await session.set_variable("STEP", "1")
        raise ValueError(f"bad caller {session.env.callerid}\nFAKE LOG LINE")

    async with running({"route": route}) as server:
        for _ in range(2):  # the server survives and serves the next call
            peer = await Peer.connect(server)
            await peer.send(ENV)
            assert await peer.answer_all() == [b"SET VARIABLE STEP 1\n"]
            peer.close()
        await settled(server, 2)
    assert server.errors == 2
    failures = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(failures) == 2
    text = failures[0].getMessage()
    assert "ValueError" in text and "\\nFAKE LOG LINE" in text and "\n" not in text
    assert "79161234567" not in text and "***4567" in text
    assert "test_agi_server.py" in text and "channel=PJSIP/trunk-00000009" in text
    assert failures[0].exc_info is None  # a traceback would carry the raw message


async def test_command_timeout_then_session_is_unusable() -> None:
    got: list[Any] = []

    async def route(session: AgiSession) -> None:
        started = time.monotonic()
        try:
            await session.get_variable("SLOW")
        except AgiTimeout:
            got.append(round(time.monotonic() - started, 1))
        try:
            await session.command("ANSWER", timeout=0.1)
        except AgiTimeout:
            got.append("still broken")

    async with running({"route": route}) as server:
        peer = await Peer.connect(server)
        await peer.send(ENV)
        assert await peer.line() == b"GET VARIABLE SLOW\n"
        assert await peer.rest() == b""  # nothing else sent; then closed
        peer.close()
        await settled(server, 1)
    assert got == [COMMAND_TIMEOUT, "still broken"]


async def test_cancelled_command_never_pairs_a_late_reply_with_the_next_one() -> None:
    """The redis-py CVE-2023-28858/9 shape: a command cancelled mid-read must not leave its
    reply to be read as the answer to the next command."""
    got: list[Any] = []

    async def route(session: AgiSession) -> None:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.05):  # the handler's own deadline cancels the read
                await session.get_variable("FIRST")
        try:
            got.append(await session.get_variable("SECOND"))
        except AgiError as exc:
            got.append(type(exc))

    async with running({"route": route}) as server:
        peer = await Peer.connect(server)
        await peer.send(ENV)
        assert await peer.line() == b"GET VARIABLE FIRST\n"
        await asyncio.sleep(0.15)
        await peer.send(b"200 result=1 (late answer to FIRST)\n")
        assert await peer.rest() == b""  # SECOND was never sent
        peer.close()
        await settled(server, 1)
    assert got == [AgiError]


async def test_per_call_timeout_overrides_the_default() -> None:
    got: list[float] = []

    async def route(session: AgiSession) -> None:
        started = time.monotonic()
        with pytest.raises(AgiTimeout):
            await session.command("WAIT", "FOR", "DIGIT", "5000", timeout=0.1)
        got.append(time.monotonic() - started)

    async with running({"route": route}) as server:
        peer = await Peer.connect(server)
        await peer.send(ENV)
        assert await peer.line() == b"WAIT FOR DIGIT 5000\n"
        assert await peer.rest() == b""
        peer.close()
    assert 0.09 <= got[0] < 0.3


async def test_session_timeout_closes_a_stuck_handler() -> None:
    async def route(session: AgiSession) -> None:
        await asyncio.sleep(60)

    async with running({"route": route}, session_timeout=0.3) as server:
        peer = await Peer.connect(server)
        await peer.send(ENV)
        started = time.monotonic()
        assert await peer.rest() == b""
        assert time.monotonic() - started < 1.0
        peer.close()
        await settled(server, 1)
    assert server.errors == 1


async def test_aclose_cancels_running_sessions() -> None:
    entered = asyncio.Event()

    async def route(session: AgiSession) -> None:
        entered.set()
        await session.command("WAIT", "FOR", "DIGIT", "-1", timeout=30)

    server = FastAgiServer("127.0.0.1", 0, {"route": route})
    await server.start()
    peer = await Peer.connect(server)
    await peer.send(ENV)
    async with asyncio.timeout(IO_TIMEOUT):
        await entered.wait()
    assert server.sessions_active == 1
    started = time.monotonic()
    await server.aclose(grace=0.1)
    assert time.monotonic() - started < 1.0
    assert server.sessions_active == 0
    assert await peer.line() == b"WAIT FOR DIGIT -1\n"
    assert await peer.rest() == b""
    peer.close()
    with pytest.raises(OSError):
        await Peer.connect(server)


async def test_many_concurrent_sessions() -> None:
    async def route(session: AgiSession) -> None:
        await session.set_variable("ROUTE_QUEUE", session.env.uniqueid)

    async def one_call(server: FastAgiServer, n: int) -> list[bytes]:
        peer = await Peer.connect(server)
        await peer.send(ENV.replace(b"agi_uniqueid: 17.9", b"agi_uniqueid: %d.1" % n))
        lines = await peer.answer_all()
        peer.close()
        return lines

    async with running({"route": route}) as server:
        results = await asyncio.gather(*(one_call(server, n) for n in range(100)))
        await settled(server, 100)
    assert results == [[b"SET VARIABLE ROUTE_QUEUE %d.1\n" % n] for n in range(100)]
    assert server.errors == 0


async def test_command_deadline_fails_the_command_not_the_task() -> None:
    """The per-command deadline is a timer on the reply waiter: it raises AgiTimeout in the
    handler without cancelling the session task (so nothing has to be uncancelled)."""
    got: list[Any] = []

    async def route(session: AgiSession) -> None:
        task = asyncio.current_task()
        assert task is not None
        started = time.monotonic()
        with pytest.raises(AgiTimeout):
            await session.command("WAIT", "FOR", "DIGIT", "5000", timeout=0.1)
        got.extend([time.monotonic() - started, task.cancelling()])
        await asyncio.sleep(0.01)  # the task is not cancelled: it can still await
        got.append("after")

    async with running({"route": route}) as server:
        peer = await Peer.connect(server)
        await peer.send(ENV)
        assert await peer.line() == b"WAIT FOR DIGIT 5000\n"
        assert await peer.rest() == b""
        peer.close()
        await settled(server, 1)
    assert 0.09 <= got[0] < 0.3 and got[1:] == [0, "after"]
    assert server.errors == 0


async def test_each_command_gets_its_own_deadline_from_the_shared_timer() -> None:
    """The connection's one timer is first due at the environment's deadline: a later command
    with a longer timeout outlives it and still gets its whole time; a shorter one after it
    times out at its own deadline."""
    got: list[Any] = []

    async def route(session: AgiSession) -> None:
        await asyncio.sleep(0.2)  # the environment's deadline (0.3 s) passes during the next
        got.append(await session.get_variable("SLOW"))
        started = time.monotonic()
        with pytest.raises(AgiTimeout):
            await session.command("ANSWER", timeout=0.1)
        got.append(time.monotonic() - started)

    async with running({"route": route}, command_timeout=0.3) as server:
        peer = await Peer.connect(server)
        await peer.send(ENV)
        assert await peer.line() == b"GET VARIABLE SLOW\n"
        await asyncio.sleep(0.15)  # past the environment's deadline, within this command's
        await peer.send(b"200 result=1 (late but in time)\n")
        assert await peer.line() == b"ANSWER\n"
        assert await peer.rest() == b""
        peer.close()
        await settled(server, 1)
    assert got[0] == "late but in time" and 0.09 <= got[1] < 0.25


async def test_environment_deadline_closes_a_peer_that_stops_mid_environment() -> None:
    async with running({}, command_timeout=0.2) as server:
        peer = await Peer.connect(server)
        await peer.send(b"agi_network_script: route\nagi_chan")
        started = time.monotonic()
        assert await peer.rest() == b""
        assert 0.15 <= time.monotonic() - started < 1.0
        peer.close()
        await settled(server, 1)
    assert server.errors == 1


async def test_concurrent_commands_raise_a_clear_error_and_the_first_completes() -> None:
    got: list[Any] = []

    async def route(session: AgiSession) -> None:
        first, second = await asyncio.gather(
            session.get_variable("A"), session.get_variable("B"), return_exceptions=True
        )
        got.extend([first, type(second)])
        await session.set_variable("C", "1")  # the session is still usable
        got.append("set")

    async with running({"route": route}) as server:
        peer = await Peer.connect(server)
        await peer.send(ENV)
        assert await peer.line() == b"GET VARIABLE A\n"
        await peer.send(b"200 result=1 (a)\n")
        assert await peer.line() == b"SET VARIABLE C 1\n"
        await peer.send(b"200 result=1\n")
        assert await peer.rest() == b""
        peer.close()
        await settled(server, 1)
    assert got == ["a", AgiConcurrentCommand, "set"]
    assert server.errors == 0


async def test_peer_flooding_replies_is_refused_and_the_loop_stays_live() -> None:
    got: list[type[BaseException]] = []

    async def route(session: AgiSession) -> None:
        await asyncio.sleep(0.2)  # the flood arrives meanwhile (reading pauses, memory bounded)
        try:
            await session.set_variable("A", "1")
        except AgiError as exc:
            got.append(type(exc))
            raise

    async with running({"route": route}) as server:
        with ticking() as ticks:
            peer = await Peer.connect(server)
            peer.writer.write(ENV + b"200 result=1\n" * 20_000)
            with contextlib.suppress(ConnectionResetError):  # closed with the flood unread
                await peer.rest()
            assert peer.received == b""  # nothing sent: the flood is a protocol error
            peer.close()
            await settled(server, 1)
            assert ticks[0] >= 10
    assert got == [AgiProtocolError] and server.errors == 1


async def test_port_in_use_is_a_clear_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        server = FastAgiServer("127.0.0.1", taken.getsockname()[1], {})
        with pytest.raises(AgiError, match="cannot listen"):
            await server.start()
        await server.aclose()
