"""``[callbacks-patient-first]`` (``callbacks/dialplan-snippet.conf``) for an answered patient.

callserver Originates the patient (``PJSIP/<number>@trunk``) into this context with
``CALLBACK_AGENT`` (the operator's interface) and ``CALLBACK_RING`` (seconds). Once the
patient answered:

    s,1 Wait(0.5)
    s,2 Read(CONFIRM,callbacks/clinic-calling-press-1,1,,2,5)
    s,3 GotoIf($["${CONFIRM}" = "1"]?agent)
    s,4 Playback(goodbye)          s,5 Hangup()
    s,6 (agent) Dial(${CALLBACK_AGENT},${CALLBACK_RING})
    s,7 Hangup()

What the patient presses is deterministic: the channel variable ``PBXSIM_PRESS`` (an
Originate ``Variable``, the per-call control hook) or else ``[originate] press`` (number or
``*`` → digits; none: the patient presses nothing). The digit comes 1 s into the prompt. A
patient who presses nothing hangs up after the drawn talk time (or sits through both Read
attempts, then ``goodbye``). The operator answers per its profile (``never_answer``: never);
an unregistered or busy operator: ``CHANUNAVAIL``/``BUSY`` at once. ``DIALSTATUS`` stays on the
patient's channel, which is what callserver reads. Times are scenario seconds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pbxsim import ami_events as ev
from pbxsim.dial_ext import answered, open_target, release_target
from pbxsim.engine import Call, Engine
from pbxsim.queue_events import agent_status
from pbxsim.stasis_session import PLAYBACK_SECONDS

if TYPE_CHECKING:
    from pbxsim.agents import Agent

CONTEXT = "callbacks-patient-first"
PROMPT = "callbacks/clinic-calling-press-1"
PRESS_AFTER_S = 1.0
"""When the patient presses, seconds into the prompt."""
READ_ATTEMPTS, READ_TIMEOUT_S = 2, 5.0


def press_of(call: Call, press: dict[str, str], number: str) -> str:
    """The digits this patient presses ("" none)."""
    hook = call.channel.variables.get("PBXSIM_PRESS")
    if hook is not None:
        return hook
    return press.get(number, press.get("*", ""))


async def run_patient_first(eng: Engine, call: Call, digits: str, talk_s: float) -> None:
    """The context for ``call`` (the answered patient); returns when the dialplan is done or
    the patient hung up (the caller of this hangs the channel up)."""
    ch = call.channel
    ch.goto(CONTEXT, "s", 1)
    start = eng.clock.now()
    gone_at = start + talk_s  # a patient who does not press hangs up after its talk time
    eng.exten(ch, 1, "Wait", "0.5")
    if await eng.clock.wait_event(call.interrupted, 0.5):
        return
    eng.exten(ch, 2, "Read", f"CONFIRM,{PROMPT},1,,{READ_ATTEMPTS},{int(READ_TIMEOUT_S)}")
    confirm = await _read(eng, call, digits[:1], gone_at)
    if confirm is None:
        return
    eng.exten(ch, 3, "GotoIf", f"{int(confirm == '1')}?agent")
    if confirm != "1":
        eng.exten(ch, 4, "Playback", "goodbye")
        if await eng.clock.wait_event(call.interrupted, PLAYBACK_SECONDS.get("goodbye", 2.0)):
            return
        eng.setvar(ch, "PLAYBACKSTATUS", "SUCCESS")
        eng.exten(ch, 5, "Hangup", "")
        return
    agent_if = ch.variables.get("CALLBACK_AGENT", "")
    ring = ch.variables.get("CALLBACK_RING", "")
    eng.exten(ch, 6, "Dial", f"{agent_if},{ring}")
    await _dial_agent(eng, call, agent_if, float(ring) if ring.isdigit() else 20.0, talk_s)
    if not ch.hungup and not call.interrupted.is_set():
        eng.exten(ch, 7, "Hangup", "")


async def _read(eng: Engine, call: Call, digit: str, gone_at: float) -> str | None:
    """``Read()``: the prompt, then the timeout, per attempt; the value (``""`` none) or None
    when the patient hung up."""
    ch = call.channel
    for _ in range(READ_ATTEMPTS):
        if digit:
            if await eng.clock.wait_event(call.interrupted, PRESS_AFTER_S):
                return None
            eng.emit(ev.dtmf_begin(ch, digit, "Received"))
            eng.emit(ev.dtmf_end(ch, digit, 120, "Received"))
            eng.setvar(ch, "CONFIRM", digit)
            eng.setvar(ch, "READSTATUS", "OK")
            return digit
        wait = PLAYBACK_SECONDS.get(PROMPT, 2.0) + READ_TIMEOUT_S
        if await eng.clock.wait_event(call.interrupted, min(wait, gone_at - eng.clock.now())):
            return None
        if eng.clock.now() >= gone_at:  # the patient gave up listening
            call.hangup_cause = 16
            return None
    eng.setvar(ch, "CONFIRM", "")
    eng.setvar(ch, "READSTATUS", "TIMEOUT")
    return ""


async def _dial_agent(eng: Engine, call: Call, interface: str, ring_s: float, talk_s: float
                      ) -> None:  # fmt: skip
    """``Dial(${CALLBACK_AGENT},${CALLBACK_RING})`` from the patient's channel."""
    ch = call.channel
    for var in ("DIALSTATUS", "DIALEDTIME", "ANSWEREDTIME"):
        eng.setvar(ch, var, "")
    agent = _agent(eng, interface)
    if agent is None or not agent.available():
        status = "CHANUNAVAIL" if agent is None or not agent.registered else "BUSY"
        eng.setvar(ch, "DIALSTATUS", status)
        return
    leg = open_target(eng, ch, agent, agent.ext)
    call.last_dest = leg.name
    rang = agent.draw_ring()
    wait = ring_s if rang is None else min(rang, ring_s)
    interrupted = await eng.clock.wait_event(call.interrupted, wait)
    if interrupted or rang is None or rang >= ring_s:
        status = "CANCEL" if interrupted else "NOANSWER"
        eng.emit(ev.dial("DialEnd", ch, leg, ("DialStatus", status)))
        eng.hangup(leg, 0 if interrupted else 19)
        _free(eng, agent)
        eng.setvar(ch, "DIALSTATUS", status)
        return
    br = answered(eng, ch, leg, agent)
    eng.setvar(ch, "BRIDGEPEER", leg.name)
    eng.setvar(leg, "BRIDGEPEER", ch.name)
    await eng.clock.wait_event(call.interrupted, talk_s)  # the patient ends the conversation
    eng.emit(ev.hangup_request(ch))
    for c in (leg, ch):
        eng.setvar(c, "BRIDGEPEER", "")
        eng.bridge_leave(br, c)
    eng.emit(ev.bridge_destroy(br))
    eng.cdr(leg, "", "ANSWERED")
    eng.hangup(leg, 16)
    release_target(eng, agent)


def _agent(eng: Engine, interface: str) -> Agent | None:
    endpoint = interface.partition("/")[2]
    return eng.agents.get(endpoint) if interface.startswith("PJSIP/") else None


def _free(eng: Engine, agent: Agent) -> None:
    agent.state = "idle"
    eng.emit(ev.device_state(agent.interface, "NOT_INUSE"))
    agent_status(eng, agent)
