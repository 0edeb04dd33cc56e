"""State and channel handling of the live model (``LiveModel`` adds queues, agents, queries).

Direction (decided on the first channel, kept simple): a first channel in one of
``inbound_contexts`` is ``inbound``; a ``Local/`` first channel (Originate) is ``outbound``;
anything else (an operator's phone) is ``internal``. A call that gets a ``DID`` variable becomes
``inbound``: it arrived on a tracked number. Helper channels (``MEDIA_PREFIXES``: ARI
externalMedia, announcers, spies) are not call legs and are ignored.

Pure: standard library only.
"""

from __future__ import annotations

from collections.abc import Iterable

from callserver.core.bus import EventBus
from callserver.core.events import (
    AgentSnapshot,
    AgentStatusChanged,
    CallEnded,
    CallStarted,
    CallState,
    CallUpdated,
    Direction,
    DomainEvent,
)
from callserver.core.model.agents import AgentBook
from callserver.core.model.records import Call, Leg, QueueEntry

MEDIA_PREFIXES = ("UnicastRTP/", "Announcer/", "Recorder/", "Snoop/", "AudioSocket/", "Message/")
"""Helper channels (ARI externalMedia, announcers, spies) that are not call legs."""
LIVE_STATES: tuple[CallState, ...] = (
    "ringing",
    "routing",
    "queued",
    "agent_ringing",
    "answered",
    "on_hold",
    "abandoned",
)
TALKING: frozenset[str] = frozenset({"answered", "on_hold"})
RECENTLY_ENDED_MAX = 10_000
"""How many hung-up channel ids are remembered so a late resync list never revives them."""


class ModelBase:
    """Calls and their legs; publishes domain events on ``bus``.

    ``inbound_contexts``: dialplan contexts where carrier calls arrive (direction ``inbound``).
    """

    def __init__(self, bus: EventBus, *, inbound_contexts: Iterable[str] = ("from-trunk",)) -> None:
        self._bus = bus
        self._inbound_contexts = frozenset(inbound_contexts)
        self._calls: dict[str, Call] = {}
        self._legs: dict[str, Leg] = {}
        self._queues: dict[str, dict[str, QueueEntry]] = {}
        self._agents = AgentBook()
        self._ended: dict[str, None] = {}
        self._ended_calls: dict[str, None] = {}
        """Ids of calls that ended here recently (a stored open copy must not end them again)."""
        self._seq = 0
        self._agent_seq: dict[str, int] = {}
        """Interface → model seq of its latest live membership change (resync keeps newer)."""
        self.now = 0.0
        """Latest event time seen (Asterisk's clock): the default ``now`` of queries."""

    # ------------------------------------------------------------------ channels

    def channel_created(
        self,
        uniqueid: str,
        linkedid: str,
        channel: str,
        *,
        caller: str = "",
        caller_name: str = "",
        context: str = "",
        state: str = "",
        at: float,
    ) -> None:
        """A new channel; the first one of a Linkedid starts a call (CallStarted)."""
        self._tick(at)
        if uniqueid in self._legs or channel.startswith(MEDIA_PREFIXES):
            return
        linkedid = linkedid or uniqueid
        call = self._calls.get(linkedid)
        started = call is None
        if call is None:
            direction = self._direction(channel, context)
            call = Call(linkedid, direction, at, uniqueid, caller=caller, caller_name=caller_name)
            self._calls[linkedid] = call
        self._seq += 1
        leg = Leg(uniqueid, channel, linkedid, self._seq, state)
        call.legs[uniqueid] = self._legs[uniqueid] = leg
        if started:
            self._publish(CallStarted(at, call.snapshot(), channel))
        if state == "Up":
            self.channel_state(uniqueid, state, at=at)

    def channel_state(self, uniqueid: str, state: str, *, at: float) -> None:
        """Channel state changed (``Ring``, ``Ringing``, ``Up`` …)."""
        leg = self._legs.get(uniqueid)
        if leg is None:
            return
        leg.state = state
        call = self._calls[leg.call_id]
        if state == "Up" and uniqueid == call.caller_leg and call.state == "ringing":
            self._set_state(call, "routing", at)

    def caller_id_changed(self, uniqueid: str, caller: str, caller_name: str, *, at: float) -> None:
        """The caller ID of a leg changed; the call adopts it for its customer leg."""
        leg = self._legs.get(uniqueid)
        if leg is None or leg.agent:
            return
        call = self._calls[leg.call_id]
        if uniqueid != call.caller_leg and call.caller and caller != call.caller:
            return  # another non-agent leg (a Local half) with someone else's number
        self._update_caller(call, caller, caller_name, at)

    def variable_set(self, uniqueid: str, name: str, value: str, *, at: float) -> None:
        """A routing-relevant variable (``DID``, ``AD_SOURCE``, ``ROUTE_*`` …) on a leg.
        ``DID`` and ``AD_SOURCE`` publish a CallUpdated; the others are kept quietly and seen
        in the next event's snapshot.

        ``name`` comes without inheritance underscores (``__DID`` → ``DID``).
        """
        leg = self._legs.get(uniqueid)
        if leg is None:
            return
        call = self._calls[leg.call_id]
        changed: tuple[str, ...]
        if name == "DID":
            if value == call.did:
                return
            call.did = value
            changed = ("did",)
            if call.direction != "inbound" and value:
                call.direction = "inbound"
                changed = ("did", "direction")
        elif name == "AD_SOURCE":
            if value == call.ad_source:
                return
            call.ad_source, changed = value, ("ad_source",)
        else:
            # ROUTE_*, CAMPAIGN …: kept on the call and carried by its next event (the
            # route script sets 6-9 of them in a burst, then the call queues). An event per
            # variable was a third of the pipeline's events, each written, published and sent.
            call.variables[name] = value
            return
        self._publish(CallUpdated(at, call.snapshot(), changed))

    def channel_hungup(self, uniqueid: str, *, cause: str = "", at: float) -> None:
        """A leg hung up; when it was the call's last leg the call ends (CallEnded)."""
        self._tick(at)
        self._remember_ended(uniqueid)
        leg = self._legs.pop(uniqueid, None)
        if leg is None:
            return
        call = self._calls[leg.call_id]
        del call.legs[uniqueid]
        self._leave_queues(uniqueid)
        if leg.agent:
            call.ringing.pop(leg.agent, None)
        if cause and (uniqueid == call.caller_leg or not call.hangup_cause):
            call.hangup_cause = cause
        turn = call.open_turn()
        if call.state in TALKING and not call.hangup_by:
            if uniqueid == call.caller_leg:
                call.hangup_by = "caller"
            elif turn is not None and leg.agent and leg.agent == turn.agent:
                call.hangup_by = "agent"
        if turn is not None and leg.agent and leg.agent == turn.agent:
            self._close_turn(call, at, call.hangup_by or "agent")
        if not call.legs:
            self._end(call, at)

    def dial_ended(self, agent_uniqueid: str, status: str, *, at: float) -> None:
        """A dial attempt to an agent leg ended; anything but ``ANSWER`` stops its ringing."""
        leg = self._legs.get(agent_uniqueid)
        if leg is None or not leg.agent or status == "ANSWER":
            return
        call = self._calls[leg.call_id]
        if call.ringing.pop(leg.agent, None) is not None:
            self._after_ringing_stopped(call, at)

    # ------------------------------------------------------------------ internals

    def _publish(self, event: DomainEvent) -> None:
        self._bus.publish(event)

    def _tick(self, at: float) -> None:
        if at > self.now:
            self.now = at

    def _when(self, now: float | None) -> float:
        return self.now if now is None else now

    def _direction(self, channel: str, context: str) -> Direction:
        if context in self._inbound_contexts:
            return "inbound"
        if channel.startswith("Local/"):
            return "outbound"
        return "internal"

    def _call_of(self, uniqueid: str) -> Call | None:
        leg = self._legs.get(uniqueid)
        return self._calls.get(leg.call_id) if leg is not None else None

    def _ensure(self, uniqueid: str, linkedid: str, channel: str, at: float) -> Call:
        call = self._call_of(uniqueid)
        if call is None:
            self.channel_created(uniqueid, linkedid, channel or uniqueid, at=at)
            call = self._call_of(uniqueid) or self._calls[linkedid or uniqueid]
        return call

    def _update_caller(
        self, call: Call, caller: str, caller_name: str, at: float, *, publish: bool = True
    ) -> None:
        changed = []
        if caller and caller != call.caller:
            call.caller = caller
            changed.append("caller")
        if caller_name and caller_name != call.caller_name:
            call.caller_name = caller_name
            changed.append("caller_name")
        if changed and publish:
            self._publish(CallUpdated(at, call.snapshot(), tuple(changed)))

    def _set_state(self, call: Call, state: CallState, at: float) -> None:
        if call.state != state:
            call.state = state
            self._publish(CallUpdated(at, call.snapshot(), ("state",)))

    def _after_ringing_stopped(self, call: Call, at: float, *, publish: bool = True) -> None:
        if call.ringing or call.state != "agent_ringing":
            return
        waiting = any(call.caller_leg in entries for entries in self._queues.values())
        if publish:
            self._set_state(call, "queued" if waiting else "routing", at)
        else:
            call.state = "queued" if waiting else "routing"

    def _leave_queues(self, uniqueid: str) -> None:
        left = False
        for entries in self._queues.values():
            if entries.pop(uniqueid, None) is not None:
                self._renumber(entries)
                left = True
        if left:
            self._left_queue(uniqueid)

    def _renumber(self, entries: dict[str, QueueEntry]) -> None:
        """Positions 1..n in queue order, as app_queue renumbers when a caller leaves."""
        for position, entry in enumerate(sorted(entries.values(), key=lambda e: e.position), 1):
            entry.position = position
            call = self._calls.get(entry.call_id)
            if call is not None and call.caller_leg == entry.uniqueid:
                call.position = position

    def _left_queue(self, uniqueid: str) -> None:
        """Stamp the leg: a resync list taken before this leave must not re-queue it."""
        leg = self._legs.get(uniqueid)
        if leg is not None:
            self._seq += 1
            leg.left_queue_seq = self._seq

    def _touch_agent(self, interface: str) -> None:
        self._seq += 1
        self._agent_seq[interface] = self._seq

    def agents_changed_after(self, mark: int) -> set[str]:
        """Interfaces whose membership changed live after ``mark`` (a resync list is older)."""
        return {i for i, seq in self._agent_seq.items() if seq > mark}

    def _agent_changed(self, snap: AgentSnapshot | None, at: float) -> None:
        if snap is not None:
            self._publish(AgentStatusChanged(at, snap))

    def _remember_ended(self, uniqueid: str) -> None:
        self._ended[uniqueid] = None
        if len(self._ended) > RECENTLY_ENDED_MAX:
            del self._ended[next(iter(self._ended))]

    def call_ended_recently(self, call_id: str) -> bool:
        """The call (Linkedid) ended here recently (a stored open copy is stale)."""
        return call_id in self._ended_calls

    def ended_recently(self, uniqueid: str) -> bool:
        """The channel hung up recently (resync must not revive it from a stale list)."""
        return uniqueid in self._ended

    def _close_turn(self, call: Call, at: float, end: str) -> None:
        """End the open agent turn (if any) at ``at``; its agent is free of this call."""
        turn = call.open_turn()
        if turn is not None:
            turn.close(at, end)  # an open hold ends with the turn
            if call.state == "on_hold":
                call.state = "answered"
            self._agent_changed(self._agents.call_finished(turn.agent, call.id), at)

    def end_call(self, call: Call, at: float, *, cause: str = "") -> None:
        """End ``call`` (a record of this model's, e.g. restored by resync) at ``at``:
        CallEnded, then it leaves the model."""
        self._calls[call.id] = call
        self._end(call, at, cause=cause)

    def _end(self, call: Call, at: float, *, cause: str = "") -> None:
        call.ended_at = at
        call.hangup_cause = call.hangup_cause or cause
        call.transfer_pending = ""
        if call.state != "abandoned":
            call.state = "ended"
        self._close_turn(call, at, call.hangup_by)
        if not call.turns and call.answered_at is not None and call.talk_seconds is None:
            call.talk_seconds = at - call.answered_at
        for uniqueid in call.legs:
            self._legs.pop(uniqueid, None)
            self._leave_queues(uniqueid)
        del self._calls[call.id]
        self._ended_calls[call.id] = None
        if len(self._ended_calls) > RECENTLY_ENDED_MAX:
            del self._ended_calls[next(iter(self._ended_calls))]
        snap = call.snapshot()
        self._publish(CallEnded(at, snap, snap.talk_seconds, call.hangup_by, call.hangup_cause))
