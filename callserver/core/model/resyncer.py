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
   to the dialplan (state ``routing``);
6. ``stored`` calls (open in PostgreSQL: the facts of a previous process, e.g. before a
   ``kill -9``) keep their identity: a listed call this model does not know is restored from
   its stored snapshot (caller, DID, source, queue, routing variables, agent turns: no second
   CallStarted, one CallUpdated ``("restored",)``); a stored call Asterisk no longer has is
   closed once (CallEnded, cause ``RESYNC_CAUSE``, ended at the time of its latest stored
   event, the best end time known).

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
    StoredCall,
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
        self._restored: dict[str, Call] = {}

    def run(
        self,
        channels: Sequence[ChannelInfo],
        entries: Sequence[QueueEntryInfo],
        members: Sequence[MemberInfo],
        now: float,
        mark: int,
        stored: Sequence[StoredCall] = (),
    ) -> None:
        before = set(self._calls)
        facts = {s.call.id: s for s in stored}
        self._drop_vanished({c.uniqueid for c in channels}, now, mark)
        self._adopt(channels, now, facts)
        self._sync_entries(entries, now, mark)
        fresh = self._model.agents_changed_after(mark)
        listed = [m for m in members if m.interface not in fresh]
        for snap in self._agents.replace_all(listed, keep=fresh):
            self._publish(AgentStatusChanged(now, snap))
        for call in self._restored.values():
            self._settle_restored(call, now)
        for call in list(self._calls.values()):
            self._reconcile(call, now)
        closed = (before - set(self._calls)) | self._close_stale(facts)
        self._publish(ModelResynced(now, tuple(sorted(closed)), len(self._calls)))

    def _drop_vanished(self, listed: set[str], now: float, mark: int) -> None:
        for uniqueid, leg in list(self._legs.items()):
            if uniqueid not in listed and leg.seq <= mark:
                self._model.channel_hungup(uniqueid, cause=RESYNC_CAUSE, at=now)

    def _adopt(
        self, channels: Sequence[ChannelInfo], now: float, facts: dict[str, StoredCall]
    ) -> None:
        model = self._model
        # A call's first channel (Uniqueid = Linkedid: the customer's) starts it, whatever the
        # durations say; then oldest first.
        for info in sorted(channels, key=_first_channel_first):
            leg = self._legs.get(info.uniqueid)
            if leg is None:
                if model.ended_recently(info.uniqueid):
                    continue
                self._restore(info.linkedid or info.uniqueid, facts)
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

    def _restore(self, call_id: str, facts: dict[str, StoredCall]) -> None:
        """A call unknown here but stored as open: bring it back with its stored facts."""
        stored = facts.get(call_id)
        if stored is None or call_id in self._calls or self._model.call_ended_recently(call_id):
            return
        call = Call.restore(stored.call)
        self._calls[call_id] = self._restored[call_id] = call

    def _settle_restored(self, call: Call, now: float) -> None:
        """After its legs are adopted: the customer leg, the agent's leg, the agent busy."""
        if call.caller_leg not in call.legs and call.legs:
            call.caller_leg = next(iter(call.legs))
        turn = call.open_turn()
        if turn is not None:
            for leg in call.legs.values():
                if leg.uniqueid != call.caller_leg and (
                    self._model.interface_of(leg.channel) == turn.agent
                ):
                    leg.agent = turn.agent
            snap = self._agents.call_started(turn.agent, call.id)
            if snap is not None:
                self._publish(AgentStatusChanged(now, snap))
        self._publish(CallUpdated(now, call.snapshot(), ("restored",)))

    def _close_stale(self, facts: dict[str, StoredCall]) -> set[str]:
        """Close the stored open calls Asterisk no longer has (each once); their ids."""
        closed: set[str] = set()
        for call_id, stored in sorted(facts.items(), key=lambda kv: kv[1].updated_at):
            if call_id in self._calls or self._model.call_ended_recently(call_id):
                continue
            call = Call.restore(stored.call)
            call.hangup_cause = RESYNC_CAUSE
            self._model.end_call(call, max(stored.updated_at, call.started_at), cause=RESYNC_CAUSE)
            closed.add(call_id)
        return closed

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
            elif leg is not None and leg.call_id in self._restored:  # queued before the restart
                call = self._restored[leg.call_id]
                joined = call.queued_at if call.queued_at is not None else now - max(0.0, e.wait)
                self._queues.setdefault(e.queue, {})[e.uniqueid] = QueueEntry(
                    e.uniqueid, call.id, e.position, joined
                )
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
        interface = peer.agent or self._model.interface_of(peer.channel)
        self._model.agent_connected(
            call.caller_leg, call.queue, interface, agent_uniqueid=peer.uniqueid, at=now
        )


def _first_channel_first(info: ChannelInfo) -> tuple[int, float]:
    return (0 if info.uniqueid == (info.linkedid or info.uniqueid) else 1, -info.duration)
