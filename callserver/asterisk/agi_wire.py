"""The socket of one FastAGI session: an asyncio ``Protocol`` feeding ``AgiCodec``.

Bytes arrive in ``data_received`` and are parsed at once into ``pending`` messages; the session
task waits for the next one on a plain future. A deadline fails that future with ``TimeoutError``
from the connection's one ``loop.call_at`` timer: no task cancellation (nothing to uncancel) and
no timer per command, far cheaper than ``asyncio.timeout`` around a ``StreamReader`` read
(measured with ``bench/route.py``). Cancelling the waiting task works as usual.

EOF, a lost connection and garbage wake the waiter and are raised by ``next_message``, so a
closed or half-closed peer ends the session instead of making the loop spin. Reading pauses while
``MAX_PENDING`` messages wait unread (a peer flooding replies cannot grow memory); writing honours
the transport's flow control through ``drain``.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable

from callserver.asterisk.agi_codec import AgiCodec, AgiMessage
from callserver.asterisk.errors import AgiHangup, AgiProtocolError

MAX_PENDING = 8
"""Parsed messages that may wait unread before reading from the socket pauses."""


class AgiWire(asyncio.Protocol):
    """One FastAGI connection. ``on_connect(wire)`` runs when the connection is made.

    ``received`` counts the bytes read so far. ``next_message``/``drain`` take an absolute
    deadline in ``loop.time()`` seconds and raise TimeoutError when it passes.
    """

    def __init__(self, on_connect: Callable[[AgiWire], None]) -> None:
        self._on_connect = on_connect
        self._codec = AgiCodec()
        self._transport: asyncio.Transport | None = None
        self.pending: deque[AgiMessage] = deque()
        self.received = 0
        self._waiter: asyncio.Future[None] | None = None
        self._deadline = 0.0
        """When the current waiter times out (``loop.time()`` seconds)."""
        self._timer: asyncio.TimerHandle | None = None
        """One timer per connection, due at or before ``_deadline`` while a waiter waits."""
        self._error: AgiProtocolError | None = None
        self._eof = False
        self._lost: asyncio.Future[None] | None = None
        self._lost_exc: Exception | None = None
        self._drain: asyncio.Future[None] | None = None
        self._paused_reading = False

    # ---- asyncio.Protocol callbacks (run by the event loop)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._lost = asyncio.get_running_loop().create_future()
        self._on_connect(self)

    def data_received(self, data: bytes) -> None:
        self.received += len(data)
        if self._error is not None:
            return
        try:
            messages = self._codec.feed(data)
        except AgiProtocolError as exc:
            self._error = exc
            self._pause_reading()
        else:
            self.pending.extend(messages)
            if len(self.pending) >= MAX_PENDING:
                self._pause_reading()
        self._wake()

    def eof_received(self) -> bool:
        self._eof = True
        self._wake()
        return True  # a half-closed peer may still read what we write; we close at the end

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost_exc = exc
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._lost is not None and not self._lost.done():
            self._lost.set_result(None)
        if self._drain is not None and not self._drain.done():
            self._drain.set_result(None)
        self._wake()

    def pause_writing(self) -> None:
        self._drain = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        if self._drain is not None and not self._drain.done():
            self._drain.set_result(None)
        self._drain = None

    # ---- used by the session task

    @property
    def write_paused(self) -> bool:
        """True while the transport's write buffer is over its high-water mark."""
        return self._drain is not None

    def write(self, line: bytes) -> None:
        """Queue ``line`` for sending; raises AgiHangup if the connection is gone."""
        if self._transport is None or self._transport.is_closing():
            raise AgiHangup(message="AGI connection already closed")
        self._transport.write(line)

    async def drain(self, deadline: float) -> None:
        """Wait until the write buffer is below its high-water mark (TimeoutError at
        ``deadline``); raises AgiHangup if the connection is lost meanwhile. Rare: only a peer
        that stops reading fills the buffer."""
        loop = asyncio.get_running_loop()
        while self._drain is not None:
            done, _ = await asyncio.wait({self._drain}, timeout=max(0.0, deadline - loop.time()))
            if not done:
                raise TimeoutError
            if self._lost is not None and self._lost.done():
                raise AgiHangup(message="AGI connection lost while writing")

    async def next_message(self, deadline: float) -> AgiMessage:
        """The next message. Raises TimeoutError at ``deadline`` (``loop.time()`` seconds),
        AgiHangup at EOF or when the connection is lost, AgiProtocolError on garbage."""
        while not self.pending:
            self._raise_if_done()
            loop = asyncio.get_running_loop()
            self._waiter = waiter = loop.create_future()
            self._deadline = deadline
            if self._timer is None or self._timer.when() > deadline:
                self._set_timer(deadline)
            try:
                await waiter  # the timer fails it with TimeoutError: the task is not cancelled
            finally:
                self._waiter = None
        message = self.pending.popleft()
        if self._paused_reading and self._error is None and len(self.pending) < MAX_PENDING:
            self._paused_reading = False
            assert self._transport is not None
            self._transport.resume_reading()
        return message

    def abort(self) -> None:
        """Drop the connection at once (nothing more is sent)."""
        if self._transport is not None:
            self._transport.abort()

    async def aclose(self, grace: float) -> None:
        """Close the connection: at once when nothing is left to send, else after the buffer is
        sent, but at most ``grace`` seconds before the connection is aborted."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        transport = self._transport
        if transport is None or self._lost is None:
            return
        unsent = transport.get_write_buffer_size()
        transport.close()
        if not unsent or self._lost.done():
            return
        try:
            await asyncio.wait({self._lost}, timeout=grace)
        finally:
            if not self._lost.done():
                transport.abort()  # the peer does not read: drop what it did not take

    # ---- internals

    def _set_timer(self, when: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = asyncio.get_running_loop().call_at(when, self._on_timer, when)

    def _on_timer(self, when: float) -> None:
        """The connection's timer is due. A command's deadline is checked here, not with a timer
        of its own: commands take milliseconds and deadlines seconds, so one timer per
        connection usually serves every command (moved later only when a wait outlives it)."""
        self._timer = None
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        if self._deadline <= when:
            waiter.set_exception(TimeoutError())
        else:
            self._set_timer(self._deadline)

    def _raise_if_done(self) -> None:
        if self._error is not None:
            raise self._error
        if self._eof:
            raise AgiHangup(
                message="Asterisk closed the AGI connection",
                in_environment=self._codec.in_environment,
                partial=not self._codec.eof(),
            )
        if self._lost is not None and self._lost.done():
            message = "AGI connection lost while reading"
            raise AgiHangup(message=message) from self._lost_exc

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def _pause_reading(self) -> None:
        if not self._paused_reading and self._transport is not None:
            self._paused_reading = True
            self._transport.pause_reading()
