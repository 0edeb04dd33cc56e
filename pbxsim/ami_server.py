"""AMI server: banner, login, per-session event filter, broadcast with back-pressure.

Any number of clients may connect. Each event the engine emits is written to every logged
in session with events enabled. A session whose socket buffer grows beyond
``MAX_BUFFER_BYTES`` is disconnected (Asterisk drops slow readers too); the traffic
generator waits on ``drained()`` before starting new calls so a reader that keeps up is
never dropped.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from pbxsim.ami_filter import EventFilter, FilterError, SessionFilters
from pbxsim.wire import BANNER, ActionReader, AmiProtocolError, first, message

log = logging.getLogger("pbxsim.ami")
AUTH_TIMEOUT_S = 30.0
IDLE_TIMEOUT_S = 24 * 3600.0
HIGH_WATER = 4 * 1024 * 1024
MAX_BUFFER_BYTES = 256 * 1024 * 1024
WRITE_TIMEOUT_S = 10.0
"""Wall seconds a client may leave more than ``HIGH_WATER`` of responses unread (and the
Logoff/failed-login reply unsent) before it is dropped (Asterisk: ``writetimeout``)."""

Handler = Callable[["Session", list[tuple[str, str]]], Awaitable[list[bytes]]]


@dataclass(frozen=True)
class AmiCredentials:
    username: str = "callserver"
    secret: str = "callserver"


@dataclass(eq=False)
class Session:
    """One AMI client connection."""

    writer: asyncio.StreamWriter
    peer: str
    authed: bool = False
    events: bool = True
    classes: frozenset[str] | None = None
    """None: every class; else only events whose Privilege class is listed."""
    closing: bool = False
    wants: set[str] = field(default_factory=set)
    filters: SessionFilters = field(default_factory=SessionFilters)
    """Added with the ``Filter`` action; gone with the session."""
    connected: float = field(default_factory=time.monotonic)

    def send(self, data: bytes) -> None:
        """Write a response (also the last one before a close: Goodbye, auth failure)."""
        if not self.writer.is_closing():
            self.writer.write(data)

    def wants_event(self, data: bytes) -> bool:
        if not (self.authed and self.events) or self.closing:
            return False
        if self.classes is not None:
            start = data.find(b"Privilege: ") + 11
            if data[start : data.find(b",", start)].decode() not in self.classes:
                return False
        return not self.filters or self.filters.wants(data)


class AmiServer:
    """Listens on ``host:port``; ``handler`` answers every action after Login."""

    def __init__(self, creds: AmiCredentials, handler: Handler, uptime_s: int = 163) -> None:
        self.creds = creds
        self.handler = handler
        self.sessions: list[Session] = []
        self.logged_in = asyncio.Event()
        self._server: asyncio.Server | None = None
        self._started = time.time() - uptime_s
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self, host: str, port: int) -> int:
        """Bind and listen; returns the bound port (``port`` 0 picks a free one)."""
        self._server = await asyncio.start_server(self._on_client, host, port)
        return int(self._server.sockets[0].getsockname()[1])

    async def aclose(self) -> None:
        """Stop listening and close every session."""
        if self._server is not None:
            self._server.close()
        for s in list(self.sessions):
            s.closing = True
            s.writer.close()
        # closing the transports ends every session's read loop; cancel only stragglers
        # (cancelling start_server's client tasks makes asyncio log a spurious traceback)
        tasks = list(self._tasks)
        if tasks:
            _done, pending = await asyncio.wait(tasks, timeout=5.0)
            for t in pending:
                t.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    def broadcast(self, data: bytes) -> None:
        """Write one event to every session that wants it (never blocks)."""
        for s in self.sessions:
            if s.wants_event(data):
                s.writer.write(data)
                if s.writer.transport.get_write_buffer_size() > MAX_BUFFER_BYTES:
                    log.warning("AMI client %s too slow, disconnecting", s.peer)
                    s.closing = True
                    s.writer.transport.abort()

    async def drained(self) -> None:
        """Wait until every session's buffer is below the high-water mark."""
        for s in list(self.sessions):
            if s.closing:
                continue
            if s.writer.transport.get_write_buffer_size() > HIGH_WATER:
                try:
                    async with asyncio.timeout(30.0):
                        await s.writer.drain()
                except (TimeoutError, ConnectionError):
                    s.closing = True
                    s.writer.transport.abort()

    async def _on_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        peer = writer.get_extra_info("peername")
        s = Session(writer, f"{peer[0]}:{peer[1]}" if peer else "?")
        self.sessions.append(s)
        try:
            writer.write(BANNER)
            await self._serve(reader, s)
        except (ConnectionError, TimeoutError, AmiProtocolError) as exc:
            log.info("AMI session %s ended: %r", s.peer, exc)
            if isinstance(exc, TimeoutError):  # close() would wait for a reader that never reads
                writer.transport.abort()
        finally:
            s.closing = True
            self.sessions.remove(s)
            writer.close()
            if task is not None:
                self._tasks.discard(task)

    async def _serve(self, reader: asyncio.StreamReader, s: Session) -> None:
        parser = ActionReader()
        while not s.closing:
            # authtimeout counts from connect, not per read (pinging must not keep it open)
            unauthed_for = time.monotonic() - s.connected
            timeout = IDLE_TIMEOUT_S if s.authed else max(0.0, AUTH_TIMEOUT_S - unauthed_for)
            async with asyncio.timeout(timeout):
                data = await reader.read(65536)
            if not data:
                return
            for action in parser.feed(data):
                for out in await self._dispatch(s, action):
                    s.send(out)
                if s.closing:
                    async with asyncio.timeout(WRITE_TIMEOUT_S):
                        await s.writer.drain()
                    return
            if s.writer.transport.get_write_buffer_size() > HIGH_WATER:
                # the client sends actions but does not read the responses: stop reading
                # its actions until it catches up, and drop it if it never does
                async with asyncio.timeout(WRITE_TIMEOUT_S):
                    await s.writer.drain()

    async def _dispatch(self, s: Session, action: list[tuple[str, str]]) -> list[bytes]:
        name = first(action, "Action").lower()
        aid = first(action, "ActionID")
        head: list[tuple[str, object]] = [("ActionID", aid)] if aid else []
        if not name:  # manager.c checks this before authentication
            return [
                message([("Response", "Error"), *head, ("Message", "Missing action in request")])
            ]
        if name == "login":
            return self._login(s, action, head)
        if name == "logoff":
            s.closing = True
            return [
                message([("Response", "Goodbye"), *head, ("Message", "Thanks for all the fish.")])
            ]
        if not s.authed:
            return [message([("Response", "Error"), *head, ("Message", "Permission denied")])]
        if name == "events":
            self._set_events(s, first(action, "EventMask"))
            state = "On" if s.events else "Off"
            return [message([("Response", "Success"), *head, ("Events", state)])]
        if name == "filter":
            return [self._filter(s, action, head)]
        return await self.handler(s, action)

    def _filter(
        self, s: Session, action: list[tuple[str, str]], head: list[tuple[str, object]]
    ) -> bytes:
        """``Filter``: add an event filter to this session (``pbxsim.ami_filter``)."""
        if first(action, "Operation").lower() != "add":
            return message([("Response", "Error"), *head, ("Message", "Unknown operation")])
        try:
            f = EventFilter.parse(first(action, "MatchCriteria"), first(action, "Filter"))
        except FilterError as exc:
            return message([("Response", "Error"), *head, ("Message", exc.args[0])])
        s.filters.add(f)
        return message([("Response", "Success"), *head, ("Message", "Success")])

    def _set_events(self, s: Session, mask: str) -> None:
        value = mask.strip().lower()
        if value in ("on", "yes", "true", "1", "all"):
            s.events, s.classes = True, None
        elif value in ("off", "no", "false", "0", ""):
            s.events, s.classes = False, None
        else:
            s.events, s.classes = True, frozenset(v.strip() for v in value.split(","))

    def _login(
        self, s: Session, action: list[tuple[str, str]], head: list[tuple[str, object]]
    ) -> list[bytes]:
        """Login: wrong credentials → Error and close (``ami-login-failed.txt``)."""
        user, secret = first(action, "Username"), first(action, "Secret")
        if user != self.creds.username or secret != self.creds.secret:
            s.closing = True
            return [message([("Response", "Error"), *head, ("Message", "Authentication failed")])]
        s.authed = True
        self._set_events(s, first(action, "Events", "on"))
        out = [message([("Response", "Success"), *head, ("Message", "Authentication accepted")])]
        if s.events:
            out += self._welcome(s, user)
        self.logged_in.set()
        return out

    def _welcome(self, s: Session, user: str) -> list[bytes]:
        """FullyBooted and SuccessfulAuth, sent to the new session only."""
        now = time.time()
        tv = (
            time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now))
            + f".{int(now * 1000) % 1000:03d}+0000"
        )
        local = s.writer.get_extra_info("sockname")
        uptime = int(now - self._started)
        booted = message([
            ("Event", "FullyBooted"), ("Privilege", "system,all"), ("Uptime", uptime),
            ("LastReload", max(0, uptime - 108)), ("Status", "Fully Booted"),
        ])  # fmt: skip
        auth = message([
            ("Event", "SuccessfulAuth"), ("Privilege", "security,all"), ("Timestamp", f"{now:.6f}"),
            ("EventTV", tv), ("Severity", "Informational"), ("Service", "AMI"),
            ("EventVersion", 1), ("AccountID", user),
            ("SessionID", f"0x{id(s) & 0xFFFFFFFFFFFF:x}"),
            ("LocalAddress", f"IPV4/TCP/{local[0]}/{local[1]}" if local else ""),
            ("RemoteAddress", f"IPV4/TCP/{s.peer.replace(':', '/')}"), ("UsingPassword", 0),
            ("SessionTV", tv),
        ])  # fmt: skip
        return [booted, auth]
