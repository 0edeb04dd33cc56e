"""``Queue(name,r,,,timeout)`` for one caller: join, ring members, connect or give up.

The event sequences (which VarSets, in which order, Dial*/Agent* pairs) follow the golden
transcripts ``ami-queue-answered-call.txt`` and ``ami-queue-abandoned-call.txt``. Times are
scenario seconds.
"""

from __future__ import annotations

from pbxsim import ami_events as ev
from pbxsim.engine import Call, Engine
from pbxsim.local_member import open_local_leg, talk_local
from pbxsim.model import Channel
from pbxsim.queue_events import Leg, agent_status, drop_leg, leave_queue, member_fields
from pbxsim.queues import EXIT_EXTENSIONS, Entry, Member, Queue
from pbxsim.talk import talk

EMPTY_VARS = (
    "ANSWEREDTIME",
    "ANSWEREDTIME_MS",
    "DIALEDTIME",
    "DIALEDTIME_MS",
    "QUEUEWAIT",
    "QUEUEWAIT_MS",
)


async def queue_app(
    eng: Engine,
    call: Call,
    q: Queue,
    max_wait: float,
    patience: float | None,
    position: int = 0,
) -> str:
    """Run ``Queue(name,r,,,max_wait,,,,position)`` for ``call``; ``patience`` is when the
    caller hangs up; ``position`` (1-based, 0: none) is where it joins (``Queue.insert``).

    Returns ``GONE`` (connected, then the caller hung up: every channel is gone),
    ``ABANDON`` (the caller hung up while waiting; caller channel still to be hung up),
    ``TIMEOUT`` (max_wait passed), ``CONTINUE`` (agent ended the call, or a Redirect) or
    ``EXITKEY`` (the caller pressed a digit of the queue's ``context``: the channel continues
    there, ``QUEUEPOSITION`` is set).
    """
    ch = call.channel
    for var in EMPTY_VARS:
        eng.setvar(ch, var, "")
    prio = ch.variables.get("ROUTE_PRIORITY") or ch.variables.get("QUEUE_PRIO", "0")
    entry = Entry(ch, eng.clock.now(), 0, ch.variables.get("ROUTE_AGENT", ""))
    entry.prio = int(prio) if prio.lstrip("-").isdigit() else 0
    entry.original_position = q.insert(entry, position)
    keys = sorted((entry.joined + t, d) for t, d in call.queue_dtmf)
    call.queue = q.name
    if len(q.entries) == 1:
        eng.emit(ev.device_state(f"Queue:{q.name}", "RINGING"))
    join = (("Queue", q.name), ("Position", entry.original_position), ("Count", len(q.entries)))
    eng.emit(ev.queue_caller("QueueCallerJoin", ch, *join))
    give_up = entry.joined + max_wait
    if patience is not None:
        give_up = min(give_up, entry.joined + patience)
    abandon = patience is not None and patience < max_wait
    while True:
        now = eng.clock.now()
        left = give_up - now
        if call.interrupted.is_set() or left <= 0:
            return _leave(eng, call, q, entry, abandon or call.interrupted.is_set(), None)
        while keys and keys[0][0] <= now:
            digit = keys.pop(0)[1]
            if _pressed(eng, ch, q, digit):
                return _exit_with_key(eng, call, q, entry, digit)
        members = q.pick(entry) if q.is_turn(entry) else []
        if not members:
            await eng.clock.wait_event(q.changed, min(left, keys[0][0] - now) if keys else left)
            continue
        outcome = await _ring(eng, call, q, entry, members, left, abandon)
        if outcome in ("GONE", "CONTINUE", "ABANDON"):
            return outcome
        if outcome == "expired":
            continue
        await eng.clock.wait_event(
            call.interrupted, min(q.retry, max(0.0, give_up - eng.clock.now()))
        )


def _pressed(eng: Engine, ch: Channel, q: Queue, digit: str) -> bool:
    """The waiting caller pressed ``digit`` (DTMFBegin/End, Received); True when it is an
    extension of the queue's ``context`` (app_queue's ``valid_exit``)."""
    eng.emit(ev.dtmf_begin(ch, digit, "Received"))
    eng.emit(ev.dtmf_end(ch, digit, 120, "Received"))
    return bool(q.context) and digit in EXIT_EXTENSIONS.get(q.context, frozenset())


def _exit_with_key(eng: Engine, call: Call, q: Queue, entry: Entry, digit: str) -> str:
    """``queue_exec`` after ``valid_exit``: QUEUE* variables, ``leave_queue`` (QueueCallerLeave,
    QUEUEPOSITION), no QUEUESTATUS (its reason stays unknown); the channel goes on at
    ``context,digit,1``."""
    ch = call.channel
    eng.queue_key(ch, digit)
    for k, v in q.queue_vars():
        eng.setvar(ch, k, v)
    leave_queue(eng, ch, q, entry)
    q.notify()
    ch.goto(q.context, digit, 1)
    return "EXITKEY"


def _open_leg(eng: Engine, caller: Channel, q: Queue, m: Member) -> Channel:
    a = m.agent
    leg = eng.new_channel(
        a.interface, context="operators", exten="s", cid=(a.ext, a.name), linkedid=caller.linkedid
    )
    eng.inherit(caller, leg)
    eng.setvar(leg, "DIALEDPEERNUMBER", a.endpoint)
    # AgentCalled's Dest snapshot is taken after the connected line and exten were set
    unknown = "DestConnectedLineNum: <unknown>\r\nDestConnectedLineName: <unknown>\r\n"
    known = (
        f"DestConnectedLineNum: {caller.cid_num}\r\nDestConnectedLineName: {caller.cid_name}\r\n"
    )
    dest = (
        leg.block("Dest")
        .replace(unknown, known)
        .replace("DestExten: s\r\n", f"DestExten: {caller.exten}\r\n")
    )
    eng.emit(ev.agent_event("AgentCalled", caller, dest, *member_fields(q, m)))
    eng.emit(ev.dial("DialBegin", caller, leg, ("DialString", a.interface)))
    leg.set_state(5)
    leg.set_connected(caller.cid_num, caller.cid_name)
    leg.exten = caller.exten
    leg.touch()
    eng.emit(ev.newstate(leg))
    eng.exten(leg, 1, "AppQueue", "(Outgoing Line)")
    eng.emit(ev.new_connected_line(leg))
    eng.emit(ev.dial("DialState", caller, leg, ("DialStatus", "RINGING")))
    a.state = "ringing"
    agent_status(eng, a)
    eng.emit(ev.device_state(a.interface, "RINGING"))
    return leg


def _no_answer(eng: Engine, caller: Channel, q: Queue, legs: Legs, window: float) -> None:
    """Nobody answered within ``window`` s: app_queue's ``rna()`` for every member
    (AgentRingNoAnswer, RingTime in ms), DialEnd NOANSWER for all, then ``hangupcalls()``
    (DialEnd CANCEL and hangup per leg)."""
    ring_ms = int(window * 1000)
    for m, leg in legs:
        dest = leg.block("Dest")
        fields = (*member_fields(q, m), ("RingTime", ring_ms))
        eng.emit(ev.agent_event("AgentRingNoAnswer", caller, dest, *fields))
    for _m, leg in legs:
        eng.emit(ev.dial("DialEnd", caller, leg, ("DialStatus", "NOANSWER")))
    for m, leg in legs:
        drop_leg(eng, caller, m, leg, "CANCEL")


async def _ring(
    eng: Engine,
    call: Call,
    q: Queue,
    entry: Entry,
    members: list[Member],
    left: float,
    abandon: bool,
) -> str:
    """One ring attempt: ``GONE``/``CONTINUE`` (connected; caller hung up / goes on),
    ``ABANDON`` (caller left), ``expired`` (queue timeout) or ``noanswer``."""
    caller = call.channel
    entry.ringing = True
    legs = [
        (m, (open_local_leg if m.agent.local else _open_leg)(eng, caller, q, m)) for m in members
    ]
    call.last_dest = legs[-1][1].name
    started = eng.clock.now()
    draws = [(m.agent.draw_ring(), m, leg) for m, leg in legs]
    answers = [(t, m, leg) for t, m, leg in draws if t is not None and t < q.timeout]
    first = min(answers, key=lambda x: x[0]) if answers else None
    window = min(q.timeout, left)
    wait = first[0] if first and first[0] < window else window
    interrupted = await eng.clock.wait_event(call.interrupted, wait)
    entry.ringing = False
    if interrupted or ((first is None or first[0] >= window) and left <= q.timeout):
        if call.redirect is None and (interrupted or abandon):
            _abandon(eng, call, q, entry, legs)
            return "ABANDON"
        if interrupted:  # AMI Redirect
            for m, leg in legs:
                drop_leg(eng, caller, m, leg, "CANCEL")
        else:  # the queue timeout capped this ring (timeoutpriority=app): a ring-no-answer
            _no_answer(eng, caller, q, legs, window)
        return "expired"
    if first is None or first[0] >= window:
        _no_answer(eng, caller, q, legs, window)
        return "noanswer"
    _, winner, wleg = first
    others = [(m, leg) for m, leg in legs if m is not winner]
    won = Leg(winner, wleg, eng.clock.now() - started, others)
    if winner.agent.local:
        return await talk_local(eng, call, q, entry, won)
    return await talk(eng, call, q, entry, won)


def _abandon(
    eng: Engine, call: Call, q: Queue, entry: Entry, legs: list[tuple[Member, Channel]]
) -> None:
    """The caller hung up while members were ringing (ami-queue-abandoned-call.txt)."""
    ch = call.channel
    if ch.cid_num and ch.name.startswith("PJSIP/"):
        eng.rtp_qos(ch, None)
    eng.emit(ev.hangup_request(ch))
    # wait_for_answer's publish_dial_end_event(CANCEL), then hangupcalls() goes over the legs again
    for _pass in range(2):
        for _m, leg in legs:
            eng.emit(ev.dial("DialEnd", ch, leg, ("DialStatus", "CANCEL")))
    _leave(eng, call, q, entry, True, legs)


Legs = list[tuple[Member, Channel]]


def _abandon_vars(eng: Engine, call: Call, q: Queue, entry: Entry, legs: Legs | None) -> None:
    """What app_queue does when the caller hangs up while waiting."""
    ch = call.channel
    wait = eng.clock.now() - entry.joined
    if legs is None:
        eng.emit(ev.hangup_request(ch))
    secs, ms = str(int(wait)), str(int(wait * 1000))
    for var, val in (("QUEUEWAIT", secs), ("QUEUEWAIT_MS", ms), ("DIALEDTIME", secs)):
        eng.setvar(ch, var, val)
    for var, val in (("DIALEDTIME_MS", ms), ("ANSWEREDTIME", "0"), ("ANSWEREDTIME_MS", "0")):
        eng.setvar(ch, var, val)
    eng.setvar(ch, "ABANDONED", "TRUE")
    _record_abandoned(eng, call, q, entry)
    for k, v in q.queue_vars():
        eng.setvar(ch, k, v)
    for m, leg in legs or []:
        eng.hangup(leg, 0)
        m.agent.state = "idle"


def _record_abandoned(eng: Engine, call: Call, q: Queue, entry: Entry) -> None:
    """app_queue's record_abandoned(): QUEUE* variables, then the counter and the event."""
    ch = call.channel
    for k, v in q.queue_vars():
        eng.setvar(ch, k, v)
    q.abandoned += 1
    where = (("Position", q.position(entry)), ("OriginalPosition", entry.original_position))
    hold = int(eng.clock.now() - entry.joined)
    call.wait_s, call.abandoned_at = hold, eng.clock.wall()
    eng.emit(
        ev.queue_caller("QueueCallerAbandon", ch, ("Queue", q.name), *where, ("HoldTime", hold))
    )


def _leave(
    eng: Engine, call: Call, q: Queue, entry: Entry, abandoned: bool, legs: Legs | None
) -> str:
    """Leave the queue by abandon, timeout or redirect; returns QUEUESTATUS."""
    ch = call.channel
    redirect = call.redirect is not None
    if abandoned and not redirect:
        _abandon_vars(eng, call, q, entry, legs)
    elif not redirect:  # queue_exec's EXITWITHTIMEOUT: record_abandoned(), set_queue_variables()
        eng.queue_timeout(ch)
        _record_abandoned(eng, call, q, entry)
        for k, v in q.queue_vars():
            eng.setvar(ch, k, v)
    leave_queue(eng, ch, q, entry)
    for m, _leg in legs or []:
        eng.emit(ev.device_state(m.agent.interface, "NOT_INUSE"))
        agent_status(eng, m.agent)
    q.notify()
    if redirect:
        return "CONTINUE"
    return "ABANDON" if abandoned else "TIMEOUT"
