"""Records of the live model: the mutable state behind the frozen snapshots, and the plain
inputs of ``LiveModel.resync``.

Every record uses ``__slots__``: with 1,000 live calls of a few legs each the whole model stays
well under a megabyte. Times are POSIX seconds (float); durations are seconds.
Pure: standard library only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from callserver.core.events import CallSnapshot, CallState, Direction


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

    def snapshot(self) -> CallSnapshot:
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
            talk_seconds=self.talk_seconds,
            hold_seconds=self.hold_seconds,
            abandon_position=self.abandon_position,
            hangup_by=self.hangup_by,
            hangup_cause=self.hangup_cause,
            variables=tuple(sorted(self.variables.items())),
        )


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
