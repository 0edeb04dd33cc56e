"""Transfers of a connected queue call by the operator (AMI ``BlindTransfer``/``Atxfer``
or scripted by ``Call.plan``).

Blind (``ami-blind-transfer.txt``): Unhold and BlindTransfer, the caller leaves the queue
bridge (AgentComplete Reason ``transfer``), the operator's leg hangs up, and the caller's
own channel runs ``operators,<exten>``: ``Dial(PJSIP/opNNN,30)`` into a new bridge until
it hangs up; two Cdr records. Attended: see ``pbxsim.atxfer``. Times are scenario seconds.
"""

from __future__ import annotations

from pbxsim import ami_events as ev
from pbxsim.atxfer import attended
from pbxsim.dial_ext import DIAL_TIMEOUT_S, find_agent, release_target, ring
from pbxsim.engine import Call, Engine
from pbxsim.midcall import end_hold
from pbxsim.model import Bridge, Channel
from pbxsim.queue_events import Leg, member_fields, release_member, setvars
from pbxsim.queues import Queue

DIAL_RESET = (
    "DIALSTATUS",
    "DIALEDPEERNUMBER",
    "DIALEDPEERNAME",
    "ANSWEREDTIME",
    "ANSWEREDTIME_MS",
    "DIALEDTIME",
    "DIALEDTIME_MS",
    "RINGTIME",
)


async def transfer(
    eng: Engine, call: Call, q: Queue, br: Bridge, leg: Leg, hold: int, start: float
) -> str:
    """Run the transfer in ``call.transfer_request``; always ``GONE`` (the caller's
    channel has hung up when it returns)."""
    assert call.transfer_request is not None
    kind, exten, context = call.transfer_request
    end_hold(eng, call)
    talked = eng.clock.now() - start
    q.record_talk(talked)
    call.talks.append((leg.member.agent.interface, talked))
    agent = find_agent(eng, exten)
    if kind == "attended" and agent is None:  # to nobody: ends like a blind one to nobody
        kind = "blind"
    call.transfers.append((kind, leg.member.agent.ext, exten))
    if kind == "attended" and agent is not None:
        await attended(eng, call, q, br, leg, hold, agent, context)
    else:
        await blind(eng, call, q, br, leg, hold, exten, context)
    return "GONE"


def _leave_queue_bridge(
    eng: Engine, call: Call, q: Queue, br: Bridge, leg: Leg, hold: int, exten: str, ctx: str
) -> None:
    """BlindTransfer: the caller leaves the queue bridge and app_queue reports it."""
    ch, lc = call.channel, leg.channel
    eng.emit(ev.chan_event("Unhold", "call", lc))
    eng.setvar(lc, "BLINDTRANSFER", ch.name)
    eng.setvar(ch, "BLINDTRANSFER", lc.name)
    setvars(eng, lc, [("BRIDGEPEER", ""), ("BRIDGEPVTCALLID", "")])
    eng.emit(ev.blind_transfer(lc, ch, br, ctx, exten))
    setvars(eng, ch, [("BRIDGEPEER", ""), ("BRIDGEPVTCALLID", "")])
    ch.goto(ctx, exten, 1)
    eng.emit(ev.newexten(ch, ch.app, ch.app_data))
    eng.bridge_leave(br, ch)
    since = eng.clock.wall() - ch.answered
    setvars(eng, ch, [("DIALEDTIME", str(int(since))), ("DIALEDTIME_MS", str(int(since * 1000)))])
    setvars(eng, ch, [("ANSWEREDTIME", "0"), ("ANSWEREDTIME_MS", "0")])
    setvars(eng, ch, q.queue_vars())
    setvars(eng, ch, [(k, "") for k in DIAL_RESET])
    talk = int(eng.clock.now() - call.connected_at)
    done = (("HoldTime", hold), ("TalkTime", talk), ("Reason", "transfer"))
    eng.emit(
        ev.agent_event("AgentComplete", ch, lc.block("Dest"), *member_fields(q, leg.member), *done)
    )
    eng.bridge_leave(br, lc)
    eng.rtp_qos(lc, None)
    eng.emit(ev.bridge_destroy(br))
    eng.hangup(lc, 16, release_device=False)
    release_member(eng, q, leg.member)
    eng.setvar(ch, "RINGTIME_MS", "")
    setvars(eng, ch, [("PROGRESSTIME", ""), ("PROGRESSTIME_MS", "")])


async def blind(
    eng: Engine, call: Call, q: Queue, br: Bridge, leg: Leg, hold: int, exten: str, ctx: str
) -> None:
    """Blind transfer to ``exten@ctx``; the caller dials the target and talks until it
    hangs up (``call.talk_s`` or the target's drawn talk time)."""
    ch = call.channel
    _leave_queue_bridge(eng, call, q, br, leg, hold, exten, ctx)
    eng.cdr(ch, leg.channel.name, "ANSWERED")
    ch.app, ch.app_data = "Dial", f"PJSIP/op{exten},{DIAL_TIMEOUT_S}"
    agent = find_agent(eng, exten)
    dialled = None if agent is None else await ring(eng, call, ch, agent, exten)
    if dialled is None:
        _caller_alone(eng, call)
        return
    eng.setvar(ch, "BLINDTRANSFER", "")
    _bridge_noise(eng, ch, dialled.leg)
    seconds = call.talk_s if call.talk_s is not None else dialled.agent.draw_talk()[0]
    start = eng.clock.now()
    await eng.clock.wait_event(call.interrupted, seconds)
    talked = eng.clock.now() - start
    call.talks.append((dialled.agent.interface, talked))
    _caller_hangs_up(eng, call, dialled.bridge, dialled.leg, talked, dialled.ring)
    release_target(eng, dialled.agent)
    eng.cdr(ch, dialled.leg.name, "ANSWERED")
    eng.hangup(ch, 16, release_device=False)
    eng.device_down(ch.device)
    eng.calls_finished += 1


def _bridge_noise(eng: Engine, ch: Channel, leg: Channel) -> None:
    """Three BRIDGEPEER rounds: the dialled phone gets connected-line re-INVITEs
    (``ami-blind-transfer.txt``; the queue bridge of the same capture has one)."""
    for _ in range(3):
        eng.setvar(ch, "BRIDGEPEER", leg.name)
        eng.setvar(ch, "BRIDGEPVTCALLID", ch.variables.get("PVTCALLID", ch.uniqueid))
        eng.setvar(leg, "BRIDGEPEER", ch.name)
        eng.setvar(leg, "BRIDGEPVTCALLID", f"1-{ch.uniqueid}@127.0.0.1")


def _caller_hangs_up(
    eng: Engine, call: Call, br: Bridge, leg: Channel, talked: float, ring_s: float
) -> None:
    """The caller hangs up while bridged to the dialled target (Dial's teardown)."""
    ch = call.channel
    eng.rtp_qos(ch, leg)
    eng.emit(ev.hangup_request(ch, 16))
    setvars(eng, ch, [("BRIDGEPEER", ""), ("BRIDGEPVTCALLID", "")])
    setvars(eng, leg, [("BRIDGEPEER", ""), ("BRIDGEPVTCALLID", "")])
    eng.bridge_leave(br, ch)
    eng.bridge_leave(br, leg)
    eng.emit(ev.bridge_destroy(br))
    dialed = talked + ring_s
    setvars(
        eng,
        ch,
        [
            ("ANSWEREDTIME", str(int(talked))),
            ("ANSWEREDTIME_MS", str(int(talked * 1000))),
            ("DIALEDTIME", str(int(dialed))),
            ("DIALEDTIME_MS", str(int(dialed * 1000))),
            ("DIALSTATUS", "ANSWER"),
        ],
    )
    eng.rtp_qos(leg, None)
    eng.emit(ev.soft_hangup_request(ch, 16))
    eng.hangup(leg, 16, release_device=False)


def _caller_alone(eng: Engine, call: Call) -> None:
    """Nobody to transfer to (unknown/unregistered extension or no answer): the dialplan
    ends and the caller's channel hangs up."""
    ch = call.channel
    eng.setvar(ch, "DIALSTATUS", "CHANUNAVAIL")
    eng.emit(ev.soft_hangup_request(ch, 16))
    eng.cdr(ch, "", "NO ANSWER")
    eng.hangup(ch, 16, release_device=False)
    eng.device_down(ch.device)
    eng.calls_finished += 1
