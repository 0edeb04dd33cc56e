"""callserver's virtual hold dialplan (``callbacks/dialplan-snippet.conf``) as call flows.

* ``[callbacks-vhold]`` — the queue's ``context``: a waiting caller who pressed 1 left the
  queue (``queue_call``) and lands here: ``AGI(…/vhold_accept,${CHANNEL(linkedid)})``; accepted
  → ``Playback(callbacks/we-will-call-you-back)``, Hangup; refused → ``Playback(sorry)`` and
  back into the queue at its own place (``Queue(…,rt,,,300,,,,${QUEUEPOSITION})``).
* ``[callbacks-vhold-slot]`` — callserver Originates ``Local/<digits>@callbacks-vhold-slot/n``:
  the ``;2`` half runs ``Queue(${VHOLD_QUEUE},t,,,,,,,${VHOLD_POSITION})`` (app_queue's position
  argument: it joins at the caller's own place) and stays unanswered until a member answers;
  then ``;1`` is answered (OriginateResponse Success) and runs the Originate's
  ``Context``/``Exten`` (``callbacks-dial``: ``Dial(PJSIP/<patient>@trunk,60)``). The
  Originate's ``Timeout`` bounds the wait: ``;1`` is hung up, ``;2`` abandons the queue and the
  Originate fails (Reason 0).

Times are scenario seconds.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from pbxsim import ami_events as ev
from pbxsim.agi_client import AgiRequest, AgiSession
from pbxsim.engine import Call, Engine
from pbxsim.model import Channel
from pbxsim.outbound import dial_trunk, is_number
from pbxsim.queue_call import queue_app
from pbxsim.stasis_session import PLAYBACK_SECONDS

if TYPE_CHECKING:
    from pbxsim.originate_spec import OriginatePolicy, OriginateRequest

SLOT_CONTEXT = "callbacks-vhold-slot"
EXIT_CONTEXT = "callbacks-vhold"
SLOT_TALK_S = 24 * 3600.0
"""The member stays bridged with the slot until its ``;1`` half (the patient's call) ends."""

Respond = Callable[[bool, int, Channel | None], None]
"""Emits the OriginateResponse: (success, Reason, the originated channel)."""
Pick = Callable[[str], str]
"""The patient's outcome for a number (``[originate]``: pinned or drawn)."""
Rejoin = Callable[[int], Awaitable[None]]


async def _play(eng: Engine, call: Call, ch: Channel, prio: int, name: str) -> bool:
    eng.exten(ch, prio, "Playback", name)
    if await eng.clock.wait_event(call.interrupted, PLAYBACK_SECONDS.get(name, 2.0)):
        return False
    eng.setvar(ch, "PLAYBACKSTATUS", "SUCCESS")
    return True


async def vhold_exit(eng: Engine, call: Call, rejoin: Rejoin) -> bool:
    """``[callbacks-vhold]`` exten 1 after the caller left the queue with the key. Returns
    True when the caller's channel is to be hung up (accepted, or hung up meanwhile); False
    after ``rejoin`` ran (refused: back into the queue at ``QUEUEPOSITION``)."""
    ch = call.channel
    cfg = eng.config
    eng.exten(ch, 1, "AGI", f"agi://{cfg.agi_host}:{cfg.agi_port}/vhold_accept,{ch.linkedid}")
    agi = AgiSession(eng, ch, AgiRequest("vhold_accept", (ch.linkedid,)))
    eng.setvar(ch, "AGISTATUS", await agi.run())
    if agi.hangup_requested or call.interrupted.is_set():
        return True
    accepted = ch.variables.get("VHOLD_ACCEPTED", "") == "1"
    eng.exten(ch, 2, "GotoIf", f"{int(accepted)}?ok")
    if accepted:
        if await _play(eng, call, ch, 6, "callbacks/we-will-call-you-back"):
            eng.exten(ch, 7, "Hangup", "")
        return True
    if not await _play(eng, call, ch, 3, "sorry"):
        return True
    position = ch.variables.get("QUEUEPOSITION", "")
    await rejoin(int(position) if position.isdigit() else 0)
    return False


async def run_slot(
    eng: Engine,
    req: OriginateRequest,
    policy: OriginatePolicy,
    pair: tuple[Channel, Channel],
    call: Call,
    respond: Respond,
    pick: Pick,
) -> None:
    """The placeholder's life (``call`` is its ``;2`` half, registered for AMI Hangup)."""
    one, two = pair
    queue = two.variables.get("VHOLD_QUEUE", "")
    raw = two.variables.get("VHOLD_POSITION", "")
    position = int(raw) if raw.isdigit() else 0
    attempt = two.variables.get("CALLBACK_ATTEMPT", "")
    eng.exten(two, 1, "NoOp", f"virtual hold {attempt}: place {position} in {queue}")
    eng.exten(two, 2, "Queue", f"{queue},t,,,,,,,{position}")
    call.talk_s, call.agent_ends = SLOT_TALK_S, False
    call.on_connect = lambda: _answered(eng, req, policy, pair, call, (respond, pick))
    q = eng.queues.get(queue)
    # the Originate's Timeout: ;1 gives up waiting for the answer and hangs up (an abandon)
    status = "UNKNOWN" if q is None else await queue_app(
        eng, call, q, req.timeout_s + 1.0, req.timeout_s, position
    )  # fmt: skip
    if status == "GONE":
        eng.calls_finished += 1
        return
    if status == "UNKNOWN":
        eng.setvar(two, "QUEUESTATUS", status)
    # never answered: ;1 hangs up (Originate Timeout) or ;2 ended on its own (Reason 1)
    reason = 0 if status == "ABANDON" and not call.hangup_cause else 1
    if not one.hungup:
        eng.emit(ev.dial("DialEnd", None, one, ("DialStatus", "CANCEL")))
        eng.cdr(one, "", "NO ANSWER")
        eng.hangup(one, 0 if reason == 0 else 16)
    respond(False, reason, None)
    if not two.hungup:
        eng.emit(ev.soft_hangup_request(two, 16))
        eng.cdr(two, "", "NO ANSWER")
        eng.hangup(two, 16, release_device=False)
    eng.calls_finished += 1


def _answered(
    eng: Engine,
    req: OriginateRequest,
    policy: OriginatePolicy,
    pair: tuple[Channel, Channel],
    call: Call,
    hooks: tuple[Respond, Pick],
) -> None:
    """A member answered the slot: ``;2`` is answered by the bridge, ``;1`` with it; the
    Originate succeeds and ``;1`` goes on at ``Context``/``Exten``."""
    one, two = pair
    eng.set_state(two, 6)
    eng.set_state(one, 6)
    eng.device_up(one.device)
    eng.emit(ev.dial("DialEnd", None, one, ("DialStatus", "ANSWER")))
    respond, pick = hooks
    respond(True, 4, one)
    eng.spawn(_one_runs(eng, req, policy, (one, pick), call), name=f"slot-{one.name}")


async def _one_runs(
    eng: Engine,
    req: OriginateRequest,
    policy: OriginatePolicy,
    one_pick: tuple[Channel, Pick],
    slot: Call,
) -> None:
    """``;1`` in ``callbacks-dial``: dial the patient; when that call ends ``;1`` hangs up and
    ``;2`` (bridged with the member) follows."""
    one, pick = one_pick
    own = eng.register_call(one)
    if is_number(req.exten) and not req.application:
        one.goto(req.context, req.exten, req.priority)
        outcome = pick(req.exten.lstrip("+"))
        await dial_trunk(eng, own, req.exten, req.priority, outcome, policy)
    else:
        await eng.clock.wait_event(own.interrupted, 30.0)
    if one.hungup:
        return
    if not slot.channel.hungup:
        eng.emit(ev.hangup_request(slot.channel, 0))
    eng.cdr(one, "", "ANSWERED")
    eng.hangup(one, 16, release_device=False)
    eng.device_down(one.device)
    slot.hangup_cause = 16
    slot.interrupted.set()
