"""FastAGI server: Asterisk's ``AGI(agi://host:4573/route)`` connects here and a handler runs.

One TCP connection is one session: Asterisk sends the ``agi_*`` environment, the server picks the
handler by script name (``agi://host:4573/route?x=y`` → ``handlers["route"]``), the handler sends
commands through ``AgiSession`` and the server closes the connection when it returns, so the
dialplan goes on with whatever variables were set. Every failure (unknown script, handler
exception, protocol garbage, a peer that closes early or half-closes, a timeout) is logged with the
call's context (caller number masked, control characters escaped), counted, and ends the session
cleanly: the dialplan continues with its defaults. Reads stop at EOF, so a closed peer never makes
the loop spin (panoramisk's FastAGI server did).

Deadlines: ``command_timeout`` (seconds) bounds reading the environment and every command's
round trip (enforced by ``agi_wire.AgiWire``, the session's asyncio Protocol, with one timer per
connection); ``session_timeout`` (seconds) bounds the whole session including the handler.
Session tasks are owned by the server and finished (then cancelled) by ``aclose``.
"""

from __future__ import annotations

import asyncio
import logging
import re
import traceback
from collections.abc import Awaitable, Callable, Mapping

from callserver.asterisk.agi_codec import (
    AgiEnvironment,
    AgiHangupSignal,
    AgiReply,
    encode_command,
)
from callserver.asterisk.agi_wire import AgiWire
from callserver.asterisk.errors import (
    AgiCommandError,
    AgiCommandTooLong,
    AgiConcurrentCommand,
    AgiError,
    AgiHangup,
    AgiProtocolError,
    AgiTimeout,
)
from callserver.core.phone import mask
from callserver.logs import escape_control

__all__ = ["AgiEnvironment", "AgiHandler", "AgiReply", "AgiSession", "FastAgiServer"]

log = logging.getLogger(__name__)

LISTEN_BACKLOG = 1024

CLOSE_TIMEOUT = 1.0
"""Seconds the socket may take to send what is left after the session before it is aborted."""
_PHONE_LIKE = re.compile(r"\+?\d{5,}")


class AgiSession:
    """One FastAGI call: its environment and the commands a handler sends.

    Commands run one at a time, as Asterisk reads them: a handler awaits each before sending
    the next; starting one while another is in flight raises AgiConcurrentCommand (nothing sent,
    the one in flight goes on). After a timeout, a protocol error or a cancellation in the middle
    of a command, the reply stream can no longer be trusted: every later command raises the
    error class that broke it. After ``HANGUP`` or a 511 reply every command raises AgiHangup.
    """

    def __init__(self, env: AgiEnvironment, wire: AgiWire, *, command_timeout: float) -> None:
        self.env = env
        self._wire = wire
        self._command_timeout = command_timeout
        self._busy = False
        self._broken: AgiError | None = None
        self._hungup = False

    @property
    def hungup(self) -> bool:
        """True once Asterisk reported the channel hung up (``HANGUP`` line or a 511 reply)."""
        return self._hungup

    # The per-call ``timeout`` is the agreed public API (issue 2); the wire enforces it.
    async def command(self, *parts: str, timeout: float | None = None) -> AgiReply:  # noqa: ASYNC109
        """Send one command (each part one quoted argument) and return its 200 reply.

        ``timeout`` (seconds; None → the server's ``command_timeout``) bounds the round trip.
        Raises AgiTimeout, AgiHangup (``HANGUP``, 511, or connection closed), AgiCommandError
        (510, 520 or any other non-200 code; ``details['code']``, ``details['reply']``),
        AgiProtocolError (garbage from the peer), AgiCommandTooLong (nothing sent),
        AgiConcurrentCommand (another command of this session is in flight; nothing sent).
        """
        line = encode_command(*parts)
        limit = self._command_timeout if timeout is None else timeout
        if limit <= 0:
            raise ValueError("AGI command timeout must be positive seconds")
        if self._busy:
            raise AgiConcurrentCommand(
                message="another AGI command is in flight: await each command before the next",
                command=parts[0],
            )
        self._check_usable()
        self._busy = True
        try:
            reply = await self._exchange(line, asyncio.get_running_loop().time() + limit)
        except TimeoutError as exc:
            self._broken = AgiTimeout(
                message="no AGI reply in time", command=parts[0], timeout=limit
            )
            raise self._broken from exc
        except AgiHangup:
            self._hungup = True
            raise
        except BaseException as exc:
            self._broken = (
                exc
                if isinstance(exc, AgiError)
                else AgiError(message="AGI session interrupted mid-command")
            )
            raise
        finally:
            self._busy = False
        return self._accept(reply, parts[0])

    async def verbose(self, message: str, level: int = 1) -> None:
        """Log ``message`` on the Asterisk console (``VERBOSE``), shortened to fit one line.

        ``level`` is 1–4. Raises like ``command``.
        """
        if not 1 <= level <= 4:
            raise ValueError("VERBOSE level must be 1..4")
        while True:
            try:
                await self.command("VERBOSE", message, str(level))
                return
            except AgiCommandTooLong:
                message = message[: len(message) // 2] + "…"

    async def get_variable(self, name: str) -> str | None:
        """A channel variable's value, or None when it is not set. Raises like ``command``."""
        reply = await self.command("GET", "VARIABLE", name)
        if reply.result != "1":
            return None
        return reply.data if reply.data is not None else ""

    async def set_variable(self, name: str, value: str) -> None:
        """Set a channel variable (the value is sent quoted). Raises like ``command``."""
        await self.command("SET", "VARIABLE", name, value)

    def _check_usable(self) -> None:
        if self._hungup:
            raise AgiHangup(message="the AGI channel has hung up")
        if self._broken is not None:
            raise type(self._broken)(message=f"AGI session unusable after: {self._broken.message}")

    async def _exchange(self, line: bytes, deadline: float) -> AgiReply:
        """Send ``line`` and read its reply; ``deadline`` is in ``loop.time()`` seconds."""
        wire = self._wire
        if wire.pending:
            unsolicited = wire.pending.popleft()
            if isinstance(unsolicited, AgiHangupSignal):
                raise AgiHangup(message="Asterisk sent HANGUP")
            raise AgiProtocolError(message="AGI reply that no command asked for")
        wire.write(line)
        if wire.write_paused:
            await wire.drain(deadline)
        message = await wire.next_message(deadline)
        if isinstance(message, AgiHangupSignal):
            raise AgiHangup(message="Asterisk sent HANGUP")
        if not isinstance(message, AgiReply):
            raise AgiProtocolError(message="second AGI environment")
        return message

    def _accept(self, reply: AgiReply, command: str) -> AgiReply:
        if reply.code == 200:
            return reply
        if reply.code == 511:
            self._hungup = True
            raise AgiHangup(message="command not permitted on a dead channel", command=command)
        raise AgiCommandError(
            message=f"AGI command {command!r} failed with {reply.code}",
            command=command,
            code=reply.code,
            reply=reply.text,
        )


AgiHandler = Callable[[AgiSession], Awaitable[None]]


class FastAgiServer:
    """Listens for FastAGI connections and runs ``handlers[script]`` for each.

    ``command_timeout`` and ``session_timeout`` are seconds (see the module docstring). Counters
    for metrics (plain ints): ``sessions_total``, ``sessions_active``, ``errors`` (sessions that
    ended abnormally: protocol errors, early close, timeouts, handler exceptions) and
    ``unknown_scripts``.
    """

    def __init__(
        self,
        host: str,
        port: int,
        handlers: Mapping[str, AgiHandler],
        *,
        command_timeout: float = 2.0,
        session_timeout: float = 10.0,
    ) -> None:
        if command_timeout <= 0 or session_timeout <= 0:
            raise ValueError("AGI timeouts must be positive seconds")
        self._host = host
        self._port = port
        self._handlers = dict(handlers)
        self._command_timeout = command_timeout
        self._session_timeout = session_timeout
        self._server: asyncio.Server | None = None
        self._closing = False
        self._tasks: set[asyncio.Task[None]] = set()
        self.sessions_total = 0
        self.sessions_active = 0
        self.errors = 0
        self.unknown_scripts = 0

    @property
    def port(self) -> int:
        """The bound port once started (useful with ``port=0``), else the configured one."""
        if self._server is None or not self._server.sockets:
            return self._port
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        """Bind and listen. Raises AgiError (``details['host']``, ``['port']``) if binding fails."""
        if self._server is not None:
            return
        self._closing = False
        try:
            # a burst of calls must not overflow asyncio's default backlog of 100: a refused
            # connect costs the caller Asterisk's AGI retry delay
            self._server = await asyncio.get_running_loop().create_server(
                self._new_wire, self._host, self._port, backlog=LISTEN_BACKLOG
            )
        except OSError as exc:
            raise AgiError(
                message=f"cannot listen for FastAGI on {self._host}:{self._port}: {exc}",
                host=self._host,
                port=self._port,
            ) from exc
        log.info("FastAGI listening on %s:%d", self._host, self.port)

    async def aclose(self, *, grace: float = 1.0) -> None:
        """Stop listening, let running sessions finish for ``grace`` seconds, cancel the rest."""
        self._closing = True
        server, self._server = self._server, None
        if server is not None:
            server.close()
        while self._tasks:
            tasks = set(self._tasks)
            if grace > 0:
                await asyncio.wait(tasks, timeout=grace)
                grace = 0
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self._tasks -= tasks
        if server is not None:
            await server.wait_closed()

    def _new_wire(self) -> AgiWire:
        return AgiWire(self._on_connect)

    def _on_connect(self, wire: AgiWire) -> None:
        """A connection was accepted: start its session task (owned here, ended by aclose)."""
        if self._closing:
            wire.abort()
            return
        task = asyncio.get_running_loop().create_task(self._on_client(wire))
        self._tasks.add(task)
        task.add_done_callback(self._session_done)

    def _session_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("AGI session task failed: %s", _describe(exc))

    async def _on_client(self, wire: AgiWire) -> None:
        self.sessions_total += 1
        self.sessions_active += 1
        try:
            await self._serve(wire)
        finally:
            self.sessions_active -= 1
            await wire.aclose(CLOSE_TIMEOUT)

    async def _serve(self, wire: AgiWire) -> None:
        env: AgiEnvironment | None = None
        try:
            async with asyncio.timeout(self._session_timeout):
                env = await self._read_environment(wire)
                await self._dispatch(AgiSession(env, wire, command_timeout=self._command_timeout))
        except TimeoutError:
            self.errors += 1
            log.warning(
                "AGI session exceeded %.1f s, closed: %s", self._session_timeout, _context(env)
            )
        except AgiHangup as exc:
            if env is not None:
                log.info("AGI channel hung up: %s", _context(env))
            elif wire.received == 0:
                log.debug("AGI connection closed without sending anything (a TCP probe?)")
            else:
                self.errors += 1
                log.warning("AGI peer closed before the end of the environment: %s", exc.message)
        except AgiError as exc:
            self.errors += 1
            log.warning("AGI session failed (%s): %s", _safe(exc.message), _context(env))

    async def _read_environment(self, wire: AgiWire) -> AgiEnvironment:
        try:
            deadline = asyncio.get_running_loop().time() + self._command_timeout
            message = await wire.next_message(deadline)
        except TimeoutError as exc:
            raise AgiTimeout(
                message="no complete AGI environment in time", timeout=self._command_timeout
            ) from exc
        if not isinstance(message, AgiEnvironment):
            raise AgiProtocolError(message="AGI session did not start with an environment")
        return message

    async def _dispatch(self, session: AgiSession) -> None:
        handler = self._handlers.get(session.env.script)
        if handler is None:
            await self._unknown_script(session)
            return
        try:
            await handler(session)
        except AgiHangup:
            raise
        except AgiError as exc:
            self.errors += 1
            log.warning(
                "AGI handler stopped by %s (%s): %s",
                type(exc).__name__,
                _safe(exc.message),
                _context(session.env),
            )
        except Exception as exc:
            self.errors += 1
            log.error("AGI handler failed: %s; %s", _describe(exc), _context(session.env))

    async def _unknown_script(self, session: AgiSession) -> None:
        self.unknown_scripts += 1
        log.warning("AGI script has no handler: %s", _context(session.env))
        try:
            await session.verbose("callserver: no handler for this AGI script", 1)
        except AgiError as exc:
            log.info("AGI notice for an unknown script not delivered: %s", _safe(exc.message))


def _safe(text: str) -> str:
    """Untrusted text for a log line: phone-like digit runs masked, control characters escaped."""
    return escape_control(_PHONE_LIKE.sub(lambda m: mask(m.group()), text))


def _context(env: AgiEnvironment | None) -> str:
    """``script=… channel=… uniqueid=… caller=***4567`` for log lines (escaped, masked)."""
    if env is None:
        return "no environment"
    return (
        f"script={escape_control(env.script)} channel={escape_control(env.channel)}"
        f" uniqueid={escape_control(env.uniqueid)} caller={mask(env.callerid)}"
    )


def _describe(exc: BaseException) -> str:
    """``ValueError: … at routing/x.py:12 in f <- …``: one line, message masked and escaped."""
    frames = traceback.extract_tb(exc.__traceback__)[-4:]
    where = " <- ".join(f"{f.filename}:{f.lineno} in {f.name}" for f in reversed(frames))
    return f"{type(exc).__name__}: {_safe(str(exc))} at {escape_control(where)}"
