"""Records of the live model: the mutable state behind the frozen snapshots, and the plain
inputs of ``LiveModel.resync``.

Every record uses ``__slots__``: with 1,000 live calls of a few legs each the whole model stays
well under a megabyte. Times are POSIX seconds (float); durations are seconds.
Pure: standard library only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from callserver.core.events import AgentTurn, CallSnapshot, CallState, Direction


@dataclass(slots=True)
class Leg:
    """One channel of a call."""

    uniqueid: str
    channel: str
    call_id: str
    seq: int
    """Creation order in the model; resync keeps legs created after its mark."""
    state: str = ""
    agent: str = ""
    """Queue member interface when this leg rings/talks to an agent, else empty."""
    bridge: str = ""
    left_queue_seq: int = 0
    """Model seq when this leg last left a queue; resync must not re-queue it from a list
    taken before that."""


@dataclass(slots=True)
class Turn:
    """One agent's part of a call (mutable record behind ``AgentTurn``)."""

    agent: str
    agent_name: str
    connected_at: float
    via: str = "queue"
    ended_at: float | None = None
    duration: float | None = None
    """Connected seconds (talk + hold); Asterisk's AgentComplete ``TalkTime`` when it gave
    one, else measured from the event times."""
    hold_seconds: float = 0.0
    held_since: float | None = None
    end: str = ""

    def close(self, at: float, end: str = "") -> None:
        """End the turn at ``at`` (an open hold ends with it)."""
        if self.ended_at is not None:
            return
        self.stop_hold(at)
        self.ended_at = at
        self.duration = max(0.0, at - self.connected_at)
        self.end = end

    def stop_hold(self, at: float) -> float:
        """End an open hold at ``at``; returns its seconds (0.0 when not on hold)."""
        if self.held_since is None:
            return 0.0
        held = max(0.0, at - self.held_since)
        self.hold_seconds += held
        self.held_since = None
        return held

    def frozen(self) -> AgentTurn:
        talk = None if self.duration is None else max(0.0, self.duration - self.hold_seconds)
        return AgentTurn(
            self.agent, self.agent_name, self.connected_at, self.ended_at, talk,
            self.hold_seconds, self.via, self.end, self.held_since,
        )  # fmt: skip

    @classmethod
    def thaw(cls, turn: AgentTurn) -> Turn:
        duration = None
        if turn.talk_seconds is not None:
            duration = turn.talk_seconds + turn.hold_seconds
        return cls(
            turn.agent, turn.agent_name, turn.connected_at, turn.via, turn.ended_at, duration,
            turn.hold_seconds, turn.held_since, turn.end,
        )  # fmt: skip


@dataclass(slots=True)
class Call:
    """A call: every channel sharing one Linkedid (``id``)."""

    id: str
    direction: Direction
    started_at: float
    caller_leg: str
    """Uniqueid of the leg that carries the customer (first channel, or who joined a queue)."""
    state: CallState = "ringing"
    caller: str = ""
    caller_name: str = ""
    did: str = ""
    ad_source: str = ""
    queue: str = ""
    agent: str = ""
    agent_name: str = ""
    queued_at: float | None = None
    position: int = 0
    answered_at: float | None = None
    ended_at: float | None = None
    wait_seconds: float | None = None
    talk_seconds: float | None = None
    hold_seconds: float | None = None
    abandon_position: int | None = None
    hangup_by: str = ""
    hangup_cause: str = ""
    legs: dict[str, Leg] = field(default_factory=dict)
    ringing: dict[str, float] = field(default_factory=dict)
    """Agent interface → when it started ringing for this call."""
    variables: dict[str, str] = field(default_factory=dict)
    turns: list[Turn] = field(default_factory=list)
    transfer_pending: str = ""
    """``blind`` after a blind transfer until the target answers (or the call ends)."""

    def open_turn(self) -> Turn | None:
        """The agent turn in progress, if any."""
        turn = self.turns[-1] if self.turns else None
        return turn if turn is not None and turn.ended_at is None else None

    def turn_of(self, agent: str) -> Turn | None:
        """The latest turn of ``agent``."""
        return next((t for t in reversed(self.turns) if t.agent == agent), None)

    def totals(self) -> tuple[float | None, float | None]:
        """(talk, hold) seconds over the closed turns; (None, None) before any turn."""
        closed = [t.frozen() for t in self.turns if t.duration is not None]
        if not self.turns:
            return None, None
        talk = sum(t.talk_seconds or 0.0 for t in closed) if closed else None
        return talk, sum(t.hold_seconds for t in self.turns)

    def snapshot(self) -> CallSnapshot:
        talk, hold = self.totals() if self.turns else (self.talk_seconds, self.hold_seconds)
        return CallSnapshot(
            id=self.id,
            linkedid=self.id,
            direction=self.direction,
            state=self.state,
            caller=self.caller,
            caller_name=self.caller_name,
            did=self.did,
            ad_source=self.ad_source,
            queue=self.queue,
            agent=self.agent,
            agent_name=self.agent_name,
            started_at=self.started_at,
            queued_at=self.queued_at,
            answered_at=self.answered_at,
            ended_at=self.ended_at,
            wait_seconds=self.wait_seconds,
            talk_seconds=talk,
            hold_seconds=hold,
            abandon_position=self.abandon_position,
            hangup_by=self.hangup_by,
            hangup_cause=self.hangup_cause,
            variables=tuple(sorted(self.variables.items())),
            agents=tuple(t.frozen() for t in self.turns),
        )

    @classmethod
    def restore(cls, snap: CallSnapshot) -> Call:
        """The record of a call known from its stored snapshot (after a restart): every fact
        kept, no legs yet (the caller leg is assumed to be the first channel, id = Linkedid)."""
        call = cls(snap.id, snap.direction, snap.started_at, snap.id, snap.state)
        for name in _RESTORED:
            setattr(call, name, getattr(snap, name))
        call.variables = dict(snap.variables)
        call.turns = [Turn.thaw(t) for t in snap.agents]
        if not call.turns and snap.agent and snap.answered_at is not None:
            call.turns = [Turn(snap.agent, snap.agent_name, snap.answered_at)]  # older rows
        return call


_RESTORED = (
    "caller", "caller_name", "did", "ad_source", "queue", "agent", "agent_name", "queued_at",
    "answered_at", "wait_seconds", "talk_seconds", "hold_seconds", "abandon_position",
    "hangup_by", "hangup_cause",
)  # fmt: skip
"""Call facts copied from a stored snapshot by ``Call.restore``."""


@dataclass(frozen=True, slots=True)
class StoredCall:
    """A call PostgreSQL holds as still open (no end): its latest snapshot and the time of the
    latest event stored for it (POSIX seconds), the best end time known if it ended unseen."""

    call: CallSnapshot
    updated_at: float


@dataclass(slots=True)
class QueueEntry:
    """A caller waiting in a queue."""

    uniqueid: str
    call_id: str
    position: int
    joined_at: float
    seq: int = 0
    """Creation order in the model; resync keeps entries created after its mark."""


@dataclass(frozen=True, slots=True)
class WaitingCaller:
    call_id: str
    uniqueid: str
    caller: str
    position: int
    joined_at: float
    wait_seconds: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "call_id": self.call_id,
            "uniqueid": self.uniqueid,
            "caller": self.caller,
            "position": self.position,
            "joined_at": self.joined_at,
            "wait_seconds": self.wait_seconds,
        }


@dataclass(frozen=True, slots=True)
class QueueSnapshot:
    """One queue at one moment: waiting callers by position, member interfaces, longest wait."""

    name: str
    waiting: tuple[WaitingCaller, ...]
    members: tuple[str, ...]
    longest_wait: float
    """Seconds the longest-waiting caller has waited (0.0 when nobody waits)."""
    free_agents: int
    logged_in_agents: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "waiting": [w.to_dict() for w in self.waiting],
            "members": list(self.members),
            "longest_wait": self.longest_wait,
            "free_agents": self.free_agents,
            "logged_in_agents": self.logged_in_agents,
        }


# ---- inputs of LiveModel.resync (built by callserver.asterisk.resync from AMI lists) ----


@dataclass(frozen=True, slots=True)
class ChannelInfo:
    """A live channel as listed by CoreShowChannels."""

    uniqueid: str
    linkedid: str
    channel: str
    caller: str = ""
    caller_name: str = ""
    context: str = ""
    exten: str = ""
    state: str = ""
    """Channel state description: ``Ring``, ``Ringing``, ``Up`` …"""
    bridge_id: str = ""
    application: str = ""
    duration: float = 0.0
    """Seconds the channel has existed."""


@dataclass(frozen=True, slots=True)
class QueueEntryInfo:
    """A waiting caller as listed by QueueStatus (``QueueEntry``)."""

    queue: str
    uniqueid: str
    channel: str
    position: int
    wait: float
    """Seconds waited so far."""
    caller: str = ""
    caller_name: str = ""


@dataclass(frozen=True, slots=True)
class MemberInfo:
    """A queue member as listed by QueueStatus (``QueueMember``) or QueueMemberStatus."""

    queue: str
    interface: str
    name: str = ""
    status: str = "unknown"
    paused: bool = False
    paused_reason: str = ""
    in_call: bool = False
    calls_taken: int = 0
    last_call: float = 0.0
