"""``Dial(PJSIP/<number>@trunk,60)``: the second leg of an originated callback.

When an Originate with ``Context``/``Exten`` has its first leg answered (typically the
operator's softphone) and ``Exten`` is a phone number, the dialplan dials the patient over
the trunk: answered (bridge, conversation, the patient hangs up), or BUSY / NOANSWER /
CONGESTION from the scenario's ``[originate]`` mix (``numbers`` pins outcomes). Times are
scenario seconds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pbxsim import ami_events as ev
from pbxsim.engine import Call, Engine
from pbxsim.model import Channel

if TYPE_CHECKING:
    from pbxsim.originate_spec import OriginatePolicy

DIAL_TIMEOUT_S = 60.0
STATUS = {"answer": "ANSWER", "noanswer": "NOANSWER", "busy": "BUSY", "congestion": "CONGESTION"}
CAUSE = {"noanswer": 19, "busy": 17, "congestion": 34}


def is_number(exten: str) -> bool:
    digits = exten.lstrip("+")
    return digits.isdigit() and len(digits) >= 10


async def dial_trunk(
    eng: Engine, call: Call, exten: str, prio: int, outcome: str, policy: OriginatePolicy
) -> str:
    """Dial ``exten`` from ``call``'s channel; returns DIALSTATUS. ``call`` stays up."""
    ch = call.channel
    number = exten.lstrip("+")
    eng.exten(ch, prio, "Dial", f"PJSIP/{number}@trunk,{int(DIAL_TIMEOUT_S)}")
    for var in ("DIALSTATUS", "DIALEDTIME", "ANSWEREDTIME"):
        eng.setvar(ch, var, "")
    callee = eng.new_channel(
        "PJSIP/trunk", context="from-trunk", exten="s", cid=(number, number), linkedid=ch.linkedid
    )
    eng.inherit(ch, callee)
    eng.setvar(callee, "DIALEDPEERNUMBER", f"{number}@trunk")
    call.last_dest = callee.name
    eng.emit(ev.dial("DialBegin", ch, callee, ("DialString", f"{number}@trunk")))
    status = STATUS[outcome]
    if outcome in ("answer", "noanswer"):
        eng.set_state(callee, 5)
        eng.emit(ev.dial("DialState", ch, callee, ("DialStatus", "RINGING")))
        ring = eng.rng.uniform(*policy.ring_s) if outcome == "answer" else DIAL_TIMEOUT_S
        if await eng.clock.wait_event(call.interrupted, ring):
            status = "CANCEL"
    if status != "ANSWER":
        eng.emit(ev.dial("DialEnd", ch, callee, ("DialStatus", status)))
        eng.hangup(callee, CAUSE.get(outcome, 16))
        eng.setvar(ch, "DIALSTATUS", status)
        return status
    await _connected(eng, call, callee, number, policy)
    return "ANSWER"


async def _connected(
    eng: Engine, call: Call, callee: Channel, number: str, policy: OriginatePolicy
) -> None:
    """The patient answered: bridge, talk, the patient (or an AMI Hangup) ends it."""
    ch = call.channel
    eng.answer(callee)
    eng.emit(ev.dial("DialEnd", ch, callee, ("DialStatus", "ANSWER")))
    ch.set_connected(number, number)
    eng.emit(ev.new_connected_line(ch))
    br = eng.bridge_create()
    eng.bridge_enter(br, ch)
    eng.bridge_enter(br, callee)
    eng.setvar(ch, "BRIDGEPEER", callee.name)
    eng.setvar(callee, "BRIDGEPEER", ch.name)
    interrupted = await eng.clock.wait_event(call.interrupted, eng.rng.uniform(*policy.talk_s))
    leaver = ch if interrupted else callee
    eng.rtp_qos(callee, None)
    eng.emit(ev.hangup_request(leaver))
    for c in (callee, ch):
        eng.setvar(c, "BRIDGEPEER", "")
        eng.bridge_leave(br, c)
    eng.emit(ev.bridge_destroy(br))
    eng.cdr(callee, "", "ANSWERED")
    eng.hangup(callee, 16)
    eng.setvar(ch, "DIALSTATUS", "ANSWER")
