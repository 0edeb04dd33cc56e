"""AMI ``Originate``: Local channels into the lab dialplan, agents' softphones, the trunk.

* ``Local/100@lab-local`` — the ;2 half plays hello-world and joins ``reception`` (as in
  ``ami-originate.txt``); ``Local/300@lab-local`` runs route-inbound (FastAGI + queue);
  any other ``Local/X@ctx`` answers and waits.
* ``PJSIP/opNNN`` — rings that operator (answer per its profile, else no answer).
* ``PJSIP/<number>@trunk`` (or any other) — an outbound call with the scenario's outcome
  mix: answered (Reason 4) / no answer (3) / busy (5) / congestion (8).

After the first leg answered it runs ``Application``/``Data``; with ``Context``/``Exten``
where ``Exten`` is a phone number it dials that number over the trunk (``outbound.py``:
the callback pattern "ring the operator, then the patient"); a patient put into
``callbacks-patient-first`` runs that IVR (``patient_first.py``); else it stays up for a drawn
talk time. ``Local/<digits>@callbacks-vhold-slot`` is virtual hold's placeholder
(``vhold_plan.py``).

Times are scenario seconds; ``Timeout`` in the action is milliseconds like Asterisk.
"""

from __future__ import annotations

from pbxsim import ami_events as ev
from pbxsim.agents import Agent
from pbxsim.dialplan import Dialplan, InboundCall, finish, playback, route_inbound, run_queue
from pbxsim.engine import Call, Engine
from pbxsim.model import Channel
from pbxsim.originate_spec import OUTCOMES, OriginatePolicy, OriginateRequest
from pbxsim.outbound import dial_trunk, is_number
from pbxsim.patient_first import CONTEXT as PATIENT_FIRST
from pbxsim.patient_first import press_of, run_patient_first
from pbxsim.patients import REPLY_VARIABLES, outbound_record, pick_reply, stasis_patient
from pbxsim.queue_events import agent_status
from pbxsim.vhold_plan import SLOT_CONTEXT, run_slot


def parse_callerid(text: str) -> tuple[str, str]:
    """``"Name" <num>`` → (num, name)."""
    text = text.strip()
    if "<" in text and text.endswith(">"):
        name, num = text[:-1].split("<", 1)
        name = name.strip().strip('"')
        return num.strip() or "<unknown>", name or num.strip() or "<unknown>"
    return (text, text) if text else ("<unknown>", "<unknown>")


def _response(
    eng: Engine, req: OriginateRequest, ok: bool, reason: int, ch: Channel | None
) -> None:
    eng.emit(ev.originate_response(req.action_id, ok, req.target(), reason, ch))


async def originate(
    eng: Engine, dp: Dialplan, policy: OriginatePolicy, req: OriginateRequest
) -> None:
    """Run one originate to its end (OriginateResponse is emitted on the way)."""
    eng.calls_started += 1
    if req.channel.startswith("Local/"):
        await _local(eng, dp, policy, req)
    else:
        started = eng.clock.wall()
        call = await _outbound(eng, policy, req)
        if eng.ledger is not None and call is not None and call.channel.hungup:
            number = req.channel.partition("/")[2].partition("@")[0]
            eng.ledger.write(outbound_record(call, number, call.outcome, started))


def _app_seconds(req: OriginateRequest, default: float) -> float:
    if req.application.lower() == "wait":
        try:
            return float(req.data)
        except ValueError:
            return default
    return default


def _local_pair(
    eng: Engine, req: OriginateRequest, exten: str, ctx: str
) -> tuple[Channel, Channel]:
    """Newchannel ×2, variables, caller ID, LocalBridge, DialBegin (``ami-originate.txt``)."""
    base = f"Local/{exten}@{ctx}-{eng.ids.local_suffix()}"
    one = eng.new_channel(base + ";1", context=ctx, exten=exten)
    two = eng.new_channel(base + ";2", context=ctx, exten=exten, state=4, linkedid=one.uniqueid)
    eng.exten(one, 1, "AppDial2", "(Outgoing Line)")
    for half in (one, two):
        for k, v in req.variables:
            eng.setvar(half, k, v)
        if req.callerid == ("<unknown>", "<unknown>"):
            continue  # no CallerID in the action: nothing changes, no events
        half.set_callerid(*req.callerid)
        if half is two:  # ;2 already sees ;1's connected line when its caller ID changes
            half.set_connected(*req.callerid)
        eng.emit(ev.new_callerid(half))
        half.set_connected(*req.callerid)
        eng.emit(ev.new_connected_line(half))
    eng.emit(ev.local_bridge(one, two))
    eng.emit(ev.dial("DialBegin", None, one, ("DialString", f"{exten}@{ctx}")))
    return one, two


def _local_answer(
    eng: Engine, req: OriginateRequest, one: Channel, two: Channel, lab: bool
) -> None:
    if lab:
        eng.exten(two, 1, "NoOp", "Lab caller via Local channel")
        eng.exten(two, 2, "Set", "CALLERID(num)=79161234567")
        eng.exten(two, 3, "Set", "CALLERID(name)=Lab Caller")
        two.set_callerid("79161234567", "Lab Caller")
        eng.emit(ev.new_callerid(two))
    eng.exten(two, 4 if lab else 1, "Answer", "")
    one.set_state(6)
    eng.emit(ev.newstate(one))
    eng.answer(two)
    eng.device_up(one.device)
    eng.emit(ev.dial("DialEnd", None, one, ("DialStatus", "ANSWER")))
    _response(eng, req, True, 4, one)
    if req.application:  # ;1 runs the application (no Newexten for it, as on Asterisk)
        one.app, one.app_data = req.application, req.data
    eng.later(_app_seconds(req, 30.0), lambda: _local_one_ends(eng, one, two))


def _lab400_answer(eng: Engine, req: OriginateRequest, one: Channel, two: Channel) -> None:
    """``lab-local`` 400: the Cyrillic-named caller answers (ami-local-member-cyrillic.txt)."""
    eng.exten(two, 1, "NoOp", "Lab caller for labq")
    eng.exten(two, 2, "Set", "CALLERID(num)=79161234567")
    two.set_callerid("79161234567", two.cid_name)
    eng.emit(ev.new_callerid(two))
    eng.exten(two, 3, "Set", "CALLERID(name)=Лаб Пациент")
    two.set_callerid("79161234567", "Лаб Пациент")
    eng.emit(ev.new_callerid(two))
    eng.exten(two, 4, "Answer", "")
    eng.set_state(two, 6)
    _response(eng, req, True, 4, one)
    eng.set_state(one, 6)
    eng.emit(ev.dial("DialEnd", None, one, ("DialStatus", "ANSWER")))
    eng.device_up(two.device)
    eng.device_up(one.device)
    if req.application:
        one.app, one.app_data = req.application, req.data
    eng.later(_app_seconds(req, 30.0), lambda: _local_one_ends(eng, one, two))


async def _local(
    eng: Engine, dp: Dialplan, policy: OriginatePolicy, req: OriginateRequest
) -> None:
    spec = req.channel[len("Local/") :].split("/", 1)[0]
    exten, _, ctx = spec.partition("@")
    ctx = ctx or "default"
    one, two = _local_pair(eng, req, exten, ctx)
    call = eng.register_call(two)
    call.talk_s, call.agent_ends = 3600.0, False
    if ctx == SLOT_CONTEXT:
        await run_slot(
            eng, req, policy, (one, two), call,
            lambda ok, reason, ch: _response(eng, req, ok, reason, ch),
            lambda number: policy.numbers.get(number) or _draw(eng, policy),
        )  # fmt: skip
        return
    if ctx == "lab-local" and exten == "400":
        _lab400_answer(eng, req, one, two)
        await run_queue(eng, call, "labq", 5, None, max_wait_s=30.0)
        finish(eng, call, 16, "ANSWERED")
        return
    lab = ctx == "lab-local" and exten in ("100", "300")
    _local_answer(eng, req, one, two, lab)
    if lab and exten == "100":
        eng.exten(two, 5, "Playback", "hello-world")
        if await playback(eng, call, "hello-world"):
            await run_queue(eng, call, "reception", 6, None)
    elif lab:
        two.goto("route-inbound", "74951234567", 1)
        two.variables.update({"AD_SOURCE": "source-a", "DID": "74951234567"})
        await route_inbound(eng, dp, call, InboundCall("74951234567", "79161234567"))
    else:
        await eng.clock.wait_event(call.interrupted, 3600.0)
    finish(eng, call, 16, "ANSWERED")


def _local_one_ends(eng: Engine, one: Channel, two: Channel) -> None:
    """The ;1 half's application (Wait) finished: ;1 hangs up, ;2 is told to hang up."""
    if one.hungup:
        return
    if not two.hungup:
        eng.emit(ev.hangup_request(two, 0))
    eng.cdr(one, "", "ANSWERED")
    eng.hangup(one, 0, release_device=False)
    eng.emit(ev.new_callerid(one))
    call = eng.calls.get(two.name)
    if call is not None:
        call.hangup_cause = 16
        call.interrupted.set()
        for q in eng.queues.values():
            q.notify()


def _decide(
    eng: Engine, policy: OriginatePolicy, req: OriginateRequest, agent: Agent | None, endpoint: str
) -> tuple[str, float, float]:
    """(outcome, ring seconds, talk seconds) of one originate."""
    if agent is not None:
        if not agent.available():
            return "busy", 0.0, 0.0
        ring = agent.draw_ring()
        outcome = "answer" if ring is not None and ring < req.timeout_s else "noanswer"
        return outcome, ring if ring is not None else req.timeout_s, agent.draw_talk()[0]
    outcome = policy.numbers.get(endpoint) or _draw(eng, policy)
    ring, talk = eng.rng.uniform(*policy.ring_s), eng.rng.uniform(*policy.talk_s)
    if outcome == "machine":
        talk = eng.rng.uniform(*policy.machine_s)
    if outcome == "noanswer" or (outcome in ("answer", "machine") and ring >= req.timeout_s):
        return "noanswer", req.timeout_s, talk  # rings until the Originate's Timeout: Reason 3
    return outcome, ring, talk


def _agent_state(eng: Engine, agent: Agent | None, state: str, device: str) -> None:
    """An originate to an operator's softphone changes its queue availability too."""
    if agent is None:
        return
    agent.state = state
    eng.emit(ev.device_state(agent.interface, device))
    agent_status(eng, agent)


async def _outbound(eng: Engine, policy: OriginatePolicy, req: OriginateRequest) -> Call | None:
    """An originate of a PJSIP channel; returns its call if it went to the trunk (a patient),
    None for an operator's softphone."""
    tech, _, rest = req.channel.partition("/")
    endpoint, _, host = rest.partition("@")
    agent = eng.agents.get(endpoint)
    ch = eng.new_channel(
        f"{tech}/{host or endpoint}", context=req.context or "default", exten=req.exten or "s",
        cid=req.callerid,
    )  # fmt: skip
    eng.exten(ch, 1, "AppDial2", "(Outgoing Line)")
    for k, v in req.variables:
        eng.setvar(ch, k, v)
    eng.emit(ev.dial("DialBegin", None, ch, ("DialString", rest)))
    outcome, ring, talk = _decide(eng, policy, req, agent, endpoint)
    reason, dial_status, cause, disposition = OUTCOMES[outcome]
    call = eng.register_call(ch)  # AMI Hangup reaches it while it rings, too
    call.outcome = outcome
    wait_s = min(ring, req.timeout_s)
    if outcome in ("answer", "machine", "noanswer") and await _ring_out(eng, call, agent, wait_s):
        outcome, reason, dial_status = "noanswer", 1, "CANCEL"  # hung up while ringing
        cause, disposition, call.outcome = call.hangup_cause or 16, "NO ANSWER", "cancel"
    if outcome not in ("answer", "machine"):
        eng.emit(ev.dial("DialEnd", None, ch, ("DialStatus", dial_status)))
        eng.cdr(ch, "", disposition)
        eng.hangup(ch, cause)
        _not_answered(eng, req, agent, outcome, reason)
        return call if agent is None else None
    _agent_state(eng, agent, "busy", "INUSE")
    call.answered_at = eng.clock.wall()
    if agent is None:
        _patient_audio(eng, policy, ch, endpoint, outcome == "machine")
    eng.answer(ch)
    eng.emit(ev.dial("DialEnd", None, ch, ("DialStatus", "ANSWER")))
    _response(eng, req, True, 4, ch)
    try:
        await _after_answer(eng, policy, req, call, talk, patient=agent is None)
    finally:
        _agent_state(eng, agent, "idle", "NOT_INUSE")
    finish(eng, call, 16, "ANSWERED")
    return call if agent is None else None


def _not_answered(
    eng: Engine, req: OriginateRequest, agent: Agent | None, outcome: str, reason: int
) -> None:
    if outcome == "noanswer":
        _agent_state(eng, agent, "idle", "NOT_INUSE")
    _response(eng, req, False, reason, None)
    eng.calls_finished += 1


def _patient_audio(
    eng: Engine, policy: OriginatePolicy, ch: Channel, number: str, machine: bool
) -> None:
    """``PBXSIM_AUDIO`` / ``PBXSIM_DTMF`` / ``PBXSIM_REPLY_AFTER`` of an answered trunk call,
    unless the Originate set any of them already (the control hook wins)."""
    if not any(k in ch.variables for k in REPLY_VARIABLES):
        for key, value in pick_reply(eng, policy, number, machine).items():
            eng.setvar(ch, key, value)


async def _ring_out(eng: Engine, call: Call, agent: Agent | None, wait_s: float) -> bool:
    """The originated channel rings ``wait_s`` scenario seconds; True if an AMI Hangup
    ended it first (``__ast_request_and_dial`` then reports Reason 1, hangup)."""
    _agent_state(eng, agent, "ringing", "RINGING")
    eng.set_state(call.channel, 5)
    return await eng.clock.wait_event(call.interrupted, wait_s)


async def _after_answer(
    eng: Engine,
    policy: OriginatePolicy,
    req: OriginateRequest,
    call: Call,
    talk: float,
    patient: bool,
) -> None:
    """Run the Application (Stasis: the hook) or dial ``Exten``; a patient (or machine)
    hangs up after ``talk`` seconds even if the application would wait longer."""
    ch = call.channel
    if req.application.lower() == "stasis" and await stasis_patient(eng, call, req.data, talk):
        return
    if patient and not req.application and req.context == PATIENT_FIRST:
        number = req.channel.partition("/")[2].partition("@")[0]
        await run_patient_first(eng, call, press_of(call, policy.press, number), talk)
    elif not req.application and is_number(req.exten):
        ch.goto(req.context, req.exten, req.priority)
        callee = req.exten.lstrip("+")
        pinned = policy.numbers.get(callee) or _draw(eng, policy)
        await dial_trunk(eng, call, req.exten, req.priority, pinned, policy)
    else:
        seconds = _app_seconds(req, talk)
        await eng.clock.wait_event(call.interrupted, min(seconds, talk) if patient else seconds)


def _draw(eng: Engine, p: OriginatePolicy) -> str:
    x = eng.rng.random() * (p.answer + p.noanswer + p.busy + p.congestion + p.machine)
    weights: tuple[tuple[str, float], ...] = (
        ("answer", p.answer),
        ("noanswer", p.noanswer),
        ("busy", p.busy),
    )
    if p.machine:  # last, so a scenario without machines draws exactly as before
        weights = (*weights, ("congestion", p.congestion), ("machine", p.machine))
    for name, w in weights:
        if x < w:
            return name
        x -= w
    return "congestion"
