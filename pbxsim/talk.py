"""A queue caller connected to a member: bridge, conversation, and whoever hangs up first.

Event order follows ``ami-queue-answered-call.txt`` (caller hangs up); the agent-hangs-up
variant mirrors it from the other side. Times are scenario seconds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pbxsim import ami_events as ev
from pbxsim.engine import Call, Engine
from pbxsim.midcall import converse
from pbxsim.model import Bridge, Channel
from pbxsim.queue_events import (
    Fields,
    Leg,
    agent_status,
    call_times,
    drop_leg,
    left_queue,
    member_vars,
    release_member,
    setvars,
)
from pbxsim.transfer import transfer

if TYPE_CHECKING:
    from pbxsim.queues import Entry, Queue


def _answered(eng: Engine, call: Call, q: Queue, entry: Entry, leg: Leg, hold: int) -> None:
    """DialEnd ANSWER and the MEMBER*/QE*/QUEUE* variables app_queue sets on both legs."""
    ch, lc, agent = call.channel, leg.channel, leg.member.agent
    eng.set_state(lc, 6)
    eng.emit(ev.dial("DialEnd", ch, lc, ("DialStatus", "ANSWER")))
    for _m, other in leg.others:  # wait_for_answer: publish_dial_end_event(CANCEL)
        eng.emit(ev.dial("DialEnd", ch, other, ("DialStatus", "CANCEL")))
    ch.set_connected(agent.ext, agent.name)
    eng.emit(ev.new_connected_line(ch))
    for m, other in leg.others:  # try_calling's hangupcalls(): CANCEL again, cause 26
        drop_leg(eng, ch, m, other, "CANCEL", cause=26)
    mvars = member_vars(leg)
    setvars(eng, ch, mvars[:4])
    agent.state = "busy"
    local = ch.name.startswith("Local/")
    if not local:  # the device-state thread races app_queue; these are the orders observed
        eng.emit(ev.device_state(agent.interface, "INUSE"))
    setvars(eng, ch, mvars[4:])
    setvars(eng, lc, mvars)
    for target in (ch, lc):
        eng.setvar(target, "QEHOLDTIME", str(hold))
        eng.setvar(target, "QEORIGINALPOS", str(entry.original_position))
    q.record_answer(hold)
    setvars(eng, ch, q.queue_vars())
    leg.member.in_call = True
    agent_status(eng, agent)
    if local:
        eng.emit(ev.device_state(agent.interface, "INUSE"))
    setvars(eng, lc, q.queue_vars())


def _bridge(eng: Engine, ch: Channel, lc: Channel, leg: Leg) -> Bridge:
    """BridgeCreate/Enter ×2 and the BRIDGEPEER noise (3 rounds for SIP, 1 for Local)."""
    br = eng.bridge_create()
    eng.bridge_enter(br, lc)
    eng.bridge_enter(br, ch)
    agent = leg.member.agent
    if ch.name.startswith("Local/"):
        one = eng.channels.get(ch.name[:-1] + "1") if ch.name.endswith(";2") else None
        if one is not None:  # the ;1 half now shows the operator (connected line update)
            one.set_callerid(agent.ext, agent.name)
        eng.setvar(lc, "BRIDGEPEER", ch.name)
        eng.setvar(ch, "BRIDGEPEER", lc.name)
        eng.setvar(ch, "BRIDGEPVTCALLID", f"{ch.uniqueid}-pvt")
        return br
    for _ in range(eng.config.bridge_peer_rounds):
        eng.setvar(ch, "BRIDGEPEER", lc.name)
        eng.setvar(ch, "BRIDGEPVTCALLID", ch.variables.get("PVTCALLID", ch.uniqueid))
        eng.setvar(lc, "BRIDGEPEER", ch.name)
        eng.setvar(lc, "BRIDGEPVTCALLID", f"1-{ch.uniqueid}@127.0.0.1")
    return br


def _connect(eng: Engine, call: Call, q: Queue, entry: Entry, leg: Leg) -> tuple[Bridge, int]:
    """From the member's answer to both channels in a bridge; returns (bridge, hold)."""
    ch, lc, agent = call.channel, leg.channel, leg.member.agent
    hold = int(eng.clock.now() - entry.joined)
    call.wait_s = hold
    if call.answered_at is None:
        call.answered_at = eng.clock.wall()
    _answered(eng, call, q, entry, leg, hold)
    left_queue(eng, call.channel, q, entry, hold)
    fields = (("Queue", q.name), ("Interface", agent.interface), ("MemberName", agent.name))
    times = (("HoldTime", hold), ("RingTime", int(leg.ring)))
    eng.emit(ev.agent_event("AgentConnect", ch, lc.block("Dest"), *fields, *times))
    return _bridge(eng, ch, lc, leg), hold


def _unbridge(eng: Engine, ch: Channel, lc: Channel) -> None:
    for target in (ch, lc):
        eng.setvar(target, "BRIDGEPEER", "")
        eng.setvar(target, "BRIDGEPVTCALLID", "")


async def talk(eng: Engine, call: Call, q: Queue, entry: Entry, leg: Leg) -> str:
    """Connect, converse, tear down. Returns ``GONE`` (caller hung up, all channels gone)
    or ``CONTINUE`` (the agent hung up; the caller goes on in the dialplan)."""
    ch, lc, agent = call.channel, leg.channel, leg.member.agent
    br, hold = _connect(eng, call, q, entry, leg)
    if call.on_connect is not None:
        call.on_connect()
    seconds, agent_ends = agent.draw_talk()
    if call.talk_s is not None:
        seconds = call.talk_s
    if call.agent_ends is not None:
        agent_ends = call.agent_ends
    start = eng.clock.now()
    call.connected_at = start
    eng.leg_of[lc.name] = call
    outcome = await converse(eng, call, lc, seconds)
    if outcome == "transfer":
        return await transfer(eng, call, q, br, leg, hold, start)
    interrupted = outcome == "interrupted"
    agent_ends = agent_ends and not interrupted
    if call.peer_hangup:  # AMI Hangup of the operator's leg: the operator "hung up"
        call.peer_hangup, agent_ends = False, True
        call.interrupted.clear()
    talked = eng.clock.now() - start
    q.record_talk(talked)
    call.talks.append((agent.interface, talked))
    fields: Fields = (
        ("Queue", q.name),
        ("Interface", agent.interface),
        ("MemberName", agent.name),
        ("HoldTime", hold),
        ("TalkTime", int(talked)),
    )
    if ch.name.startswith("Local/") and not agent_ends:
        _local_caller_ends(eng, call, q, br, leg, talked, fields)
        return "GONE"
    if agent_ends:
        _agent_ends(eng, call, q, br, leg, talked, fields)
        return "CONTINUE"
    _caller_ends(eng, call, q, br, leg, talked, fields)
    return "GONE"


def _agent_ends(
    eng: Engine, call: Call, q: Queue, br: Bridge, leg: Leg, talked: float, fields: Fields
) -> None:
    ch, lc = call.channel, leg.channel
    eng.emit(ev.hangup_request(lc))
    _unbridge(eng, lc, ch)
    eng.bridge_leave(br, lc)
    eng.bridge_leave(br, ch)
    eng.emit(ev.bridge_destroy(br))
    setvars(eng, ch, q.queue_vars())
    call_times(eng, ch, leg.ring, talked)
    eng.emit(ev.agent_event("AgentComplete", ch, lc.block("Dest"), *fields, ("Reason", "agent")))
    eng.rtp_qos(lc, None)
    eng.hangup(lc, 16, release_device=False)
    release_member(eng, q, leg.member)
    ch.set_connected("<unknown>", "<unknown>")


def _caller_ends(
    eng: Engine, call: Call, q: Queue, br: Bridge, leg: Leg, talked: float, fields: Fields
) -> None:
    """The caller hung up while bridged (``ami-queue-answered-call.txt`` teardown)."""
    ch, lc = call.channel, leg.channel
    if ch.name.startswith("PJSIP/"):
        eng.rtp_qos(ch, lc)
    eng.emit(ev.hangup_request(ch))
    _unbridge(eng, ch, lc)
    br.technology = "native_rtp"
    eng.bridge_leave(br, ch)
    setvars(eng, ch, q.queue_vars())
    call_times(eng, ch, leg.ring, talked)
    eng.bridge_leave(br, lc)
    setvars(eng, ch, q.queue_vars())
    eng.emit(ev.bridge_destroy(br))
    eng.emit(ev.soft_hangup_request(ch, 16))
    eng.cdr(ch, lc.name, "ANSWERED")
    eng.emit(ev.agent_event("AgentComplete", ch, lc.block("Dest"), *fields, ("Reason", "caller")))
    eng.hangup(ch, call.hangup_cause or 16, release_device=False)
    eng.rtp_qos(lc, None)
    eng.device_down(ch.device)
    eng.hangup(lc, 16, release_device=False)
    release_member(eng, q, leg.member)


def _local_caller_ends(
    eng: Engine, call: Call, q: Queue, br: Bridge, leg: Leg, talked: float, fields: Fields
) -> None:
    """A Local-channel caller's other half hung up (``ami-originate.txt`` teardown)."""
    ch, lc = call.channel, leg.channel
    if not call.interrupted.is_set():
        eng.emit(ev.hangup_request(ch, 0))
    eng.emit(ev.agent_event("AgentComplete", ch, lc.block("Dest"), *fields, ("Reason", "caller")))
    eng.setvar(ch, "BRIDGEPEER", "")
    eng.setvar(ch, "BRIDGEPVTCALLID", "")
    eng.setvar(lc, "BRIDGEPEER", "")
    eng.device_down(ch.device)
    eng.bridge_leave(br, ch)
    eng.cdr(ch, lc.name, "ANSWERED")
    setvars(eng, ch, q.queue_vars())
    call_times(eng, ch, leg.ring, talked)
    setvars(eng, ch, q.queue_vars())
    eng.emit(ev.soft_hangup_request(ch, 16))
    eng.hangup(ch, 16, release_device=False)
    eng.bridge_leave(br, lc)
    eng.device_down(ch.device)
    eng.emit(ev.bridge_destroy(br))
    eng.rtp_qos(lc, None)
    eng.hangup(lc, 16, release_device=False)
    release_member(eng, q, leg.member)
