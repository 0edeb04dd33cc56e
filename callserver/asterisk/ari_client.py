"""ARI client on aiohttp: the Stasis events WebSocket plus every REST call of ``AriRest``.

Opening ``GET {url}/events?app={app}&subscribeAll=false`` (basic auth) registers the Stasis
application; the reader keeps it open, reconnecting with exponential backoff (``reconnect_min``
seconds doubling up to ``AriConfig.reconnect_max``; only a session that stayed up that long resets
it, so a peer that accepts and drops at once is not hammered) and hands each decoded event to
``on_event`` in arrival order (awaited before the next frame is read: a slow handler delays the
events behind it).
A frame that is not a JSON object is logged and skipped; an ``on_event`` that raises is logged and
never stops the reader. ``connected``, ``reconnects`` (successful connects after the first),
``events_received``, ``bad_frames``, ``handler_errors`` and ``last_error`` are plain attributes for
health and metrics.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import time
from collections.abc import Awaitable, Callable

import aiohttp

from callserver.asterisk.ari_models import AriEvent
from callserver.asterisk.ari_rest import AriRest, clean
from callserver.asterisk.errors import AriError, AriHttpError, AriTimeout
from callserver.config import AriConfig
from callserver.core.backoff import Backoff

log = logging.getLogger(__name__)

EventHandler = Callable[[AriEvent], Awaitable[None] | None]


class AriClient(AriRest):
    """One Asterisk's ARI: REST calls (inherited) and the Stasis app's events WebSocket.

    ``heartbeat`` (seconds) pings the WebSocket so that a silently dead peer is noticed; connecting
    is bounded by ``AriConfig.request_timeout``.
    """

    def __init__(
        self,
        config: AriConfig,
        *,
        on_event: EventHandler,
        session: aiohttp.ClientSession | None = None,
        reconnect_min: float = 0.5,
        heartbeat: float = 20.0,
    ) -> None:
        super().__init__(config, session=session)
        self._on_event = on_event
        self._reconnect_min = reconnect_min
        self._heartbeat = heartbeat
        self._reader: asyncio.Task[None] | None = None
        self._up = asyncio.Event()
        self.connected = False
        self.reconnects = 0
        self.events_received = 0
        self.bad_frames = 0
        self.handler_errors = 0
        self.last_error: AriError | None = None

    async def start(self) -> None:
        """Start the events reader in the background; returns at once (see ``wait_connected``)."""
        if self._reader is None:
            self._closed = False
            self._reader = asyncio.create_task(self._run_events(), name="ari-events")

    async def wait_connected(self, timeout: float) -> None:  # noqa: ASYNC109 - error names cause
        """Wait up to ``timeout`` seconds for the events WebSocket to be open.

        Raises AriTimeout whose message names the last connect error (e.g. the 401 of a wrong
        password), chained from that error.
        """
        try:
            async with asyncio.timeout(timeout):
                await self._up.wait()
        except TimeoutError as exc:
            reason = f": {self.last_error}" if self.last_error is not None else ""
            raise AriTimeout(
                message=f"ARI events not connected within {timeout}s{reason}", timeout=timeout
            ) from (self.last_error or exc)

    async def aclose(self) -> None:
        """Stop the reader (closing the WebSocket), then close the session if we own it."""
        task, self._reader = self._reader, None
        if task is not None:
            task.cancel()
            await asyncio.wait([task])
            if not task.cancelled() and task.exception() is not None:
                log.error("ARI events reader had failed", exc_info=task.exception())
        self._set_connected(False)
        await super().aclose()

    def _set_connected(self, up: bool) -> None:
        self.connected = up
        if up:
            self._up.set()
        else:
            self._up.clear()

    async def _run_events(self) -> None:
        backoff = Backoff(self._reconnect_min, self._config.reconnect_max)
        ever_connected = False
        while True:
            try:
                ws = await self._connect_events()
            except AriError as exc:
                self.last_error = exc
                delay = backoff.next()
                log.warning("ARI events: %s; retrying in %.2f s", exc, delay)
                await asyncio.sleep(delay)
                continue
            if ever_connected:
                self.reconnects += 1
            ever_connected = True
            self.last_error = None
            opened = time.monotonic()
            try:
                await self._read_events(ws)
            except Exception:
                log.exception("ARI events reader failed unexpectedly; reconnecting")
            finally:
                self._set_connected(False)
                await ws.close()
            if time.monotonic() - opened >= self._config.reconnect_max:
                backoff.reset()  # it was a healthy session: back off from the start
            delay = backoff.next()
            log.warning("ARI events closed (code %s); reconnecting in %.2f s", ws.close_code, delay)
            await asyncio.sleep(delay)

    async def _connect_events(self) -> aiohttp.ClientWebSocketResponse:
        """Open the events WebSocket within ``request_timeout``; raises AriHttpError (e.g. 401),
        AriTimeout or AriConnectionError."""
        url = self._url("events")
        params = {"app": self._config.app, "subscribeAll": "false"}
        timeout = self._config.request_timeout
        try:
            async with asyncio.timeout(timeout):
                ws = await self._get_session().ws_connect(
                    url,
                    params=params,
                    headers=self._headers,
                    heartbeat=self._heartbeat,
                    timeout=aiohttp.ClientWSTimeout(ws_close=timeout),
                )
        except aiohttp.WSServerHandshakeError as exc:
            hint = " (check ari.username / ari.password)" if exc.status == 401 else ""
            raise AriHttpError(
                message=f"ARI refused the events WebSocket: {exc.status} {clean(exc.message)}"
                f"{hint}",
                status=exc.status,
                body=clean(exc.message),
                method="GET",
                path=url.raw_path,
            ) from exc
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise self._transport_error("GET", url, exc) from exc
        self._set_connected(True)
        log.info("ARI events connected: app %s at %s", clean(self._config.app), url.raw_path)
        return ws

    async def _read_events(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        """Dispatch frames until the peer closes, the heartbeat fails or the read errors."""
        try:
            async for msg in ws:
                if msg.type is aiohttp.WSMsgType.TEXT:
                    await self._dispatch(msg.data)
                elif msg.type is aiohttp.WSMsgType.ERROR:
                    log.warning("ARI events WebSocket error: %s", clean(ws.exception()))
                    return
                else:
                    self.bad_frames += 1
                    log.warning("ARI events: skipped a %s frame", msg.type.name)
        except (aiohttp.ClientError, OSError) as exc:
            log.warning("ARI events WebSocket read failed: %s", clean(exc))

    async def _dispatch(self, data: str) -> None:
        """Decode one frame and await ``on_event``; never raises except CancelledError."""
        try:
            event = json.loads(data)
        except (ValueError, RecursionError):
            event = None
        if not isinstance(event, dict):
            self.bad_frames += 1
            log.warning(
                "ARI events: skipped a frame that is not a JSON object (%d chars)", len(data)
            )
            return
        self.events_received += 1
        try:
            result = self._on_event(event)
            if inspect.isawaitable(result):
                await result
        except Exception:
            self.handler_errors += 1
            channel = event.get("channel")
            log.exception(
                "ARI events: on_event failed for %s (channel %s)",
                clean(event.get("type")),
                clean(channel.get("id") if isinstance(channel, dict) else None),
            )
