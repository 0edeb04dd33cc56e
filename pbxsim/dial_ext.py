"""``Dial(PJSIP/opNNN,30)`` of an operator extension from the ``operators`` context, as
the transfer flows run it (``ami-blind-transfer.txt``: the transferred caller dials
op102; ``ami-attended-transfer.txt``: the ``Local/102@operators;2`` half does).

The dialled operator answers after its profile's ring time (``AgentProfile.ring_s``).
Times are scenario seconds.
"""

from __future__ import annotations

from dataclasses import dataclass

from pbxsim import ami_events as ev
from pbxsim.agents import Agent
from pbxsim.engine import Call, Engine
from pbxsim.model import Bridge, Channel
from pbxsim.queue_events import agent_status

DIAL_TIMEOUT_S = 30


@dataclass
class Dialled:
    """The answered target: its channel, agent, the new bridge and the ring seconds."""

    leg: Channel
    agent: Agent
    bridge: Bridge
    ring: float
    answered_at: float = 0.0
    """Scenario time of the answer."""


def find_agent(eng: Engine, exten: str) -> Agent | None:
    """The registered, idle operator whose extension is ``exten`` (``102`` → op102);
    None if there is none (a busy phone is treated as unavailable: no call waiting)."""
    agent = next((a for a in eng.agents.values() if a.ext == exten and not a.local), None)
    return agent if agent is not None and agent.available() else None


def _dial_vars(eng: Engine, ch: Channel, pairs: tuple[tuple[str, str], ...]) -> None:
    for k, v in pairs:
        eng.setvar(ch, k, v)


def open_target(eng: Engine, ch: Channel, agent: Agent, exten: str) -> Channel:
    """Newchannel of the target and DialBegin … DialState RINGING from ``ch``."""
    leg = eng.new_channel(
        agent.interface,
        context="operators",
        exten="s",
        cid=(agent.ext, agent.name),
        linkedid=ch.linkedid,
    )
    eng.setvar(leg, "DIALEDPEERNUMBER", agent.endpoint)
    eng.inherit(ch, leg)
    leg.set_connected(ch.cid_num, ch.cid_name)
    leg.exten = exten
    eng.exten(leg, 1, "AppDial", "(Outgoing Line)")
    eng.emit(ev.new_connected_line(leg))
    eng.emit(ev.dial("DialBegin", ch, leg, ("DialString", agent.endpoint)))
    ch.set_connected(agent.ext, agent.name)
    eng.emit(ev.new_connected_line(ch))
    eng.set_state(leg, 5)
    eng.emit(ev.device_state(agent.interface, "RINGING"))
    eng.setvar(ch, "RINGTIME", "0")
    agent.state = "ringing"
    agent_status(eng, agent)
    eng.setvar(ch, "RINGTIME_MS", "1")
    eng.emit(ev.dial("DialState", ch, leg, ("DialStatus", "RINGING")))
    return leg


def answered(
    eng: Engine, ch: Channel, leg: Channel, agent: Agent, enter_caller: bool = True
) -> Bridge:
    """The target answered: DialEnd ANSWER, a new basic bridge with the target (and ``ch``
    unless ``enter_caller`` is False)."""
    eng.set_state(leg, 6)
    leg.exten = ""  # the dialled channel's snapshot loses its exten from DialEnd on
    leg.touch()
    _dial_vars(
        eng,
        ch,
        (
            ("DIALSTATUS", "ANSWER"),
            ("DIALEDPEERNAME", leg.name),
            ("DIALEDPEERNUMBER", agent.endpoint),
        ),
    )
    eng.emit(ev.dial("DialEnd", ch, leg, ("DialStatus", "ANSWER")))
    br = eng.bridge_create()
    eng.exten(leg, 1, "AppDial", "(Outgoing Line)")
    eng.bridge_enter(br, leg)
    agent.state = "busy"
    eng.emit(ev.device_state(agent.interface, "INUSE"))
    agent_status(eng, agent)
    if enter_caller:
        eng.bridge_enter(br, ch)
    return br


async def ring(eng: Engine, call: Call, ch: Channel, agent: Agent, exten: str) -> Dialled | None:
    """Ring ``agent`` from ``ch``; None if the caller hung up (AMI) while it rang."""
    leg = open_target(eng, ch, agent, exten)
    ring_s = agent.draw_ring()
    wait = DIAL_TIMEOUT_S if ring_s is None else min(ring_s, DIAL_TIMEOUT_S)
    if await eng.clock.wait_event(call.interrupted, wait) or ring_s is None:
        eng.emit(ev.dial("DialEnd", ch, leg, ("DialStatus", "CANCEL" if ring_s else "NOANSWER")))
        eng.hangup(leg, 0 if ring_s else 19)
        agent.state = "idle"
        eng.emit(ev.device_state(agent.interface, "NOT_INUSE"))
        agent_status(eng, agent)
        return None
    return Dialled(leg, agent, answered(eng, ch, leg, agent), wait, eng.clock.now())


def release_target(eng: Engine, agent: Agent) -> None:
    """The dialled operator hung up: device and queue member status back to free."""
    agent.state = "idle"
    agent.calls_taken += 1
    agent.last_call = int(eng.clock.wall())
    eng.emit(ev.device_state(agent.interface, "NOT_INUSE"))
    agent_status(eng, agent)
