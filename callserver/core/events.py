"""Typed domain events emitted by the live model.

Every call event carries ``call``: a frozen snapshot of the call *after* the event, so a consumer
(the store, Redis publisher, screen-pop, dashboards) never has to reach into the live model.
Times are POSIX seconds (float, from Asterisk's ``Timestamp`` header where there is one).
Pure: standard library only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from typing import Any, Literal

CallState = Literal[
    "ringing", "routing", "queued", "agent_ringing", "answered", "on_hold", "abandoned", "ended"
]
Direction = Literal["inbound", "outbound", "internal"]


_FIELD_NAMES: dict[type[Any], tuple[str, ...]] = {}


def _field_names(cls: type[Any]) -> tuple[str, ...]:
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = _FIELD_NAMES[cls] = tuple(f.name for f in fields(cls) if f.name[0] != "_")
    return names


@dataclass(frozen=True, slots=True)
class AgentTurn:
    """One agent's part of a call: from when the caller was connected to them until they left
    (transfer, hangup). ``talk_seconds`` excludes ``hold_seconds`` (the caller on hold);
    together they make the agent's connected time (Asterisk's AgentComplete ``TalkTime``
    counts both). Durations are seconds, ``None`` while the turn is still open."""

    agent: str
    """Queue member interface, e.g. ``PJSIP/op101``."""
    agent_name: str
    connected_at: float
    ended_at: float | None = None
    talk_seconds: float | None = None
    hold_seconds: float = 0.0
    via: str = "queue"
    """How the agent got the call: ``queue`` (AgentConnect), ``blind``/``attended`` transfer."""
    end: str = ""
    """Why the turn ended: ``transfer``, ``caller``, ``agent`` or empty (call ended/unknown)."""
    held_since: float | None = None
    """When the hold in progress began (``None``: not on hold)."""

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in _field_names(type(self))}


@dataclass(frozen=True, slots=True)
class CallSnapshot:
    """A call (all channels sharing one Linkedid) at one moment. ``id`` is the Linkedid."""

    id: str
    linkedid: str
    direction: Direction
    state: CallState
    caller: str
    caller_name: str
    did: str
    ad_source: str
    queue: str
    agent: str
    """The call's current (at the end: final) agent."""
    agent_name: str
    started_at: float
    queued_at: float | None = None
    answered_at: float | None = None
    ended_at: float | None = None
    wait_seconds: float | None = None
    """Seconds waiting in the queue (AgentConnect / QueueCallerAbandon ``HoldTime``)."""
    talk_seconds: float | None = None
    """Seconds talking with agents, every turn summed, time on hold excluded."""
    hold_seconds: float | None = None
    """Seconds the caller was on hold (Hold … Unhold) while connected to an agent."""
    abandon_position: int | None = None
    hangup_by: str = ""
    hangup_cause: str = ""
    variables: tuple[tuple[str, str], ...] = ()
    """Routing-relevant channel variables seen on the call (ROUTE_*, campaign …)."""
    agents: tuple[AgentTurn, ...] = ()
    """Every agent who talked to the caller, in order (transfers add turns)."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict of every field (``variables`` as a dict). Built field by field:
        ``dataclasses.asdict`` deep-copies and was the pipeline's largest CPU cost."""
        d = {name: getattr(self, name) for name in _field_names(type(self))}
        d["variables"] = dict(self.variables)
        d["agents"] = [t.to_dict() for t in self.agents]
        return d


@dataclass(frozen=True, slots=True)
class DomainEvent:
    at: float
    _json: str | None = field(default=None, init=False, compare=False, repr=False)
    """``to_json()``'s text, made once: several subscribers (live WebSocket, Redis) send it."""

    @property
    def type(self) -> str:
        return type(self).__name__

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: ``type``, ``at``, every field (snapshots as dicts)."""
        d: dict[str, Any] = {"type": self.type}
        for cls in reversed(type(self).__mro__):
            for name in getattr(cls, "__slots__", ()):
                if name[0] == "_":
                    continue
                value = getattr(self, name)
                d[name] = value.to_dict() if hasattr(value, "to_dict") else value
        if isinstance(self, CallEvent):
            d["call_id"] = self.call.id
        return d

    def to_json(self) -> str:
        """``to_dict()`` as compact JSON (UTF-8 text, non-ASCII kept), computed once."""
        if self._json is None:
            text = json.dumps(self.to_dict(), ensure_ascii=False, separators=(",", ":"),
                              default=str)  # fmt: skip
            object.__setattr__(self, "_json", text)
            return text
        return self._json


@dataclass(frozen=True, slots=True)
class CallEvent(DomainEvent):
    call: CallSnapshot

    @property
    def call_id(self) -> str:
        return self.call.id


@dataclass(frozen=True, slots=True)
class CallStarted(CallEvent):
    channel: str = ""


@dataclass(frozen=True, slots=True)
class CallUpdated(CallEvent):
    """Something routing-relevant changed: DID, ad source, a ROUTE_* variable, caller name."""

    changed: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class CallQueued(CallEvent):
    queue: str = ""
    position: int = 0


@dataclass(frozen=True, slots=True)
class AgentRinging(CallEvent):
    queue: str = ""
    agent: str = ""
    """Queue member interface, e.g. ``PJSIP/op101``."""
    agent_name: str = ""
    agent_channel: str = ""


@dataclass(frozen=True, slots=True)
class AgentRingNoAnswer(CallEvent):
    queue: str = ""
    agent: str = ""
    ring_seconds: float = 0.0


@dataclass(frozen=True, slots=True)
class CallAnswered(CallEvent):
    queue: str = ""
    agent: str = ""
    agent_name: str = ""
    wait_seconds: float = 0.0
    ring_seconds: float = 0.0


@dataclass(frozen=True, slots=True)
class CallAbandoned(CallEvent):
    queue: str = ""
    wait_seconds: float = 0.0
    """Seconds waited in the queue before hanging up (QueueCallerAbandon ``HoldTime``)."""
    position: int = 0


@dataclass(frozen=True, slots=True)
class CallHeld(CallEvent):
    """The caller was put on hold (AMI ``Hold`` on a leg of an answered call)."""

    agent: str = ""
    channel: str = ""


@dataclass(frozen=True, slots=True)
class CallUnheld(CallEvent):
    """The caller is back from hold; ``held_seconds`` is how long this hold lasted."""

    agent: str = ""
    held_seconds: float = 0.0


@dataclass(frozen=True, slots=True)
class CallTransferred(CallEvent):
    """An agent transferred the caller. ``kind`` ``blind`` (to ``target``, an extension, the
    new agent not known yet: TransferAnswered follows when someone answers) or ``attended``
    (``to_agent`` known: the consulted agent now talks with the caller)."""

    kind: str = ""
    from_agent: str = ""
    to_agent: str = ""
    target: str = ""


@dataclass(frozen=True, slots=True)
class TransferAnswered(CallEvent):
    """The target of a blind transfer answered and now talks with the caller."""

    agent: str = ""
    agent_name: str = ""
    from_agent: str = ""


@dataclass(frozen=True, slots=True)
class CallEnded(CallEvent):
    """The call's last leg hung up (or vanished while the AMI link was down: ``cause`` is then
    ``callserver.core.model.RESYNC_CAUSE``). Published once per call, after which the call leaves
    the live model. ``call.state`` is ``abandoned`` for a call abandoned in a queue, else
    ``ended``."""

    talk_seconds: float | None = None
    hangup_by: str = ""
    """``caller``, ``agent`` or empty when unknown (a transfer is no hang-up: the call goes on
    with the next agent, see ``call.agents``)."""
    cause: str = ""


@dataclass(frozen=True, slots=True)
class AgentSnapshot:
    interface: str
    name: str
    queues: tuple[str, ...]
    status: str
    """Asterisk device status: ``not_inuse``, ``inuse``, ``busy``, ``invalid``, ``unavailable``,
    ``ringing``, ``ringinuse``, ``onhold``, ``unknown``."""
    paused: bool
    paused_reason: str
    in_call: bool
    calls_taken: int
    last_call: float

    def to_dict(self) -> dict[str, Any]:
        d = {name: getattr(self, name) for name in _field_names(type(self))}
        d["queues"] = list(self.queues)
        return d


@dataclass(frozen=True, slots=True)
class AgentStatusChanged(DomainEvent):
    agent: AgentSnapshot = field(
        default_factory=lambda: AgentSnapshot("", "", (), "unknown", False, "", False, 0, 0.0)
    )


@dataclass(frozen=True, slots=True)
class ModelResynced(DomainEvent):
    """The model was rebuilt from CoreShowChannels/QueueStatus after a (re)connect."""

    closed_calls: tuple[str, ...] = ()
    live_calls: int = 0
