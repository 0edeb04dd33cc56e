"""Queue-event helpers shared by the queue call flows (``queue_call``, ``talk``,
``local_member``, ``transfer``) and the AMI actions.

This module sits below those flows and imports none of them, so they can all use it
without an import loop. It renders the app_queue bookkeeping a member's state change
or a connected call causes: QueueMemberStatus, ``Queue:<name>_avail`` device state,
the ``MEMBER*``/``QUEUE*`` variables, QueueCallerLeave and the dial-time variables.
Times are scenario seconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pbxsim import ami_events as ev
from pbxsim.agents import Agent
from pbxsim.engine import Engine
from pbxsim.model import Channel
from pbxsim.queues import Entry, Member, Queue

Fields = tuple[tuple[str, object], ...]


@dataclass
class Leg:
    """The answering member's channel and how long it rang (seconds)."""

    member: Member
    channel: Channel
    ring: float
    others: list[tuple[Member, Channel]] = field(default_factory=list)
    """Members rung beside the winner (ringall): cancelled once it answered."""


def agent_status(eng: Engine, agent: Agent) -> None:
    """QueueMemberStatus for every queue the agent is in, and wake those queues."""
    for q in eng.queues.values():
        m = q.member(agent.interface)
        if m is not None:
            eng.emit(ev.queue_member("QueueMemberStatus", m.block(q.name)))
            _avail_state(eng, q)
            q.notify()


def _avail_state(eng: Engine, q: Queue) -> None:
    if q.ringinuse:  # members stay available while in use: no Queue:<name>_avail changes
        return
    ready = any(m.ready() for m in q.members)
    want = "NOT_INUSE" if ready else "INUSE"
    key = f"Queue:{q.name}_avail"
    if eng.global_vars.get(key, "NOT_INUSE") != want:
        eng.global_vars[key] = want
        eng.emit(ev.device_state(key, want))


def drop_leg(
    eng: Engine, caller: Channel, m: Member, leg: Channel, status: str, cause: int = 0
) -> None:
    """Stop ringing one member (DialEnd ``status``, Hangup ``cause``) and free it."""
    eng.emit(ev.dial("DialEnd", caller, leg, ("DialStatus", status)))
    eng.hangup(leg, cause)
    m.agent.state = "idle"
    eng.emit(ev.device_state(m.agent.interface, "NOT_INUSE"))
    agent_status(eng, m.agent)


def member_fields(q: Queue, m: Member) -> Fields:
    """``Queue``/``Interface``/``MemberName`` of the Agent* events."""
    return (("Queue", q.name), ("Interface", m.agent.interface), ("MemberName", m.agent.name))


def member_vars(leg: Leg) -> list[tuple[str, str]]:
    """The ``MEMBER*`` variables app_queue sets on both legs once a member answered."""
    m = leg.member
    return [
        ("MEMBERINTERFACE", m.agent.interface),
        ("MEMBERNAME", m.agent.name),
        ("MEMBERCALLS", str(m.calls_taken)),
        ("MEMBERLASTCALL", str(m.last_call)),
        ("MEMBERPENALTY", str(m.penalty)),
        ("MEMBERDYNAMIC", "0" if m.membership == "static" else "1"),
        ("MEMBERREALTIME", "0"),
    ]


def setvars(eng: Engine, ch: Channel, pairs: list[tuple[str, str]]) -> None:
    """VarSet each (name, value) on ``ch`` in order."""
    for k, v in pairs:
        eng.setvar(ch, k, v)


def leave_queue(eng: Engine, ch: Channel, q: Queue, entry: Entry) -> None:
    """app_queue's ``leave_queue``: the entry goes (the queue's device NOT_INUSE when it was
    the last), QueueCallerLeave, ``QUEUEPOSITION``."""
    pos = q.position(entry)
    q.entries.remove(entry)
    if not q.entries:
        eng.emit(ev.device_state(f"Queue:{q.name}", "NOT_INUSE"))
    leave = (("Queue", q.name), ("Position", pos), ("Count", len(q.entries)))
    eng.emit(ev.queue_caller("QueueCallerLeave", ch, *leave))
    eng.setvar(ch, "QUEUEPOSITION", str(pos))


def left_queue(eng: Engine, ch: Channel, q: Queue, entry: Entry, hold: int) -> None:
    """A connected caller leaves the queue: QueueCallerLeave, ``QUEUEPOSITION``/``QUEUEWAIT*``."""
    leave_queue(eng, ch, q, entry)
    eng.setvar(ch, "QUEUEWAIT", str(hold))
    eng.setvar(ch, "QUEUEWAIT_MS", str(hold * 1000))


def call_times(eng: Engine, ch: Channel, ring: float, talked: float) -> None:
    """``ANSWEREDTIME``/``DIALEDTIME`` (s and ms) after a connected queue call ended."""
    for k, v in (
        ("ANSWEREDTIME", int(talked)),
        ("ANSWEREDTIME_MS", int(talked * 1000)),
        ("DIALEDTIME", int(talked + ring)),
        ("DIALEDTIME_MS", int((talked + ring) * 1000)),
    ):
        eng.setvar(ch, k, str(v))


def release_member(eng: Engine, q: Queue, member: Member) -> None:
    """The member's call ended: counters, device state, wrap-up then available again."""
    agent = member.agent
    member.in_call = False
    member.calls_taken += 1
    member.last_call = int(eng.clock.wall())
    agent.calls_taken += 1
    agent.last_call = member.last_call
    q.completed += 1
    eng.emit(ev.device_state(agent.interface, "NOT_INUSE"))
    wrap = agent.profile.wrapup_s
    if wrap <= 0:
        agent.state = "idle"
        agent_status(eng, agent)
        return
    agent.state = "wrapup"
    agent_status(eng, agent)

    def back() -> None:
        if agent.state == "wrapup":
            agent.state = "idle"
            agent_status(eng, agent)

    eng.later(wrap, back)
