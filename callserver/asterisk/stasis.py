"""ARI events → plugins: each call's StasisStart handled in its own owned task.

The ARI events reader must never wait on one call: a CRM lookup (up to 150 ms) or a REST call
(up to ``request_timeout``) for one caller would hold up every other ARI event. So
``StasisDispatcher.on_event`` (the reader's callback) only does quick work: every event goes to
the quick handlers, and a caller's StasisStart starts a task that runs the per-call handlers in
order. At most ``max_calls`` such tasks run at once; beyond that the call is sent back to the
dialplan (``continue``, so the caller is not stranded in Stasis), logged and counted.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol

from callserver.asterisk.ari_rest import clean
from callserver.asterisk.errors import AriError
from callserver.core.tasks import cancel_and_wait

log = logging.getLogger(__name__)

AriEvent = Mapping[str, Any]
StasisHandler = Callable[[AriEvent], Awaitable[None]]
QuickHandler = Callable[[AriEvent], None]

MEDIA_CHANNELS = ("UnicastRTP/", "Snoop/", "AudioSocket/", "Announcer/", "WebSocket/")
"""Channels our own Stasis app creates (externalMedia, snoop …): not callers."""


class ContinuePort(Protocol):
    async def continue_in_dialplan(self, channel_id: str) -> None: ...


def caller_channel(event: AriEvent) -> Mapping[str, Any] | None:
    """The channel of a StasisStart that is a caller entering the app, else None."""
    if event.get("type") != "StasisStart" or event.get("replace_channel"):
        return None
    channel = event.get("channel")
    if not isinstance(channel, Mapping) or not isinstance(channel.get("id"), str):
        return None
    if str(channel.get("name", "")).startswith(MEDIA_CHANNELS):
        return None
    return channel


class StasisDispatcher:
    """The ARI reader's ``on_event``; owns the per-call tasks (``aclose`` cancels them).

    Counters: ``calls_started``, ``calls_refused`` (over ``max_calls``), ``handler_errors``.
    """

    def __init__(
        self,
        ari: ContinuePort,
        *,
        stasis_handlers: Sequence[StasisHandler],
        quick_handlers: Sequence[QuickHandler] = (),
        max_calls: int = 200,
    ) -> None:
        self._ari = ari
        self._stasis = list(stasis_handlers)
        self._quick = list(quick_handlers)
        self._max_calls = max_calls
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._closing = False
        self.calls_started = 0
        self.calls_refused = 0
        self.handler_errors = 0

    @property
    def active(self) -> int:
        return len(self._tasks)

    def on_event(self, event: AriEvent) -> None:
        """Never blocks and never raises (one handler failing does not stop the others)."""
        for handler in self._quick:
            try:
                handler(event)
            except Exception:
                self.handler_errors += 1
                log.exception("ARI handler %r failed on %s", handler, clean(event.get("type")))
        channel = caller_channel(event)
        if channel is None or not self._stasis or self._closing:
            return
        channel_id = str(channel["id"])
        if len(self._tasks) >= self._max_calls:
            self._refuse(channel_id)
            return
        self.calls_started += 1
        task = asyncio.create_task(self._run(event), name=f"stasis-call-{channel_id}")
        self._own(channel_id, task)

    async def _run(self, event: AriEvent) -> None:
        for handler in self._stasis:
            try:
                await handler(event)
            except Exception:
                self.handler_errors += 1
                log.exception("Stasis handler %r failed for channel %s", handler,
                              clean(event["channel"].get("id")))  # fmt: skip

    def _refuse(self, channel_id: str) -> None:
        self.calls_refused += 1
        log.warning(
            "ARI: %d calls already in the Stasis app (max_calls): channel %s goes back to the "
            "dialplan", len(self._tasks), clean(channel_id),
        )  # fmt: skip
        task = asyncio.create_task(self._continue(channel_id), name=f"stasis-refuse-{channel_id}")
        self._own(f"refuse:{channel_id}", task)

    def _own(self, key: str, task: asyncio.Task[None]) -> None:
        self._tasks[key] = task
        task.add_done_callback(functools.partial(self._forget, key))

    def _forget(self, key: str, _task: asyncio.Task[None]) -> None:
        self._tasks.pop(key, None)

    async def _continue(self, channel_id: str) -> None:
        try:
            await self._ari.continue_in_dialplan(channel_id)
        except AriError as exc:
            log.warning("ARI: could not continue refused channel %s: %s", clean(channel_id), exc)

    async def start(self) -> None:
        self._closing = False

    async def aclose(self) -> None:
        """Cancel the calls' tasks and wait for them (their channels continue or hang up)."""
        self._closing = True
        for task in list(self._tasks.values()):
            await cancel_and_wait(task)
