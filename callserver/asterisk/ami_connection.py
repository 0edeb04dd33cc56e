"""AMI client: one owned background task that connects, logs in, reads, pings and reconnects.

``AmiClient.start()`` never raises because Asterisk is down: the task keeps retrying with
exponential backoff and jitter (``reconnect_min`` … ``reconnect_max`` seconds). After every
successful login ``on_connected()`` runs (the composition root resynchronises the live model from
``CoreShowChannels`` and ``QueueStatus`` there) while events keep flowing to ``on_event``.

Actions carry a generated ``ActionID``; the matching ``Response`` resolves the caller's future.
Event-list actions (``send_list_action``) collect the events carrying their ActionID up to the
``EventList: Complete`` event; those events are *not* passed to ``on_event``. ``originate`` waits
for the ``OriginateResponse`` event of an ``Async: true`` Originate (that event also goes to
``on_event``). Pending actions fail with ``AmiConnectionError`` when the connection drops.

The secret is only ever written to the socket, never logged nor put in an error.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Literal

from callserver.asterisk.ami_codec import AmiCodec, AmiMessage, encode_action
from callserver.asterisk.ami_pending import Mode, Pending, first_error
from callserver.asterisk.errors import (
    AmiActionError,
    AmiAuthError,
    AmiConnectionError,
    AmiError,
    AmiTimeout,
)
from callserver.config import AmiConfig
from callserver.core.backoff import Backoff
from callserver.core.tasks import cancel_and_wait

log = logging.getLogger(__name__)

Headers = Mapping[str, str | Sequence[str]]
State = Literal["disconnected", "connecting", "connected", "auth_failed"]
READ_SIZE = 65536
CLIENT_EVENTS = ("OriginateResponse",)
"""Events the client itself reads (``originate``); event-list items are never filtered."""


class AmiClient:
    """Asterisk Manager Interface client with reconnect; see the module docstring.

    Gauges/counters for metrics: ``state``, ``reconnects`` (connections lost after a login),
    ``connect_attempts``, ``events_received``, ``callback_errors``, ``last_error`` (text, never
    the secret), ``next_retry_in`` (seconds of the last backoff), ``last_message_at`` (``clock``).
    """

    def __init__(
        self,
        config: AmiConfig,
        *,
        on_event: Callable[[AmiMessage], None],
        on_connected: Callable[[], Awaitable[None]] | None = None,
        clock: Callable[[], float] = time.monotonic,
        event_filters: Sequence[tuple[str, str]] = (),
    ) -> None:
        self._config = config
        self._event_filters = tuple(event_filters)
        self._filters_refused = False
        self._on_event = on_event
        self._on_connected = on_connected
        self._clock = clock
        self._task: asyncio.Task[None] | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._pending: dict[str, Pending] = {}
        self._ids = itertools.count(1)
        self._id_prefix = f"cs-{secrets.token_hex(3)}-"
        self._connected = asyncio.Event()
        self._closing = False
        self._logged_in = False
        self.state: State = "disconnected"
        self.reconnects = 0
        self.connect_attempts = 0
        self.events_received = 0
        self.callback_errors = 0
        self.last_error: str | None = None
        self.next_retry_in = 0.0
        self.last_message_at: float | None = None

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Start the background task (idempotent). Does not wait for, nor need, a live peer."""
        if self._task is None or self._task.done():
            self._closing = False
            self._task = asyncio.create_task(self._run(), name="ami-client")

    async def aclose(self) -> None:
        """Log off (≤ 1 s), stop the task, fail pending actions. Safe to call twice."""
        task, self._task = self._task, None
        if task is None:
            return
        self._closing = True
        if self.state == "connected":
            with contextlib.suppress(AmiError):
                await self.send_action("Logoff", timeout=min(1.0, self._config.action_timeout))
        await cancel_and_wait(task)
        self.state = "disconnected"

    async def wait_connected(self, timeout: float) -> None:  # noqa: ASYNC109 - names the cause
        """Wait until logged in; raises ``AmiTimeout`` after ``timeout`` seconds."""
        try:
            async with asyncio.timeout(timeout):
                await self._connected.wait()
        except TimeoutError:
            raise AmiTimeout(
                message=f"AMI not connected within {timeout}s: {self.last_error}", timeout=timeout
            ) from None

    # ------------------------------------------------------------------ actions

    async def send_action(
        self,
        action: str,
        headers: Headers | None = None,
        *,
        timeout: float,  # noqa: ASYNC109 - per-action deadline, turned into AmiTimeout
    ) -> AmiMessage:
        """Send ``action`` and return its ``Response`` (within ``timeout`` seconds).

        Raises ``AmiActionError`` (``Response: Error``), ``AmiTimeout``, ``AmiConnectionError``
        (not connected, or the connection dropped) and ``ValueError`` when a header name or value
        contains CR/LF (header injection).
        """
        result: AmiMessage = await self._request(action, headers, "single", timeout)
        return result

    async def send_list_action(
        self,
        action: str,
        headers: Headers | None = None,
        *,
        timeout: float,  # noqa: ASYNC109 - per-action deadline, turned into AmiTimeout
    ) -> list[AmiMessage]:
        """Send an event-list action (``CoreShowChannels``, ``QueueStatus``, ``QueueSummary`` …)
        and return its item events, without the final ``EventList: Complete`` event.
        ``timeout`` (seconds) covers the whole list. Errors as ``send_action``."""
        result: list[AmiMessage] = await self._request(action, headers, "list", timeout)
        return result

    async def originate(
        self,
        headers: Headers,
        *,
        timeout: float,  # noqa: ASYNC109 - per-action deadline, turned into AmiTimeout
    ) -> AmiMessage:
        """Send ``Originate`` with ``Async: true`` and return its ``OriginateResponse`` event
        (``Response: Success|Failure``, ``Reason``, ``Uniqueid``). ``timeout`` (seconds) must
        cover the dial time (Originate's own ``Timeout`` header is in milliseconds).
        Errors as ``send_action``."""
        merged = {**headers, "Async": "true"}
        result: AmiMessage = await self._request("Originate", merged, "originate", timeout)
        return result

    async def _request(
        self,
        action: str,
        headers: Headers | None,
        mode: Mode,
        timeout: float,  # noqa: ASYNC109
    ) -> Any:
        writer = self._writer
        if writer is None or self.state != "connected":
            raise AmiConnectionError(
                message=f"AMI not connected ({self.state}); cannot send {action}", action=action
            )
        action_id = f"{self._id_prefix}{next(self._ids)}"
        frame = encode_action(action, action_id, headers)
        pending = Pending(action, mode, asyncio.get_running_loop().create_future())
        self._pending[action_id] = pending
        try:
            async with asyncio.timeout(timeout):
                writer.write(frame)
                await writer.drain()
                return await pending.future
        except TimeoutError:
            raise AmiTimeout(
                message=f"AMI {action} got no answer within {timeout}s",
                action=action,
                action_id=action_id,
            ) from None
        except OSError as exc:
            raise AmiConnectionError(message=f"AMI write failed: {exc}", action=action) from exc
        finally:
            self._pending.pop(action_id, None)

    # ------------------------------------------------------------------ the owned task

    async def _run(self) -> None:
        """Supervise sessions until ``aclose``. The ``_closing`` check matters: on 3.11 a
        TaskGroup may absorb our cancel when it lands while a child is failing."""
        backoff = Backoff(self._config.reconnect_min, self._config.reconnect_max)
        while not self._closing:
            self._logged_in = False
            try:
                await self._session()
            except AmiAuthError as exc:
                self._lost("auth_failed", exc)
                log.error("%s; retrying with backoff", exc)
            except (AmiError, OSError) as exc:
                self._lost("disconnected", exc)
                if not self._closing:
                    log.warning("AMI %s:%s: %s", self._config.host, self._config.port, exc)
            except Exception as exc:  # a bug must not end the supervisor: log it, retry
                self._lost("disconnected", exc)
                log.exception("AMI session crashed")
            if self._closing:
                return
            if self._logged_in:
                backoff.reset()
                self.reconnects += 1
            self.next_retry_in = backoff.next()
            await asyncio.sleep(self.next_retry_in)

    def _lost(self, state: State, exc: BaseException) -> None:
        self.state = state
        self.last_error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__

    async def _session(self) -> None:
        """One connection: connect, log in, read/ping until it fails; raises what ended it.
        Sets ``_logged_in`` once the login succeeded."""
        cfg = self._config
        self.state = "connecting"
        self.connect_attempts += 1
        try:
            async with asyncio.timeout(cfg.connect_timeout):
                reader, writer = await asyncio.open_connection(cfg.host, cfg.port)
        except (OSError, TimeoutError) as exc:
            raise AmiConnectionError(
                message=f"cannot connect to {cfg.host}:{cfg.port}: {str(exc) or 'timeout'}"
            ) from exc
        try:
            codec, early = await self._login(reader, writer)
            self._logged_in = True
            self._writer = writer
            self.state = "connected"
            self._connected.set()
            log.info("AMI connected to %s:%s as %r", cfg.host, cfg.port, cfg.username)
            for msg in early:
                self._dispatch(msg)
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self._read_loop(reader, codec))
                tg.create_task(self._ping_loop())
                tg.create_task(self._add_filters())
                tg.create_task(self._call_on_connected())
        except BaseExceptionGroup as group:
            raise first_error(group) from None
        finally:
            self._connected.clear()
            self._writer = None
            self._fail_pending()
            writer.close()

    async def _login(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> tuple[AmiCodec, list[AmiMessage]]:
        """Read the banner, send Login, wait for its response (``connect_timeout`` seconds).
        Returns the codec and the messages that came after the response. Raises AmiAuthError
        (refused), AmiConnectionError (closed, timeout, not AMI)."""
        cfg = self._config
        action_id = f"{self._id_prefix}{next(self._ids)}"
        headers = {"Username": cfg.username, "Secret": cfg.secret, "Events": "on"}
        writer.write(encode_action("Login", action_id, headers))
        codec = AmiCodec()
        try:
            async with asyncio.timeout(cfg.connect_timeout):
                await writer.drain()
                while True:
                    data = await reader.read(READ_SIZE)
                    if not data:
                        raise AmiConnectionError(message="AMI connection closed during login")
                    messages = codec.feed(data)
                    for i, msg in enumerate(messages):
                        if msg.kind == "response" and msg.action_id == action_id:
                            self._check_login(msg)
                            return codec, messages[i + 1 :]
        except (OSError, TimeoutError) as exc:
            raise AmiConnectionError(message=f"AMI login failed: {str(exc) or 'timeout'}") from exc

    async def _add_filters(self) -> None:
        """Ask Asterisk to keep back the events nobody here reads (``Filter``, per session).
        They are exclude filters: each one added only takes away events nobody reads, so
        events flow from the login on and a refusal halfway leaves a session that still gets
        everything it needs. Refused: warn once and go on with what was added."""
        if self._filters_refused:
            return
        added = 0
        for criteria, pattern in self._event_filters:
            headers = {"Operation": "Add", "Filter": pattern}
            if criteria:
                headers["MatchCriteria"] = criteria
            try:
                await self.send_action("Filter", headers, timeout=self._config.action_timeout)
            except AmiActionError as exc:
                self._filters_refused = True
                log.warning(
                    "AMI Filter refused (%s) after %d of %d: callserver receives events it "
                    "does not read, which costs CPU (grant write = system to user %r in "
                    "manager.conf)", exc, added, len(self._event_filters), self._config.username,
                )  # fmt: skip
                return
            added += 1
        if added:
            log.info("AMI event filters added: %d", added)

    def _check_login(self, response: AmiMessage) -> None:
        if response.name != "Error":
            return
        cfg = self._config
        raise AmiAuthError(
            message=(
                f"AMI login refused for user {cfg.username!r} at {cfg.host}:{cfg.port}: "
                f"{response.get('Message')!r} (check [ami] username and secret)"
            ),
            username=cfg.username,
        )

    async def _read_loop(self, reader: asyncio.StreamReader, codec: AmiCodec) -> None:
        """Read until EOF or error. A read deadline of ping_interval + 2 × action_timeout: even an
        idle Asterisk answers our pings within that time."""
        deadline = self._config.ping_interval + 2 * self._config.action_timeout
        while True:
            try:
                async with asyncio.timeout(deadline):
                    data = await reader.read(READ_SIZE)
            except (OSError, TimeoutError) as exc:
                raise AmiConnectionError(
                    message=f"AMI read failed: {str(exc) or 'timeout'}"
                ) from exc
            if not data:
                raise AmiConnectionError(message="AMI connection closed by peer")
            self.last_message_at = self._clock()
            for msg in codec.feed(data):
                self._dispatch(msg)

    def _dispatch(self, msg: AmiMessage) -> None:
        kind = msg.kind
        if kind == "event":
            self.events_received += 1
            # hot path: only look for an ActionID while some action waits for its events
            if self._pending and (action_id := msg.action_id) is not None:
                pending = self._pending.get(action_id)
                if pending is not None and pending.on_event(msg):
                    return
            try:
                self._on_event(msg)
            except Exception:
                self.callback_errors += 1
                log.exception("AMI on_event callback failed on %r", msg.name)
        elif kind == "response":
            pending = self._pending.get(msg.action_id or "")
            if pending is not None:
                pending.on_response(msg)
            else:
                log.debug("AMI response for unknown ActionID %r", msg.action_id)
        elif kind == "banner":
            log.debug("AMI banner %r", msg.name)

    async def _ping_loop(self) -> None:
        cfg = self._config
        while True:
            await asyncio.sleep(cfg.ping_interval)
            try:
                await self.send_action("Ping", timeout=cfg.action_timeout)
            except AmiTimeout as exc:
                raise AmiConnectionError(message="AMI ping: no pong, reconnecting") from exc

    async def _call_on_connected(self) -> None:
        if self._on_connected is None:
            return
        try:
            await self._on_connected()
        except AmiConnectionError:
            raise
        except Exception:
            self.callback_errors += 1
            log.exception("AMI on_connected callback failed")

    def _fail_pending(self) -> None:
        pending, self._pending = self._pending, {}
        for item in pending.values():
            item.fail(AmiConnectionError(message=f"AMI connection lost during {item.action}"))
