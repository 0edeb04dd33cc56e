"""FastAGI wire without sockets: a small fake transport drives flow control, pausing and closing."""

from __future__ import annotations

import asyncio

import pytest

from callserver.asterisk.agi_codec import AgiEnvironment, AgiReply
from callserver.asterisk.agi_wire import MAX_PENDING, AgiWire
from callserver.asterisk.errors import AgiHangup, AgiProtocolError

ENV = b"agi_network_script: route\nagi_channel: PJSIP/x-1\n\n"


class FakeTransport(asyncio.Transport):
    """Records what the wire does to its transport; ``unsent`` plays the write buffer."""

    def __init__(self, wire: AgiWire) -> None:
        super().__init__()
        self.wire = wire
        self.written: list[bytes] = []
        self.unsent = 0
        self.reading = True
        self.closed = self.aborted = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True
        if not self.unsent:
            self.wire.connection_lost(None)

    def abort(self) -> None:
        self.closed = self.aborted = True
        self.wire.connection_lost(None)

    def get_write_buffer_size(self) -> int:
        return self.unsent

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True


def connected() -> tuple[AgiWire, FakeTransport]:
    started: list[AgiWire] = []
    wire = AgiWire(started.append)
    transport = FakeTransport(wire)
    wire.connection_made(transport)
    assert started == [wire]
    return wire, transport


def soon(seconds: float) -> float:
    return asyncio.get_running_loop().time() + seconds


async def test_next_message_waits_for_data_and_times_out_at_its_deadline() -> None:
    wire, _ = connected()
    asyncio.get_running_loop().call_later(0.01, wire.data_received, ENV)
    assert isinstance(await wire.next_message(soon(1.0)), AgiEnvironment)
    started = asyncio.get_running_loop().time()
    with pytest.raises(TimeoutError):
        await wire.next_message(soon(0.05))
    assert 0.04 <= asyncio.get_running_loop().time() - started < 0.5
    wire.data_received(b"200 result=1\n")  # a timeout leaves the wire readable
    assert await wire.next_message(soon(1.0)) == AgiReply(200, "1", None, "200 result=1")


async def test_eof_garbage_and_loss_are_raised_by_next_message() -> None:
    wire, _ = connected()
    wire.data_received(ENV)
    wire.eof_received()
    assert isinstance(await wire.next_message(soon(1.0)), AgiEnvironment)
    with pytest.raises(AgiHangup):
        await wire.next_message(soon(1.0))

    wire, transport = connected()
    wire.data_received(b"hello\n")
    assert not transport.reading  # garbage: the rest is not read
    with pytest.raises(AgiProtocolError):
        await wire.next_message(soon(1.0))

    wire, _ = connected()
    asyncio.get_running_loop().call_later(0.01, wire.connection_lost, ConnectionResetError())
    with pytest.raises(AgiHangup, match="lost"):
        await wire.next_message(soon(1.0))


async def test_reading_pauses_while_messages_wait_unread() -> None:
    wire, transport = connected()
    wire.data_received(ENV + b"200 result=1\n" * (MAX_PENDING + 3))
    assert not transport.reading
    for _ in range(5):
        await wire.next_message(soon(1.0))
    assert transport.reading and len(wire.pending) < MAX_PENDING


async def test_drain_waits_for_resume_writing_with_a_deadline() -> None:
    wire, transport = connected()
    await wire.drain(soon(0.01))  # not paused: returns at once
    wire.pause_writing()
    assert wire.write_paused
    with pytest.raises(TimeoutError):
        await wire.drain(soon(0.02))
    asyncio.get_running_loop().call_later(0.01, wire.resume_writing)
    await wire.drain(soon(1.0))
    assert not wire.write_paused
    wire.pause_writing()
    asyncio.get_running_loop().call_later(0.01, transport.abort)  # the connection is lost
    with pytest.raises(AgiHangup, match="writing"):
        await wire.drain(soon(1.0))
    with pytest.raises(AgiHangup):
        wire.write(b"ANSWER\n")


async def test_aclose_does_not_wait_when_everything_was_sent() -> None:
    wire, transport = connected()
    wire.write(b"ANSWER\n")
    await wire.aclose(5.0)
    assert transport.closed and not transport.aborted
    assert transport.written == [b"ANSWER\n"]


async def test_aclose_aborts_a_peer_that_does_not_take_the_rest() -> None:
    wire, transport = connected()
    transport.unsent = 100
    started = asyncio.get_running_loop().time()
    await wire.aclose(0.05)
    assert 0.04 <= asyncio.get_running_loop().time() - started < 0.5
    assert transport.aborted


async def test_aclose_cancelled_aborts_the_connection() -> None:
    wire, transport = connected()
    transport.unsent = 100
    task = asyncio.get_running_loop().create_task(wire.aclose(5.0))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert transport.aborted
