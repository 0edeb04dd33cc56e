"""The lab dialplan (``tests/fixtures/asterisk/lab-config/extensions.conf``) as call flows.

``[from-trunk]`` sets ``__AD_SOURCE``/``__DID`` per DID and goes to ``[route-inbound]``
(FastAGI route → Playback → Queue) or straight to ``Stasis``. pbxsim extends priority 7
of route-inbound so every ROUTE_MODE the routing server may set is honoured:

* ``queue`` (default) — ``Queue(${ROUTE_QUEUE},r,,,45)`` with ``ROUTE_PRIORITY`` and the
  preferred member ``ROUTE_AGENT`` (e.g. ``PJSIP/op102``) rung alone first;
* ``stasis`` / ``bot`` — ``Stasis(callserver,inbound,${DID})`` (the Stasis hook);
* ``callback`` — ``Playback(callback-ok)`` then Hangup (the server owns the callback);
* ``voicemail`` — ``VoiceMail(${ROUTE_VM},s)`` then Hangup.

Times are scenario seconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pbxsim import ami_events as ev
from pbxsim.agi_client import AgiRequest, AgiSession
from pbxsim.engine import Call, Engine
from pbxsim.ledger import record as ledger_record
from pbxsim.plan import MidCall
from pbxsim.queue_call import queue_app
from pbxsim.stasis_run import run_stasis
from pbxsim.stasis_session import PLAYBACK_SECONDS
from pbxsim.vhold_plan import vhold_exit

QUEUE_TIMEOUT_S = 45.0
VHOLD_REJOIN_WAIT_S = 300.0
"""``[callbacks-vhold]``: ``Queue(${ROUTE_QUEUE},r,,,300,,,,${QUEUEPOSITION})``."""


@dataclass(frozen=True)
class InboundCall:
    """One call from the carrier, as drawn by the traffic model or a scenario."""

    did: str
    caller: str
    caller_name: str = ""
    patience: float | None = None
    talk_s: float | None = None
    agent_ends: bool | None = None
    dtmf: tuple[tuple[float, str], ...] = ()
    """Digits the caller presses in Stasis: (seconds after Stasis start, digit)."""
    stasis_hold_s: float = 30.0
    """How long the caller stays in Stasis before hanging up by itself."""
    plan: MidCall = field(default_factory=MidCall)
    """Hold / transfer by the operator once connected."""
    queue_dtmf: tuple[tuple[float, str], ...] = ()
    """Digits pressed while waiting in a queue: (seconds after joining, digit)."""


@dataclass
class Dialplan:
    """DID → ad source, and which DIDs go straight to Stasis."""

    dids: dict[str, str] = field(default_factory=dict)
    stasis_dids: set[str] = field(default_factory=set)
    default_queue: str = "reception"


async def playback(eng: Engine, call: Call, name: str) -> bool:
    """Play a stock sound; False if the call was interrupted (AMI Hangup/Redirect)."""
    if await eng.clock.wait_event(call.interrupted, PLAYBACK_SECONDS.get(name, 2.0)):
        return False
    eng.setvar(call.channel, "PLAYBACKSTATUS", "SUCCESS")
    return True


def finish(eng: Engine, call: Call, cause: int, disposition: str, soft: int | None = 16) -> None:
    """End the caller's channel: SoftHangupRequest, Cdr, Hangup, device state."""
    ch = call.channel
    if ch.hungup:
        return
    if soft is not None:
        eng.emit(ev.soft_hangup_request(ch, soft))
    eng.cdr(ch, call.last_dest, disposition)
    eng.hangup(ch, cause, release_device=False)
    if ch.state == 6:
        eng.device_down(ch.device)
    eng.calls_finished += 1


async def run_inbound(eng: Engine, dp: Dialplan, spec: InboundCall) -> None:
    """The whole life of one inbound call; always ends with the caller hung up."""
    eng.calls_started += 1
    name = spec.caller_name or spec.caller
    ch = eng.new_channel(
        "PJSIP/trunk", context="from-trunk", exten=spec.did, state=4, cid=(spec.caller, name)
    )
    call = eng.register_call(ch)
    call.talk_s, call.agent_ends, call.plan = spec.talk_s, spec.agent_ends, spec.plan
    call.queue_dtmf = spec.queue_dtmf
    call.started_at = eng.clock.wall()
    try:
        await _from_trunk(eng, dp, call, spec)
    finally:
        if eng.ledger is not None and ch.hungup:  # not when pbxsim stops mid-call
            eng.ledger.write(ledger_record(call, spec.did))


async def _from_trunk(eng: Engine, dp: Dialplan, call: Call, spec: InboundCall) -> None:
    """``[from-trunk]``: the DID's ad source, then route-inbound or Stasis."""
    ch = call.channel
    eng.setvar(ch, "SIPDOMAIN", "127.0.0.1")
    source = dp.dids.get(spec.did)
    if source is None:
        eng.exten(ch, 1, "Playback", "ss-noservice")
        await playback(eng, call, "ss-noservice")
        eng.exten(ch, 2, "Hangup", "")
        finish(eng, call, 16, "NO ANSWER")
        return
    eng.exten(ch, 1, "Set", f"__AD_SOURCE={source}")
    eng.setvar(ch, "__AD_SOURCE", source)
    eng.exten(ch, 2, "Set", f"__DID={spec.did}")
    eng.setvar(ch, "__DID", spec.did)
    if spec.did in dp.stasis_dids:
        eng.exten(ch, 3, "Stasis", f"{eng.config.stasis_app},inbound,{spec.did}")
        await run_stasis(eng, call, ["inbound", spec.did], spec.dtmf, spec.stasis_hold_s)
        if not ch.hungup:
            eng.exten(ch, 4, "Hangup", "")
            finish(eng, call, 16, "ANSWERED")
        return
    eng.exten(ch, 3, "Goto", f"route-inbound,{spec.did},1")
    ch.goto("route-inbound", spec.did, 1)
    await route_inbound(eng, dp, call, spec)


async def route_inbound(eng: Engine, dp: Dialplan, call: Call, spec: InboundCall) -> None:
    """``[route-inbound]``: defaults, Answer, FastAGI, then the mode the server chose."""
    ch = call.channel
    did, source = ch.variables.get("DID", ""), ch.variables.get("AD_SOURCE", "")
    eng.exten(ch, 1, "NoOp", f"Inbound DID={did} source={source} caller={ch.cid_num}")
    eng.exten(ch, 2, "Set", f"ROUTE_QUEUE={dp.default_queue}")
    eng.setvar(ch, "ROUTE_QUEUE", dp.default_queue)
    eng.exten(ch, 3, "Set", "ROUTE_MODE=queue")
    eng.setvar(ch, "ROUTE_MODE", "queue")
    eng.exten(ch, 4, "Answer", "")
    eng.answer(ch)
    cfg = eng.config
    eng.exten(ch, 5, "AGI", f"agi://{cfg.agi_host}:{cfg.agi_port}/route,{did},{source}")
    agi = AgiSession(eng, ch, AgiRequest("route", (did, source)))
    status = await agi.run()
    eng.setvar(ch, "AGISTATUS", status)
    if agi.hangup_requested or call.interrupted.is_set():
        finish(eng, call, call.hangup_cause or 16, "ANSWERED")
        return
    mode, queue = ch.variables.get("ROUTE_MODE", "queue"), ch.variables.get("ROUTE_QUEUE", "")
    eng.exten(ch, 6, "NoOp", f"AGISTATUS={status} ROUTE_MODE={mode} ROUTE_QUEUE={queue}")
    label = {"stasis": "ari", "bot": "ari", "callback": "callback", "voicemail": "voicemail"}.get(
        mode
    )
    eng.exten(ch, 7, "GotoIf", f"{int(label is not None)}?{label or 'ari'}")
    if label == "ari":
        eng.exten(ch, 13, "Stasis", f"{cfg.stasis_app},inbound,{did}")
        await run_stasis(eng, call, ["inbound", did], spec.dtmf, spec.stasis_hold_s)
        if not ch.hungup:
            eng.exten(ch, 14, "Hangup", "")
            finish(eng, call, 16, "ANSWERED")
        return
    if label is not None:
        await _short_modes(eng, call, label)
        return
    eng.exten(ch, 8, "Playback", "hello-world")
    if not await playback(eng, call, "hello-world"):
        finish(eng, call, call.hangup_cause or 16, "ANSWERED")
        return
    await run_queue(eng, call, queue, 9, spec.patience)


async def _short_modes(eng: Engine, call: Call, label: str) -> None:
    ch = call.channel
    if label == "callback":
        eng.exten(ch, 15, "Playback", "callback-ok")
        await playback(eng, call, "callback-ok")
        eng.exten(ch, 16, "Hangup", "")
    else:
        box = ch.variables.get("ROUTE_VM", "100@default")
        eng.exten(ch, 17, "VoiceMail", f"{box},s")
        await eng.clock.wait_event(call.interrupted, 20.0)
        eng.setvar(ch, "VMSTATUS", "SUCCESS")
        eng.exten(ch, 18, "Hangup", "")
    finish(eng, call, 16, "ANSWERED")


async def run_queue(
    eng: Engine,
    call: Call,
    queue: str,
    prio: int,
    patience: float | None,
    max_wait_s: float = QUEUE_TIMEOUT_S,
    position: int = 0,
) -> None:
    """``Queue(${ROUTE_QUEUE},r,,,45)`` (options from the engine config; ``position``: the
    9th argument) and what follows it in route-inbound."""
    ch = call.channel
    args = f"{queue},{eng.config.queue_options},,,{int(max_wait_s)}"
    eng.exten(ch, prio, "Queue", args + (f",,,,{position}" if position else ""))
    q = eng.queues.get(queue)
    if q is None:
        status = "UNKNOWN"
    else:
        status = await queue_app(eng, call, q, max_wait_s, patience, position)
    if status == "GONE":
        eng.calls_finished += 1
        return
    if status == "EXITKEY":  # the queue's context: [callbacks-vhold]
        call.queue_dtmf = ()

        async def rejoin(place: int) -> None:
            await run_queue(eng, call, queue, 4, patience, VHOLD_REJOIN_WAIT_S, place)

        if await vhold_exit(eng, call, rejoin):
            finish(eng, call, call.hangup_cause or 16, "ANSWERED")
        return
    if status == "ABANDON":
        finish(eng, call, 0, "NO ANSWER")
        return
    if call.redirect is not None:
        await redirect(eng, call)
        return
    if status in ("TIMEOUT", "UNKNOWN"):
        eng.setvar(ch, "QUEUESTATUS", status)
    if position:  # [callbacks-vhold]'s rejoin: Hangup() follows the Queue()
        eng.exten(ch, prio + 1, "Hangup", "")
        finish(eng, call, 16, "ANSWERED" if status == "CONTINUE" else "NO ANSWER")
        return
    eng.exten(ch, prio + 1, "NoOp", f"QUEUESTATUS={ch.variables.get('QUEUESTATUS', '')}")
    eng.exten(ch, prio + 2, "Playback", "vm-goodbye")
    await playback(eng, call, "vm-goodbye")
    eng.exten(ch, prio + 3, "Hangup", "")
    finish(eng, call, 16, "ANSWERED" if status == "CONTINUE" else "NO ANSWER")


async def redirect(eng: Engine, call: Call) -> None:
    """Continue at an AMI Redirect target: ``operators`` 500/501 (queues) or anything else
    (NoOp + Hangup)."""
    assert call.redirect is not None
    context, exten, prio = call.redirect
    call.redirect = None
    call.interrupted.clear()
    ch = call.channel
    ch.goto(context, exten, prio)
    targets = {("operators", "500"): "reception", ("operators", "501"): "doctors"}
    queue = targets.get((context, exten))
    if queue is None and context in eng.queues:
        queue = context
    if queue is not None:
        await run_queue(eng, call, queue, prio, None)
        return
    eng.exten(ch, prio, "NoOp", f"redirected to {context},{exten},{prio}")
    finish(eng, call, 16, "ANSWERED")
