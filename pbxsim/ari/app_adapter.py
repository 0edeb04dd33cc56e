"""``AriApp``: the Stasis application behind ``/ari/events?app=NAME`` websockets.

The app is registered in the engine's ``StasisRegistry`` while at least one websocket of
that name is connected (a previously registered app, e.g. a scenario's built-in one, is
put back when the last socket leaves). ``run`` announces the channel (StasisStart) and
keeps it in Stasis until the client hangs it up, sends it back to the dialplan
(``continue``) or the caller hangs up; the REST handlers act on the session meanwhile.
"""

from __future__ import annotations

import asyncio
import logging

from pbxsim.ari.core import AriCore
from pbxsim.ari.json_shapes import Json, dumps, for_app
from pbxsim.stasis import StasisApp, StasisEvent
from pbxsim.stasis_session import StasisSession

log = logging.getLogger("pbxsim.ari")
SOCKET_QUEUE = 10_000
"""Events buffered per websocket; a client that falls this far behind is disconnected."""
END_EVENT = StasisEvent("ari-end")
"""Put on ``session.events`` by the REST side to make ``run`` return."""


class Outbox:
    """The queue of one websocket's outgoing frames; ``overflowed`` once it was full."""

    def __init__(self, size: int = SOCKET_QUEUE) -> None:
        self.queue: asyncio.Queue[str] = asyncio.Queue(size)
        self.overflowed = False

    def put(self, frame: str) -> None:
        try:
            self.queue.put_nowait(frame)
        except asyncio.QueueFull:
            self.overflowed = True


class AriApp:
    """One ARI application: its websockets, and ``run`` for channels entering Stasis."""

    def __init__(self, core: AriCore, name: str) -> None:
        self.core = core
        self.name = name
        self.outboxes: set[Outbox] = set()
        self._previous: StasisApp | None = None

    def publish(self, ev: Json) -> None:
        """Send ``ev`` (without asterisk_id/application) to every socket of this app."""
        if not self.outboxes:
            return
        frame = dumps(for_app(ev, self.core.entity_id, self.name))
        for box in self.outboxes:
            box.put(frame)

    def connect(self, box: Outbox) -> None:
        """A websocket joined; the first one registers the app with the engine."""
        registry = self.core.engine.stasis
        if not self.outboxes:
            current = registry.get(self.name)
            self._previous = current if current is not self else None
            registry.register(self.name, self)
        self.outboxes.add(box)

    def disconnect(self, box: Outbox) -> None:
        """A websocket left; after the last one Stasis() for this app fails again."""
        self.outboxes.discard(box)
        if self.outboxes:
            return
        registry = self.core.engine.stasis
        registry.unregister(self.name, self)
        if self._previous is not None:
            registry.register(self.name, self._previous)
            self._previous = None

    async def run(self, session: StasisSession) -> None:
        """StasisStart, then wait for the end (ARI hangup/continue, or the caller's hangup)."""
        rec = self.core.begin_session(self, session)
        try:
            while True:
                ev = await session.events.get()
                if ev is END_EVENT or ev.kind == "hangup":
                    return
        finally:
            self.core.end_session(rec)
