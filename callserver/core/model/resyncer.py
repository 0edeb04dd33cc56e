"""Rebuild the live model from Asterisk's own lists after a (re)connect.

While the AMI link was down the model missed events. Asterisk's lists (CoreShowChannels for
channels, QueueStatus for queue entries and members) say what is true *now*:

1. a leg the model holds but the list lacks hung up meanwhile: it is closed like a hangup, so a
   call whose every leg is gone ends with exactly one CallEnded (cause ``RESYNC_CAUSE``); the call
   then leaves the model, so a second resync cannot end it again;
2. a listed channel the model does not know is created (CallStarted for a new Linkedid, started
   ``duration`` seconds before ``now``), unless it hung up after the list was taken;
3. queue entries are made equal to the list (CallQueued for new ones, positions refreshed);
4. memberships are replaced by the list (AgentStatusChanged for agents that changed);
5. a call still marked queued/ringing that is no longer in any queue was answered (its customer
   leg is bridged: CallAnswered, agent guessed from the bridged leg's channel name) or went back
   to the dialplan (state ``routing``).

Legs and queue entries created after ``mark`` (events that arrived while the lists were in
flight) are newer than the lists and kept; a leg that left its queue after ``mark`` is not put
back by a list entry taken before it left, nor is an agent whose membership changed live after
``mark`` overwritten by the list. Running the same resync twice changes nothing.
Pure: standard library only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from callserver.core.events import AgentStatusChanged, CallUpdated, DomainEvent, ModelResynced
from callserver.core.model.agents import AgentBook
from callserver.core.model.records import (
    Call,
    ChannelInfo,
    Leg,
    MemberInfo,
    QueueEntry,
    QueueEntryInfo,
)

if TYPE_CHECKING:
    from callserver.core.model.live import LiveModel

RESYNC_CAUSE = "gone after reconnect"


class Resyncer:
    """One resync pass over the model's records (built by ``LiveModel.resync``)."""

    def __init__(
        self,
        model: LiveModel,
        publish: Callable[[DomainEvent], None],
        calls: dict[str, Call],
        legs: dict[str, Leg],
        queues: dict[str, dict[str, QueueEntry]],
        agents: AgentBook,
    ) -> None:
        self._model = model
        self._publish = publish
        self._calls = calls
        self._legs = legs
        self._queues = queues
        self._agents = agents

    def run(
        self,
        channels: Sequence[ChannelInfo],
        entries: Sequence[QueueEntryInfo],
        members: Sequence[MemberInfo],
        now: float,
        mark: int,
    ) -> None:
        before = set(self._calls)
        self._drop_vanished({c.uniqueid for c in channels}, now, mark)
        self._adopt(channels, now)
        self._sync_entries(entries, now, mark)
        fresh = self._model.agents_changed_after(mark)
        listed = [m for m in members if m.interface not in fresh]
        for snap in self._agents.replace_all(listed, keep=fresh):
            self._publish(AgentStatusChanged(now, snap))
        for call in list(self._calls.values()):
            self._reconcile(call, now)
        closed = tuple(sorted(before - set(self._calls)))
        self._publish(ModelResynced(now, closed, len(self._calls)))

    def _drop_vanished(self, listed: set[str], now: float, mark: int) -> None:
        for uniqueid, leg in list(self._legs.items()):
            if uniqueid not in listed and leg.seq <= mark:
                self._model.channel_hungup(uniqueid, cause=RESYNC_CAUSE, at=now)

    def _adopt(self, channels: Sequence[ChannelInfo], now: float) -> None:
        model = self._model
        # Oldest first, so the first channel of a call (the customer's) starts it.
        for info in sorted(channels, key=lambda c: -c.duration):
            leg = self._legs.get(info.uniqueid)
            if leg is None:
                if model.ended_recently(info.uniqueid):
                    continue
                model.channel_created(
                    info.uniqueid,
                    info.linkedid,
                    info.channel,
                    caller=info.caller,
                    caller_name=info.caller_name,
                    context=info.context,
                    state=info.state,
                    at=now - max(0.0, info.duration),
                )
                leg = self._legs.get(info.uniqueid)
                if leg is None:
                    continue
            leg.bridge = info.bridge_id
            if info.state and leg.state != info.state:
                model.channel_state(info.uniqueid, info.state, at=now)

    def _sync_entries(self, entries: Sequence[QueueEntryInfo], now: float, mark: int) -> None:
        wanted = {(e.queue, e.uniqueid) for e in entries}
        for queue, current in list(self._queues.items()):
            for uniqueid, entry in list(current.items()):
                if (queue, uniqueid) not in wanted and entry.seq <= mark:
                    self._model.caller_left_queue(uniqueid, queue, at=now)
        for e in entries:
            known = self._queues.get(e.queue, {}).get(e.uniqueid)
            leg = self._legs.get(e.uniqueid)
            if known is not None:
                known.position = e.position
            elif leg is not None and leg.left_queue_seq <= mark:  # else: left after the list
                self._model.caller_joined_queue(
                    e.uniqueid,
                    "",
                    e.queue,
                    e.position,
                    caller=e.caller,
                    caller_name=e.caller_name,
                    at=now - max(0.0, e.wait),
                )

    def _reconcile(self, call: Call, now: float) -> None:
        if call.state not in ("queued", "agent_ringing"):
            return
        if any(call.caller_leg in current for current in self._queues.values()):
            return
        call.ringing.clear()
        customer = call.legs.get(call.caller_leg)
        peer = None
        if customer is not None and customer.bridge:
            peer = next(
                (
                    leg
                    for leg in call.legs.values()
                    if leg is not customer and leg.bridge == customer.bridge
                ),
                None,
            )
        if peer is None:
            call.state = "routing"
            self._publish(CallUpdated(now, call.snapshot(), ("state",)))
            return
        interface = peer.agent or self._guess_interface(peer.channel)
        self._model.agent_connected(
            call.caller_leg, call.queue, interface, agent_uniqueid=peer.uniqueid, at=now
        )

    def _guess_interface(self, channel: str) -> str:
        """``PJSIP/op101-00000005`` → the member ``PJSIP/op101``; ``Local/x@ctx-0000;1`` →
        ``Local/x@ctx/n``. Falls back to the channel name without its sequence suffix."""
        base = channel.rsplit("-", 1)[0]
        for interface in self._agents.interfaces():
            if interface == base or interface.startswith(base + "/"):
                return interface
        return base
