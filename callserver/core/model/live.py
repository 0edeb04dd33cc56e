"""The live model: calls (grouped by Linkedid, with their legs), queue entries and agents.

Transport-neutral: ``callserver.asterisk.ami_translate`` maps AMI events onto the methods below,
a test or pbxsim may call them directly. Every change that matters to someone is published on the
bus as a domain event carrying a frozen snapshot; queries return snapshots too, never records.

Timeline of a queued call and the events it emits::

    channel_created      -> CallStarted      (state ringing; routing once the caller leg is Up)
    variable_set DID/... -> CallUpdated      (did, ad_source, ROUTE_* …)
    caller_joined_queue  -> CallQueued       (queued: queue, position)
    agent_called         -> AgentRinging     (agent_ringing: which agent)
    agent_ring_no_answer -> AgentRingNoAnswer
    agent_connected      -> CallAnswered     (answered: by whom, wait seconds, ring seconds)
    caller_abandoned     -> CallAbandoned    (abandoned: seconds waited, position)
    channel_held         -> CallHeld         (on_hold) … channel_unheld -> CallUnheld (answered)
    call_transferred     -> CallTransferred  (the agent's turn ends; attended: the target's
                                              starts) … leg_bridged -> TransferAnswered (blind)
    channel_hungup (last leg) -> CallEnded   (talk seconds, who hung up), then the call is dropped

A call that ended abandoned keeps ``state == "abandoned"`` in its CallEnded snapshot; every other
call ends with ``state == "ended"``.

Channel handling and direction rules live in ``base.ModelBase``, bridges, hold and transfers in
``flows.FlowModel``. Queue positions are renumbered 1..n whenever a caller joins or leaves, as
app_queue does (QueueStatus then lists the same positions).

Times are POSIX seconds (Asterisk's clock); durations are seconds. No method raises on unknown
channels or calls: events for channels the model never saw are ignored (resync repairs gaps).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from callserver.core.events import (
    AgentRinging,
    AgentRingNoAnswer,
    AgentSnapshot,
    CallAbandoned,
    CallAnswered,
    CallQueued,
    CallSnapshot,
)
from callserver.core.model.base import LIVE_STATES
from callserver.core.model.flows import FlowModel
from callserver.core.model.records import MemberInfo, QueueEntry, QueueSnapshot, StoredCall
from callserver.core.model.resyncer import Resyncer
from callserver.core.model.views import queue_snapshots

HANGUP_BY = {"caller": "caller", "agent": "agent"}
"""AgentComplete ``Reason`` → who hung up. ``transfer`` is no hang-up: the call goes on."""


class LiveModel(FlowModel):
    """Live calls, queues and agents; publishes domain events on ``bus``.

    ``inbound_contexts``: dialplan contexts where carrier calls arrive (direction ``inbound``).
    """

    # ------------------------------------------------------------------ queue

    def caller_joined_queue(
        self,
        uniqueid: str,
        linkedid: str,
        queue: str,
        position: int,
        *,
        channel: str = "",
        caller: str = "",
        caller_name: str = "",
        at: float,
    ) -> None:
        """The leg joined ``queue`` at ``position`` (CallQueued); it becomes the customer leg."""
        call = self._ensure(uniqueid, linkedid, channel, at)
        call.caller_leg = uniqueid
        self._update_caller(call, caller, caller_name, at, publish=False)
        self._seq += 1
        entries = self._queues.setdefault(queue, {})
        entries.pop(uniqueid, None)
        for entry in entries.values():  # app_queue inserts: the callers behind move back
            if entry.position >= position:
                entry.position += 1
        entries[uniqueid] = QueueEntry(uniqueid, call.id, position, at, self._seq)
        self._renumber(entries)
        position = entries[uniqueid].position
        call.state, call.queue, call.position = "queued", queue, position
        if call.queued_at is None:
            call.queued_at = at
        self._publish(CallQueued(at, call.snapshot(), queue, position))

    def caller_left_queue(self, uniqueid: str, queue: str, *, at: float) -> None:
        """The leg left ``queue`` (answered, abandoned, timed out …)."""
        entries = self._queues.get(queue)
        if entries is None or entries.pop(uniqueid, None) is None:
            return
        self._renumber(entries)
        self._left_queue(uniqueid)
        call = self._call_of(uniqueid)
        if call is not None and call.state == "queued":
            self._set_state(call, "routing", at)

    def caller_abandoned(
        self,
        uniqueid: str,
        queue: str,
        *,
        position: int,
        wait_seconds: float | None = None,
        at: float,
    ) -> None:
        """The caller hung up while waiting ``wait_seconds`` (QueueCallerAbandon ``HoldTime``;
        measured from the join when None): CallAbandoned."""
        call = self._call_of(uniqueid)
        if call is None:
            return
        self._leave_queues(uniqueid)
        call.ringing.clear()
        if wait_seconds is None:
            wait_seconds = at - call.queued_at if call.queued_at is not None else 0.0
        call.state, call.queue = "abandoned", queue or call.queue
        call.hangup_by = "caller"
        call.wait_seconds, call.abandon_position = wait_seconds, position
        self._publish(CallAbandoned(at, call.snapshot(), call.queue, wait_seconds, position))

    # ------------------------------------------------------------------ agents on calls

    def agent_called(
        self,
        uniqueid: str,
        queue: str,
        interface: str,
        *,
        member_name: str = "",
        agent_uniqueid: str = "",
        agent_channel: str = "",
        at: float,
    ) -> None:
        """The queue rings ``interface`` for the caller on ``uniqueid`` (AgentRinging)."""
        call = self._call_of(uniqueid)
        if call is None:
            return
        call.ringing[interface] = at
        self._mark_agent_leg(agent_uniqueid, interface)
        if call.state in ("ringing", "routing", "queued"):
            call.state = "agent_ringing"
        name = member_name or self._agents.name_of(interface)
        self._publish(AgentRinging(at, call.snapshot(), queue, interface, name, agent_channel))

    def agent_ring_no_answer(
        self,
        uniqueid: str,
        queue: str,
        interface: str,
        *,
        ring_seconds: float | None = None,
        at: float,
    ) -> None:
        """``interface`` did not answer (AgentRingNoAnswer); ``ring_seconds`` if known."""
        call = self._call_of(uniqueid)
        if call is None:
            return
        started = call.ringing.pop(interface, None)
        if ring_seconds is None:
            ring_seconds = at - started if started is not None else 0.0
        self._after_ringing_stopped(call, at, publish=False)
        self._publish(AgentRingNoAnswer(at, call.snapshot(), queue, interface, ring_seconds))

    def agent_connected(
        self,
        uniqueid: str,
        queue: str,
        interface: str,
        *,
        member_name: str = "",
        agent_uniqueid: str = "",
        wait_seconds: float | None = None,
        ring_seconds: float | None = None,
        at: float,
    ) -> None:
        """``interface`` answered (CallAnswered) and its turn starts. Asterisk's wait
        (AgentConnect ``HoldTime``) and ring seconds win when given; a call queued again after
        a transfer adds its second wait."""
        call = self._call_of(uniqueid)
        if call is None:
            return
        started = call.ringing.pop(interface, None)
        call.ringing.clear()
        if ring_seconds is None:
            ring_seconds = at - started if started is not None else 0.0
        if wait_seconds is None:
            wait_seconds = at - call.queued_at if call.queued_at is not None else 0.0
        self._leave_queues(uniqueid)
        call.queue = queue or call.queue
        if call.answered_at is None:
            call.answered_at = at
        earlier_wait = (call.wait_seconds or 0.0) if call.turns else 0.0
        call.wait_seconds = earlier_wait + wait_seconds
        call.state = "answered"
        self._start_turn(
            call, interface, self._legs.get(agent_uniqueid), via="queue", at=at, name=member_name
        )
        self._publish(
            CallAnswered(
                at, call.snapshot(), call.queue, interface, call.agent_name, wait_seconds,
                ring_seconds,
            )
        )  # fmt: skip

    def agent_completed(
        self,
        uniqueid: str,
        queue: str,
        interface: str,
        *,
        talk_seconds: float | None = None,
        reason: str = "",
        agent_uniqueid: str = "",
        at: float,
    ) -> None:
        """The agent's part ended; ``reason`` ``caller``/``agent``/``transfer``.

        ``talk_seconds`` (AgentComplete ``TalkTime``: talk and hold together, whole seconds)
        becomes the turn's connected time. The call is found from the caller's ``uniqueid``, or
        when Asterisk sent the event without the caller's fields from the agent's leg
        (``agent_uniqueid``), or else as the one call the agent talks on.
        """
        call = self._call_of(uniqueid) or self._call_of(agent_uniqueid)
        if call is None:  # no leg named: the one call this agent talks on
            talking = self._agents.calls_of(interface)
            call = self._calls.get(next(iter(talking))) if len(talking) == 1 else None
        if call is None:
            return
        turn = call.turn_of(interface)
        if turn is None:
            return
        if turn.ended_at is None:
            if reason == "transfer":
                call.hangup_by = ""
            else:
                call.hangup_by = HANGUP_BY.get(reason, call.hangup_by)
            self._close_turn(call, at, reason if reason in ("transfer", *HANGUP_BY) else "")
        if talk_seconds is not None:
            turn.duration = talk_seconds

    # ------------------------------------------------------------------ members

    def member_status(self, info: MemberInfo, *, at: float) -> None:
        """A membership's state (QueueMemberStatus / QueueMemberAdded)."""
        self._tick(at)
        self._touch_agent(info.interface)
        self._agent_changed(self._agents.update(info), at)

    def member_removed(self, queue: str, interface: str, *, at: float) -> None:
        self._touch_agent(interface)
        self._agent_changed(self._agents.remove(queue, interface), at)

    def member_paused(
        self, queue: str, interface: str, paused: bool, *, reason: str = "", at: float
    ) -> None:
        """Pause/unpause ``interface`` in ``queue`` (every queue when ``queue`` is empty)."""
        self._touch_agent(interface)
        self._agent_changed(self._agents.set_paused(queue, interface, paused, reason), at)

    # ------------------------------------------------------------------ queries

    def calls(self) -> list[CallSnapshot]:
        """Live calls, oldest first."""
        return [c.snapshot() for c in sorted(self._calls.values(), key=lambda c: c.started_at)]

    def call(self, call_id: str) -> CallSnapshot | None:
        call = self._calls.get(call_id)
        return call.snapshot() if call is not None else None

    def agents(self) -> list[AgentSnapshot]:
        return self._agents.snapshots()

    def queues(self, now: float | None = None) -> dict[str, QueueSnapshot]:
        """Every known queue (with members or callers); waits measured at ``now`` (default:
        the latest event time)."""
        return queue_snapshots(self._queues, self._calls, self._agents, self._when(now))

    def longest_waits(self, now: float | None = None) -> dict[str, float]:
        """Seconds the longest-waiting caller of each queue with callers has waited at ``now``
        (default: the latest event time); what ``queues()`` says, without building members."""
        at = self._when(now)
        return {
            name: max(0.0, at - min(e.joined_at for e in entries.values()))
            for name, entries in self._queues.items()
            if entries
        }

    def counts_by_state(self) -> dict[str, int]:
        """Live calls per state; every live state is present (0 when none)."""
        counts: dict[str, int] = dict.fromkeys(LIVE_STATES, 0)
        for call in self._calls.values():
            counts[call.state] = counts.get(call.state, 0) + 1
        return counts

    def free_agents(self, queue: str) -> int:
        return self._agents.free(queue)

    def logged_in_agents(self, queue: str) -> int:
        return self._agents.logged_in(queue)

    def to_dict(self, now: float | None = None) -> dict[str, Any]:
        """JSON-ready picture of everything (for ``GET /api/live``)."""
        return {
            "calls": [c.to_dict() for c in self.calls()],
            "queues": {k: q.to_dict() for k, q in self.queues(now).items()},
            "agents": [a.to_dict() for a in self.agents()],
            "counts": self.counts_by_state(),
        }

    def __len__(self) -> int:
        return len(self._calls)

    # ------------------------------------------------------------------ resync

    def resync_mark(self) -> int:
        """Take before requesting CoreShowChannels/QueueStatus; pass to ``resync(mark=…)`` so
        channels and queue entries that appear while the lists are in flight are kept."""
        return self._seq

    def resync(
        self,
        channels: Sequence[Any],
        queue_entries: Sequence[Any],
        members: Sequence[Any],
        now: float,
        *,
        mark: int | None = None,
        stored: Sequence[StoredCall] = (),
    ) -> None:
        """Rebuild from Asterisk's lists after a (re)connect (see ``resyncer.Resyncer``).

        ``channels``: ChannelInfo; ``queue_entries``: QueueEntryInfo; ``members``: MemberInfo;
        ``stored``: the calls PostgreSQL holds as open (their facts are restored for listed
        calls this model does not know, e.g. after a restart; those Asterisk no longer has are
        closed). Calls whose every leg is gone are closed (CallEnded exactly once), unknown
        live channels are created, queue entries and members are replaced; ModelResynced is
        published last.
        """
        Resyncer(self, self._bus.publish, self._calls, self._legs, self._queues, self._agents).run(
            channels, queue_entries, members, now, self._seq if mark is None else mark, stored
        )

    def _mark_agent_leg(self, agent_uniqueid: str, interface: str) -> None:
        agent_leg = self._legs.get(agent_uniqueid)
        if agent_leg is not None:
            agent_leg.agent = interface
