"""Helpers for the store's integration tests: real call lifecycles and a TCP proxy that can be
cut (server "down": connections reset, new ones refused) and restored on the same port."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from callserver.core.events import (
    AgentRinging,
    CallAnswered,
    CallEnded,
    CallEvent,
    CallQueued,
    CallSnapshot,
    CallStarted,
)

T0 = 1_790_000_000.0


def lifecycle(call_id: str, t0: float = T0) -> list[CallEvent]:
    """The five events of an answered inbound call, each with its real snapshot."""
    s0 = CallSnapshot(
        id=call_id, linkedid=call_id, direction="inbound", state="ringing",
        caller="79161234567", caller_name="Иванова Мария", did="74951234567",
        ad_source="source-a", queue="", agent="", agent_name="", started_at=t0,
    )  # fmt: skip
    s1 = replace(s0, state="queued", queue="reception", queued_at=t0 + 1)
    s2 = replace(s1, state="agent_ringing", agent="PJSIP/op101", agent_name="Оператор 101")
    s3 = replace(s2, state="answered", answered_at=t0 + 4, wait_seconds=3.0)
    s4 = replace(
        s3, state="ended", ended_at=t0 + 15, talk_seconds=11.0, hangup_by="caller",
        hangup_cause="16", variables=(("ROUTE_REASON", "new-patient"),),
    )  # fmt: skip
    return [
        CallStarted(at=t0, call=s0, channel=f"PJSIP/trunk-{call_id}"),
        CallQueued(at=t0 + 1, call=s1, queue="reception", position=1),
        AgentRinging(at=t0 + 1.5, call=s2, queue="reception", agent="PJSIP/op101"),
        CallAnswered(at=t0 + 4, call=s3, queue="reception", agent="PJSIP/op101", wait_seconds=3),
        CallEnded(at=t0 + 15, call=s4, talk_seconds=11.0, hangup_by="caller", cause="16"),
    ]


async def wait_until(cond: Callable[[], bool], within: float = 20.0) -> None:
    deadline = time.monotonic() + within
    while not cond():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


class TcpProxy:
    """Forwards 127.0.0.1:port to a target; ``cut()`` resets every connection and stops
    listening (PostgreSQL "down"), ``restore()`` listens on the same port again."""

    def __init__(self, host: str, port: int) -> None:
        self._target = (host, port)
        self._server: asyncio.Server | None = None
        self._transports: set[asyncio.WriteTransport] = set()
        self._handlers: set[asyncio.Task[Any]] = set()
        self.port = 0

    async def restore(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()
        for transport in list(self._transports):
            transport.abort()
        await asyncio.gather(*self._handlers, return_exceptions=True)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            up_reader, up_writer = await asyncio.open_connection(*self._target)
        except OSError:
            writer.transport.abort()
            self._handlers.discard(task)
            return
        self._transports.update((writer.transport, up_writer.transport))
        try:
            await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        finally:
            for w in (writer, up_writer):
                w.transport.abort()
                self._transports.discard(w.transport)
            self._handlers.discard(task)

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.transport.abort()
