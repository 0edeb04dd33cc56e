"""Attended transfer of a connected queue call (AMI ``Atxfer`` or ``Call.plan``), as in
``ami-attended-transfer.txt``.

Asterisk queues the atxfer feature code ``*2`` and the extension as DTMF on the operator's
channel (DTMFEnd ×5, caller on Hold with music), creates ``Local/<exten>@<ctx>-N;1/;2``:
;1 joins the operator in a consultation bridge, ;2 runs ``Dial(PJSIP/opNNN,30)``. When the
operator hangs up (``Call.plan.transferer_hangup_s`` after the target answered, or an AMI
Hangup of the operator's channel) the consultation bridge merges into the caller's bridge
(BridgeMerge, AttendedTransfer, AgentComplete Reason ``transfer``). The Local channel is
not optimised away: the caller stays bridged to ;1 and the target to ;2 until the caller
hangs up. Times are scenario seconds.
"""

from __future__ import annotations

from dataclasses import dataclass

from pbxsim import ami_events as ev
from pbxsim.agents import Agent
from pbxsim.dial_ext import DIAL_TIMEOUT_S, Dialled, open_target, release_target
from pbxsim.dial_ext import answered as target_answered
from pbxsim.engine import Call, Engine
from pbxsim.midcall import MUSIC_CLASS, end_hold
from pbxsim.model import Bridge, Channel
from pbxsim.queue_events import Leg, call_times, member_fields, release_member, setvars
from pbxsim.queues import Queue

MAX_CONSULT_S = 300.0
"""An AMI-started consultation without the operator's hangup completes after this."""
DIAL_RESET = (
    "DIALSTATUS",
    "DIALEDPEERNUMBER",
    "DIALEDPEERNAME",
    "ANSWEREDTIME",
    "ANSWEREDTIME_MS",
    "DIALEDTIME",
    "DIALEDTIME_MS",
    "RINGTIME",
    "RINGTIME_MS",
    "PROGRESSTIME",
    "PROGRESSTIME_MS",
)


@dataclass
class Consult:
    """The channels and bridges of one attended transfer."""

    caller: Channel
    op: Channel
    queue_bridge: Bridge
    one: Channel
    two: Channel
    bridge: Bridge
    target: Dialled | None = None
    """Set once the target answered."""


def _dtmf(eng: Engine, op: Channel, digits: str) -> None:
    for d in digits:
        eng.emit(ev.dtmf_end(op, d, 0, "Received"))


def _feature_code(eng: Engine, call: Call, op: Channel, exten: str, ctx: str) -> None:
    """``*2`` + extension queued as DTMF on the operator's channel; the caller is held."""
    ch = call.channel
    eng.setvar(op, "TRANSFER_CONTEXT", ctx)
    _dtmf(eng, op, "*2")
    eng.emit(ev.chan_event("Hold", "call", op))  # the feature's hold names no class
    eng.emit(ev.chan_event("MusicOnHoldStart", "call", ch, ("Class", MUSIC_CLASS)))
    eng.emit(ev.device_state(ch.device, "ONHOLD"))
    call.held_since = eng.clock.now()
    _dtmf(eng, op, exten)


def _local_pair(
    eng: Engine, ch: Channel, op: Channel, exten: str, ctx: str
) -> tuple[Channel, Channel, Bridge]:
    """``Local/<exten>@<ctx>-N;1/;2`` (linked to the call), the consultation bridge and the
    LocalBridge event."""
    base = f"Local/{exten}@{ctx}-{eng.ids.local_suffix()}"
    one = eng.new_channel(base + ";1", context=ctx, exten=exten, linkedid=op.linkedid)
    two = eng.new_channel(base + ";2", context=ctx, exten=exten, state=4, linkedid=op.linkedid)
    setvars(eng, one, [("TRANSFERERNAME", op.name), ("ATTENDEDTRANSFER", op.name)])
    eng.inherit(ch, one)
    bridge = eng.bridge_create()
    setvars(eng, two, [("ATTENDEDTRANSFER", op.name), ("TRANSFERERNAME", op.name)])
    eng.inherit(ch, two)
    two.set_callerid(op.cid_num, op.cid_name)
    eng.emit(ev.new_callerid(two))
    eng.emit(ev.local_bridge(one, two))
    return one, two, bridge


def _open_consultation(
    eng: Engine, call: Call, leg: Leg, br: Bridge, exten: str, ctx: str
) -> Consult:
    """The Local pair, ;2 starting Dial, ;1 and the operator in the consultation bridge."""
    ch, op = call.channel, leg.channel
    one, two, cb = _local_pair(eng, ch, op, exten, ctx)
    eng.exten(two, 1, "Dial", f"PJSIP/op{exten},{DIAL_TIMEOUT_S}")
    setvars(eng, two, [(k, "") for k in DIAL_RESET])
    one.set_connected(op.cid_num, op.cid_name)
    eng.emit(ev.new_connected_line(one))
    eng.bridge_enter(cb, one)
    eng.setvar(one, "ATTENDEDTRANSFER", "")
    eng.bridge_leave(br, op)
    eng.bridge_enter(cb, op)
    _consult_peers(eng, ch, op, one, first=True)
    op.set_connected(one.cid_num, one.cid_name)
    eng.emit(ev.new_connected_line(op))
    return Consult(ch, op, br, one, two, cb)


def _consult_peers(
    eng: Engine, ch: Channel, op: Channel, one: Channel, first: bool = False
) -> None:
    eng.setvar(one, "BRIDGEPEER", op.name)
    eng.setvar(one, "BRIDGEPVTCALLID", ch.variables.get("PVTCALLID", ch.uniqueid))
    eng.setvar(op, "BRIDGEPEER", one.name)
    if first:
        eng.setvar(op, "BRIDGEPVTCALLID", "")


def _target_rings(eng: Engine, c: Consult, agent: Agent, exten: str) -> Channel:
    """;2 dials the target; ;1 shows it ringing to the operator. Returns the target's leg."""
    leg = open_target(eng, c.two, agent, exten)
    c.op.set_connected(agent.ext, agent.name)
    eng.emit(ev.new_connected_line(c.op))
    c.one.set_callerid(agent.ext, agent.name)
    eng.set_state(c.one, 5)
    eng.emit(ev.new_callerid(c.one))
    eng.emit(ev.dial("DialState", None, c.one, ("DialStatus", "RINGING")))
    eng.emit(ev.device_state(c.one.device, "INUSE"))
    _consult_peers(eng, c.caller, c.op, c.one)
    return leg


def _target_answers(eng: Engine, c: Consult, leg: Channel, agent: Agent, ring_s: float) -> None:
    """The target answered ;2's Dial: its bridge with ;2; ;1 reports the answer."""
    br = target_answered(eng, c.two, leg, agent, enter_caller=False)
    eng.set_state(c.two, 6)
    eng.emit(ev.device_state(c.one.device, "INUSE"))
    eng.set_state(c.one, 6)
    eng.emit(ev.dial("DialEnd", None, c.one, ("DialStatus", "ANSWER")))
    _consult_peers(eng, c.caller, c.op, c.one)
    eng.emit(ev.device_state(c.one.device, "INUSE"))
    eng.bridge_enter(br, c.two)
    eng.setvar(c.two, "ATTENDEDTRANSFER", "")
    for _ in range(2):
        eng.setvar(leg, "BRIDGEPEER", c.two.name)
        eng.setvar(c.two, "BRIDGEPEER", leg.name)
        eng.setvar(c.two, "BRIDGEPVTCALLID", leg.variables.get("PVTCALLID", leg.uniqueid))
    c.target = Dialled(leg, agent, br, ring_s, eng.clock.now())


def _complete(eng: Engine, call: Call, q: Queue, c: Consult, leg: Leg, hold: int) -> None:
    """The operator hung up: merge the consultation bridge into the caller's."""
    ch, op, one = c.caller, c.op, c.one
    assert c.target is not None
    eng.setvar(op, "BRIDGEPEER", "")
    eng.emit(ev.chan_event("MusicOnHoldStop", "call", ch))
    end_hold(eng, call)
    eng.bridge_leave(c.bridge, op)
    eng.emit(ev.bridge_merge(c.queue_bridge, c.bridge))
    eng.bridge_leave(c.bridge, one)
    eng.bridge_enter(c.queue_bridge, one)
    setvars(eng, ch, [("BRIDGEPEER", one.name), ("BRIDGEPVTCALLID", "")])
    setvars(eng, one, [("BRIDGEPEER", ch.name), ("BRIDGEPVTCALLID", f"1-{ch.uniqueid}@127.0.0.1")])
    eng.emit(ev.attended_transfer(op, c.queue_bridge, c.bridge, ch, c.queue_bridge))
    eng.emit(ev.device_state(ch.device, "INUSE"))
    eng.emit(ev.bridge_destroy(c.bridge))
    talk = int(eng.clock.now() - call.connected_at)
    done = (("HoldTime", hold), ("TalkTime", talk), ("Reason", "transfer"))
    eng.emit(
        ev.agent_event("AgentComplete", ch, op.block("Dest"), *member_fields(q, leg.member), *done)
    )
    agent = c.target.agent
    ch.set_connected(agent.ext, agent.name)
    eng.emit(ev.new_connected_line(ch))
    one.set_connected(ch.cid_num, ch.cid_name)
    eng.emit(ev.new_connected_line(one))
    eng.rtp_qos(op, one)
    eng.cdr(op, "", "ANSWERED")
    eng.hangup(op, 16, release_device=False)
    c.target.leg.set_connected(ch.cid_num, ch.cid_name)
    eng.emit(ev.new_connected_line(c.target.leg))
    release_member(eng, q, leg.member)
    _target_peers(eng, c)
    c.two.set_callerid(ch.cid_num, ch.cid_name)
    eng.emit(ev.new_callerid(c.two))


def _target_peers(eng: Engine, c: Consult) -> None:
    assert c.target is not None
    leg = c.target.leg
    eng.setvar(leg, "BRIDGEPEER", c.two.name)
    eng.setvar(c.two, "BRIDGEPEER", leg.name)
    eng.setvar(c.two, "BRIDGEPVTCALLID", leg.variables.get("PVTCALLID", leg.uniqueid))


def _caller_hangs_up(
    eng: Engine, call: Call, q: Queue, c: Consult, leg: Leg, talked: float
) -> None:
    """The caller hangs up while bridged to ;1 (the rest follows through the Local pair)."""
    ch, one, two = c.caller, c.one, c.two
    assert c.target is not None
    eng.rtp_qos(ch, None)
    eng.emit(ev.hangup_request(ch))
    eng.setvar(ch, "BRIDGEPEER", "")
    setvars(eng, one, [("BRIDGEPEER", ""), ("BRIDGEPVTCALLID", "")])
    eng.bridge_leave(c.queue_bridge, ch)
    setvars(eng, ch, q.queue_vars())
    call_times(eng, ch, leg.ring, talked)
    setvars(eng, ch, q.queue_vars())
    eng.cdr(ch, leg.channel.name, "ANSWERED")
    eng.cdr(ch, one.name, "ANSWERED")
    eng.emit(ev.soft_hangup_request(ch, 16))
    eng.hangup(ch, 16, release_device=False)
    eng.bridge_leave(c.queue_bridge, one)
    eng.emit(ev.bridge_destroy(c.queue_bridge))
    eng.emit(ev.hangup_request(two, 16))
    eng.cdr(one, "", "ANSWERED")
    eng.hangup(one, 16, release_device=False)
    setvars(eng, two, [("BRIDGEPEER", ""), ("BRIDGEPVTCALLID", "")])
    eng.device_down(ch.device)
    eng.setvar(c.target.leg, "BRIDGEPEER", "")
    eng.emit(ev.device_state(one.device, "NOT_INUSE"))
    _target_side_ends(eng, c)


def _target_side_ends(eng: Engine, c: Consult) -> None:
    """;2 leaves the target's bridge and hangs up; then the target's channel."""
    assert c.target is not None
    two, t = c.two, c.target
    eng.bridge_leave(t.bridge, two)
    talked = eng.clock.now() - t.answered_at
    dialed = talked + t.ring
    setvars(
        eng,
        two,
        [
            ("ANSWEREDTIME", str(int(talked))),
            ("ANSWEREDTIME_MS", str(int(talked * 1000))),
            ("DIALEDTIME", str(int(dialed))),
            ("DIALEDTIME_MS", str(int(dialed * 1000))),
            ("DIALSTATUS", "ANSWER"),
        ],
    )
    eng.emit(ev.soft_hangup_request(two, 16))
    eng.hangup(two, 16, release_device=False)
    eng.emit(ev.device_state(two.device, "NOT_INUSE"))
    eng.bridge_leave(t.bridge, t.leg)
    eng.cdr(two, t.leg.name, "ANSWERED")
    eng.emit(ev.bridge_destroy(t.bridge))
    eng.rtp_qos(t.leg, None)
    eng.hangup(t.leg, 16, release_device=False)
    release_target(eng, t.agent)


async def attended(
    eng: Engine, call: Call, q: Queue, br: Bridge, leg: Leg, hold: int, agent: Agent, ctx: str
) -> None:
    """Attended transfer of ``call`` from ``leg`` to ``agent`` (its extension in ``ctx``),
    until the caller hangs up. Simplifications: the target always answers (after its drawn
    ring time, at most 30 s); hangups during the consultation only end it early."""
    call.interrupted.clear()
    _feature_code(eng, call, leg.channel, agent.ext, ctx)
    c = _open_consultation(eng, call, leg, br, agent.ext, ctx)
    target_leg = _target_rings(eng, c, agent, agent.ext)
    ring_s = agent.draw_ring()
    ring_s = min(DIAL_TIMEOUT_S, ring_s if ring_s is not None else agent.profile.ring_s[1])
    await eng.clock.sleep(ring_s)
    _target_answers(eng, c, target_leg, agent, ring_s)
    scripted = call.plan.transfer == "attended"
    wait = call.plan.transferer_hangup_s if scripted else MAX_CONSULT_S
    await eng.clock.wait_event(call.interrupted, wait)
    caller_gone = call.interrupted.is_set() and not call.peer_hangup  # AMI Hangup of the caller
    call.interrupted.clear()
    call.peer_hangup = False
    _complete(eng, call, q, c, leg, hold)
    seconds = call.talk_s if call.talk_s is not None else agent.draw_talk()[0]
    start = eng.clock.now()
    if not caller_gone:
        await eng.clock.wait_event(call.interrupted, seconds)
    talked = eng.clock.now() - start
    call.talks.append((agent.interface, talked))
    _caller_hangs_up(eng, call, q, c, leg, eng.clock.now() - call.connected_at)
    eng.calls_finished += 1
