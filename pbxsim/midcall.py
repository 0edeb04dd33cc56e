"""A connected queue call while it lasts: RTCP reports, hold/unhold, and the moment a
transfer starts (scripted by ``Call.plan`` or requested over AMI).

Hold follows ``ami-hold-unhold.txt`` (the operator's phone sends a ``sendonly`` re-INVITE):
Hold on the operator's channel, the bridge's BRIDGEPEER noise, MusicOnHoldStart on the
caller and its device ONHOLD; Unhold mirrors it. Times are scenario seconds.
"""

from __future__ import annotations

from pbxsim import ami_events as ev
from pbxsim.engine import Call, Engine
from pbxsim.model import Channel

RTCP_EVERY_S = 5.0
MUSIC_CLASS = "default"


def rebridge_vars(eng: Engine, caller: Channel, op: Channel) -> None:
    """The BRIDGEPEER/BRIDGEPVTCALLID pair both SIP legs get again after a re-INVITE."""
    eng.setvar(op, "BRIDGEPEER", caller.name)
    eng.setvar(op, "BRIDGEPVTCALLID", f"1-{caller.uniqueid}@127.0.0.1")
    eng.setvar(caller, "BRIDGEPEER", op.name)
    eng.setvar(caller, "BRIDGEPVTCALLID", caller.variables.get("PVTCALLID", caller.uniqueid))


def hold(eng: Engine, call: Call, op: Channel) -> None:
    """The operator ``op`` puts the caller on hold (music on hold for the caller)."""
    caller = call.channel
    eng.emit(ev.chan_event("Hold", "call", op, ("MusicClass", MUSIC_CLASS)))
    rebridge_vars(eng, caller, op)
    eng.emit(ev.chan_event("MusicOnHoldStart", "call", caller, ("Class", MUSIC_CLASS)))
    eng.emit(ev.device_state(caller.device, "ONHOLD"))
    call.held_since = eng.clock.now()


def unhold(eng: Engine, call: Call, op: Channel) -> None:
    """The operator takes the caller off hold; the held seconds are added to ``held_s``."""
    caller = call.channel
    eng.emit(ev.chan_event("Unhold", "call", op))
    rebridge_vars(eng, caller, op)
    eng.emit(ev.chan_event("MusicOnHoldStop", "call", caller))
    eng.emit(ev.device_state(caller.device, "INUSE"))
    end_hold(eng, call)


def end_hold(eng: Engine, call: Call) -> None:
    """Account the running hold (if any) in ``call.held_s``."""
    if call.held_since is not None:
        call.held_s += eng.clock.now() - call.held_since
        call.held_since = None


async def _talk_until(eng: Engine, call: Call, until: float, rtcp: list[int]) -> bool:
    """Talk until scenario time ``until`` (RTCPSent every 5 s on SIP callers); False if
    interrupted (AMI Hangup / transfer request)."""
    ch = call.channel
    while True:
        step = min(RTCP_EVERY_S, until - eng.clock.now())
        if step <= 0:
            return True
        if await eng.clock.wait_event(call.interrupted, step):
            return False
        if step >= RTCP_EVERY_S and ch.name.startswith("PJSIP/"):
            rtcp[0] += 250
            eng.emit(ev.rtcp_sent(ch, hash(ch.uniqueid) & 0xFFFFFFFF, rtcp[0]))


def _marks(call: Call, seconds: float) -> list[tuple[float, str]]:
    plan = call.plan
    marks: list[tuple[float, str]] = []
    if plan.hold_after_s is not None and plan.hold_after_s < seconds:
        marks.append((plan.hold_after_s, "hold"))
        marks.append((min(plan.hold_after_s + plan.hold_s, seconds), "unhold"))
    if plan.transfer and plan.transfer_to and plan.transfer_after_s < seconds:
        marks.append((plan.transfer_after_s, "transfer"))
    marks.sort()
    marks.append((seconds, "end"))
    return marks


async def converse(eng: Engine, call: Call, op: Channel, seconds: float) -> str:
    """The conversation of ``call`` with operator leg ``op`` for ``seconds``.

    Returns ``done`` (talked to the end), ``transfer`` (``call.transfer_request`` is set:
    scripted or AMI) or ``interrupted`` (AMI Hangup of either side).
    """
    start, rtcp = eng.clock.now(), [0]
    for at, what in _marks(call, seconds):
        if not await _talk_until(eng, call, start + at, rtcp):
            if call.transfer_request is not None:
                call.interrupted.clear()
                return "transfer"
            if call.held_since is not None:  # the call ends on hold: the music stops
                eng.emit(ev.chan_event("MusicOnHoldStop", "call", call.channel))
                end_hold(eng, call)
            return "interrupted"
        if what == "hold":
            hold(eng, call, op)
        elif what == "unhold" and call.held_since is not None:
            unhold(eng, call, op)
        elif what == "transfer":
            plan = call.plan
            call.transfer_request = (plan.transfer, plan.transfer_to, plan.transfer_context)
            return "transfer"
    end_hold(eng, call)
    return "done"
