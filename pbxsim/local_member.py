"""A queue member that is a Local channel (``Local/op-bot@lab-local/n``): the lab's
auto-answering bot that plays hello-world, waits 3 s and hangs up.

Event order and values follow ``ami-local-member-cyrillic.txt`` (caller
``Local/400@lab-local``, queue ``labq`` with ``ringinuse=yes``). Times are scenario seconds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pbxsim import ami_events as ev
from pbxsim.engine import Call, Engine
from pbxsim.model import Bridge, Channel
from pbxsim.queue_events import Leg, agent_status, call_times, left_queue, member_vars, setvars
from pbxsim.stasis_session import PLAYBACK_SECONDS

if TYPE_CHECKING:
    from pbxsim.queues import Entry, Member, Queue

BOT_WAIT_S = 3.0


def open_local_leg(eng: Engine, caller: Channel, q: Queue, m: Member) -> Channel:
    """Create the member's Local pair, AgentCalled/DialBegin, and let ;2 answer at once."""
    exten, _, ctx = m.agent.local.partition("@")
    base = f"Local/{m.agent.local}-{eng.ids.local_suffix()}"
    one = eng.new_channel(base + ";1", context=ctx, exten=exten, linkedid=caller.linkedid)
    two = eng.new_channel(base + ";2", context=ctx, exten=exten, state=4, linkedid=caller.linkedid)
    eng.local_pairs[one.name] = two
    one.set_callerid(caller.exten, "<unknown>")
    eng.exten(one, 1, "AppQueue", "(Outgoing Line)")
    eng.emit(ev.new_callerid(one))
    for half in (one, two):
        eng.setvar(half, "DIALEDPEERNUMBER", f"{m.agent.local}/n")
    two.set_callerid(caller.cid_num, caller.cid_name)
    two.set_connected(caller.exten, "<unknown>")
    eng.emit(ev.new_callerid(two))
    eng.emit(ev.new_connected_line(two))
    eng.emit(ev.local_bridge(one, two))
    unknown = "DestConnectedLineNum: <unknown>\r\nDestConnectedLineName: <unknown>\r\n"
    known = (
        f"DestConnectedLineNum: {caller.cid_num}\r\nDestConnectedLineName: {caller.cid_name}\r\n"
    )
    dest = one.block("Dest").replace(unknown, known)
    dest = dest.replace(f"DestExten: {exten}\r\n", f"DestExten: {caller.exten}\r\n")
    fields = (("Queue", q.name), ("Interface", m.agent.interface), ("MemberName", m.agent.name))
    eng.emit(ev.agent_event("AgentCalled", caller, dest, *fields))
    eng.emit(ev.dial("DialBegin", caller, one, ("DialString", m.agent.interface)))
    eng.exten(two, 1, "Answer", "")
    eng.set_state(two, 6)
    one.set_connected(caller.cid_num, caller.cid_name)
    one.goto(ctx, caller.exten, 1)
    eng.set_state(one, 6)
    eng.exten(one, 1, "AppQueue", "(Outgoing Line)")
    eng.emit(ev.new_connected_line(one))
    m.agent.forced_ring_s = 0.0
    return one


def _connect(eng: Engine, call: Call, q: Queue, entry: Entry, leg: Leg) -> tuple[Bridge, int]:
    ch, one, agent = call.channel, leg.channel, leg.member.agent
    hold = int(eng.clock.now() - entry.joined)
    call.wait_s = hold
    if call.answered_at is None:
        call.answered_at = eng.clock.wall()
    eng.emit(ev.dial("DialEnd", ch, one, ("DialStatus", "ANSWER")))
    mvars = member_vars(leg)
    setvars(eng, ch, mvars)
    setvars(eng, one, mvars)
    for target in (ch, one):
        eng.setvar(target, "QEHOLDTIME", str(hold))
        eng.setvar(target, "QEORIGINALPOS", str(entry.original_position))
    q.record_answer(hold)
    setvars(eng, ch, q.queue_vars())
    setvars(eng, one, q.queue_vars())
    left_queue(eng, call.channel, q, entry, hold)
    fields = (("Queue", q.name), ("Interface", agent.interface), ("MemberName", agent.name))
    times = (("HoldTime", hold), ("RingTime", 0))
    eng.emit(ev.agent_event("AgentConnect", ch, one.block("Dest"), *fields, *times))
    br = eng.bridge_create()
    agent.state = "busy"
    leg.member.in_call = True
    device = one.name.rsplit("-", 1)[0]
    eng.emit(ev.device_state(device, "INUSE"))
    eng.emit(ev.device_state(device, "INUSE"))
    agent_status(eng, agent)
    eng.bridge_enter(br, one)
    eng.bridge_enter(br, ch)
    eng.setvar(one, "BRIDGEPEER", ch.name)
    eng.setvar(ch, "BRIDGEPEER", one.name)
    return br, hold


async def talk_local(eng: Engine, call: Call, q: Queue, entry: Entry, leg: Leg) -> str:
    """The bot plays, waits and hangs up; the caller's Local pair goes with it. ``GONE``."""
    ch, one = call.channel, leg.channel
    two = eng.local_pairs.pop(one.name)
    br, hold = _connect(eng, call, q, entry, leg)
    start = eng.clock.now()
    eng.exten(two, 2, "Playback", "hello-world")
    await eng.clock.sleep(PLAYBACK_SECONDS["hello-world"])
    eng.setvar(two, "PLAYBACKSTATUS", "SUCCESS")
    eng.exten(two, 3, "Wait", str(int(BOT_WAIT_S)))
    await eng.clock.wait_event(call.interrupted, BOT_WAIT_S)
    eng.exten(two, 4, "Hangup", "")
    talked = eng.clock.now() - start
    q.record_talk(talked)
    call.talks.append((leg.member.agent.interface, talked))
    eng.emit(ev.soft_hangup_request(two, 16))
    eng.emit(ev.hangup_request(one, 16))
    agent = leg.member.agent
    fields = (("Queue", q.name), ("Interface", agent.interface), ("MemberName", agent.name))
    done = (("HoldTime", hold), ("TalkTime", int(talked)), ("Reason", "agent"))
    eng.emit(ev.agent_event("AgentComplete", ch, one.block("Dest"), *fields, *done))
    eng.hangup(two, 16, release_device=False)
    eng.cdr(two, "", "ANSWERED")
    eng.setvar(one, "BRIDGEPEER", "")
    device = one.name.rsplit("-", 1)[0]
    eng.emit(ev.device_state(device, "NOT_INUSE"))
    agent.state, leg.member.in_call = "idle", False
    leg.member.calls_taken += 1
    q.completed += 1
    agent_status(eng, agent)
    eng.setvar(ch, "BRIDGEPEER", "")
    eng.bridge_leave(br, one)
    eng.hangup(one, 16, release_device=False)
    eng.emit(ev.device_state(device, "NOT_INUSE"))
    eng.bridge_leave(br, ch)
    eng.emit(ev.bridge_destroy(br))
    _caller_follows(eng, call, q, leg, talked)
    return "GONE"


def _caller_follows(eng: Engine, call: Call, q: Queue, leg: Leg, talked: float) -> None:
    """The Local caller (;2) and its ;1 half hang up after the member left."""
    ch = call.channel
    setvars(eng, ch, q.queue_vars())
    call_times(eng, ch, leg.ring, talked)
    setvars(eng, ch, q.queue_vars())
    eng.emit(ev.soft_hangup_request(ch, 16))
    one = eng.channels.get(ch.name[:-1] + "1") if ch.name.endswith(";2") else None
    if one is not None:
        eng.emit(ev.hangup_request(one, 16))
    eng.hangup(ch, 16, release_device=False)
    eng.cdr(ch, leg.channel.name, "ANSWERED")
    eng.device_down(ch.device)
    if one is not None:
        eng.cdr(one, "", "ANSWERED")
        eng.hangup(one, 16, release_device=False)
        eng.device_down(one.device)
