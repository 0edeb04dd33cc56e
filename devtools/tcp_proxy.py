"""A TCP proxy for fault injection: ``cut()`` makes a service look down (every connection
reset, the port closed), ``restore()`` brings it back on the same port. Used by the tests and
``bench/chaos.py`` to take PostgreSQL, Redis, AMI or ARI away without stopping them."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any


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
