"""The bot's run-time: who gets a bot session, how ARI events and freed operators reach it.

* ``BotStasisHandler`` (a Stasis handler; runs after routing's, which set ``ROUTE_*``): a caller
  whose ``ROUTE_MODE`` is ``bot`` (the channel variable, else the dialplan's third Stasis
  argument) gets a ``BotSession``; beyond ``max_calls`` the call goes back to its queue.
* ``EventRouter`` (a quick ARI handler): PlaybackFinished by playback id, DTMF and the caller's
  StasisEnd / hang-up by channel id, into the session's inbox. Never blocks.
* ``OperatorWatch`` (a bus subscriber): an operator becoming free (``not_inuse``, not paused)
  frees the longest-waiting bot call of each of the operator's queues.
"""

from __future__ import annotations

import collections
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from callserver.asterisk.ari_rest import clean
from callserver.asterisk.errors import AriError
from callserver.core.events import AgentSnapshot, AgentStatusChanged, DomainEvent
from callserver.core.phone import mask
from ivr.models import Dtmf, Lang, OperatorFreed
from ivr.session import AriPort, BotSession, CallGone, CallInfo, PlaybackDone

log = logging.getLogger(__name__)
DTMF_DIGITS = frozenset("0123456789*#ABCD")
RECENT = 200
GONE_EVENTS = ("StasisEnd", "ChannelHangupRequest", "ChannelDestroyed")
SessionFactory = Callable[[CallInfo], BotSession]


def _id(obj: object) -> str:
    value = obj.get("id") if isinstance(obj, Mapping) else None
    return value if isinstance(value, str) else ""


class EventRouter:
    """Routes ARI events to running sessions (see the module doc)."""

    def __init__(self) -> None:
        self.sessions: dict[str, BotSession] = {}
        self.playbacks: dict[str, BotSession] = {}

    def add(self, session: BotSession) -> None:
        self.sessions[session.call.channel_id] = session
        session.own_playback = lambda pid: self.playbacks.__setitem__(pid, session)

    def remove(self, session: BotSession) -> None:
        self.sessions.pop(session.call.channel_id, None)
        for pid in [p for p, s in self.playbacks.items() if s is session]:
            del self.playbacks[pid]

    def __call__(self, event: Mapping[str, Any]) -> None:
        kind = event.get("type")
        if kind == "PlaybackFinished":
            pid = _id(event.get("playback"))
            session = self.playbacks.pop(pid, None)
            if session is not None:
                session.put(PlaybackDone(pid))
            return
        session = self.sessions.get(_id(event.get("channel")))
        if session is None:
            return
        if kind == "ChannelDtmfReceived":
            digit = event.get("digit")
            if isinstance(digit, str) and digit in DTMF_DIGITS:
                session.put(Dtmf(digit))
        elif kind in GONE_EVENTS:
            session.put(CallGone(left=kind == "StasisEnd"))


def is_free(agent: AgentSnapshot) -> bool:
    """An operator who can take a call now."""
    return agent.status == "not_inuse" and not agent.paused and not agent.in_call


class OperatorWatch:
    """Bus subscriber: an operator turning free sends the oldest waiting bot call of each of
    their queues back (one call per operator per change)."""

    def __init__(self, router: EventRouter) -> None:
        self._router = router
        self._free: dict[str, bool] = {}
        self._freed: set[str] = set()
        self.freed_total = 0

    def __call__(self, event: DomainEvent) -> None:
        if not isinstance(event, AgentStatusChanged):
            return
        agent = event.agent
        free, was = is_free(agent), self._free.get(agent.interface, False)
        self._free[agent.interface] = free
        if not free or was:
            return
        for queue in agent.queues:
            waiting = [s for s in self._router.sessions.values()
                       if s.call.queue == queue and s.call.channel_id not in self._freed
                       and s.dialog.state not in ("idle", "goodbye", "done")]  # fmt: skip
            if waiting:
                first = min(waiting, key=lambda s: s.transcript.started)
                self._freed.add(first.call.channel_id)
                self.freed_total += 1
                first.put(OperatorFreed())
                return

    def forget(self, channel_id: str) -> None:
        self._freed.discard(channel_id)


class BotStasisHandler:
    """The plugin's Stasis handler (see the module doc); ``recent`` keeps the last transcripts."""

    def __init__(self, ari: AriPort, router: EventRouter, watch: OperatorWatch,
                 make_session: SessionFactory, *, max_calls: int, language: Lang,
                 use_route_language: bool) -> None:  # fmt: skip
        self._ari, self._router, self._watch = ari, router, watch
        self._make = make_session
        self.max_calls, self.language = max_calls, language
        self.use_route_language = use_route_language
        self.recent: collections.deque[dict[str, object]] = collections.deque(maxlen=RECENT)
        self.calls_total = self.refused = 0
        self.outcomes: collections.Counter[str] = collections.Counter()

    @property
    def active(self) -> int:
        return len(self._router.sessions)

    def live(self) -> list[dict[str, object]]:
        """The transcripts of the calls in the bot now (what it has heard so far)."""
        return [s.transcript.to_dict() for s in self._router.sessions.values()]

    async def _var(self, channel_id: str, name: str) -> str:
        try:
            return (await self._ari.get_variable(channel_id, name))[:100]
        except AriError:
            return ""

    async def __call__(self, event: Mapping[str, Any]) -> None:
        channel = event.get("channel")
        channel_id = _id(channel)
        args = [a for a in event.get("args", []) if isinstance(a, str)]
        mode = await self._var(channel_id, "ROUTE_MODE") or (args[2] if len(args) > 2 else "")
        if mode != "bot" or not isinstance(channel, Mapping):
            return
        call = await self._call_info(channel_id, channel)
        if self.active >= self.max_calls:
            await self._refuse(call)
            return
        await self.run_session(self._make(call))

    async def _call_info(self, channel_id: str, channel: Mapping[str, Any]) -> CallInfo:
        caller = channel.get("caller")
        number = caller.get("number") if isinstance(caller, Mapping) else ""
        queue = await self._var(channel_id, "ROUTE_QUEUE")
        prio = await self._var(channel_id, "ROUTE_PRIORITY")
        lang: Lang = self.language
        if self.use_route_language:
            route_lang = await self._var(channel_id, "ROUTE_LANG")
            lang = "ru" if route_lang == "ru" else "en" if route_lang == "en" else lang
        return CallInfo(channel_id, str(number or "")[:40], queue or "reception",
                        int(prio) if prio.isdigit() else 0, lang)  # fmt: skip

    async def _refuse(self, call: CallInfo) -> None:
        self.refused += 1
        log.warning("ivr: %d bot calls running (max_calls): %s goes back to queue %s",
                    self.active, mask(call.caller), clean(call.queue))
        try:
            await self._ari.set_variable(call.channel_id, "ROUTE_MODE", "queue")
            await self._ari.continue_in_dialplan(call.channel_id)
        except AriError as exc:
            log.warning("ivr: refused call %s not continued: %s", clean(call.channel_id), exc)

    async def run_session(self, session: BotSession) -> None:
        """Run one bot call to its end: counted, routed events, its transcript kept."""
        self.calls_total += 1
        self._router.add(session)
        t0 = time.monotonic()
        try:
            await session.run()
        finally:
            self._router.remove(session)
            self._watch.forget(session.call.channel_id)
            self.outcomes[session.dialog.outcome or "none"] += 1
            self.recent.append(session.transcript.to_dict())
            log.info("ivr: call %s from %s: %s after %.1f s", clean(session.call.channel_id),
                     mask(session.call.caller), session.dialog.outcome, time.monotonic() - t0)
