"""AMI list actions (QueueStatus, QueueSummary, CoreShowChannels, Status): a response with
``EventList: start``, the item events, then ``…Complete`` with ``EventList: Complete`` and
``ListItems`` — the shape of ``ami-login.txt``'s QueueStatus."""

from __future__ import annotations

import time

from pbxsim.engine import Engine
from pbxsim.model import Channel
from pbxsim.queues import Entry, Member, Queue
from pbxsim.wire import first, message

Pairs = list[tuple[str, str]]
Head = list[tuple[str, object]]


def _start(head: Head, text: str) -> bytes:
    return message([("Response", "Success"), *head, ("EventList", "start"), ("Message", text)])


def _complete(event: str, head: Head, n: int, *extra: tuple[str, object]) -> bytes:
    return message([("Event", event), *head, ("EventList", "Complete"), ("ListItems", n), *extra])


def _params(q: Queue, head: Head) -> bytes:
    return message([
        ("Event", "QueueParams"), ("Queue", q.name), ("Max", 0), ("Strategy", q.strategy),
        ("Calls", len(q.entries)), ("Holdtime", q.holdtime), ("TalkTime", q.talktime),
        ("Completed", q.completed), ("Abandoned", q.abandoned), ("ServiceLevel", 0),
        ("ServicelevelPerf", "0.0"), ("ServicelevelPerf2", "0.0"), ("Weight", 0), *head,
    ])  # fmt: skip


def _member(q: Queue, m: Member, head: Head) -> bytes:
    a = m.agent
    return message([
        ("Event", "QueueMember"), ("Queue", q.name), ("Name", a.name), ("Location", a.interface),
        ("StateInterface", a.interface), ("Membership", m.membership), ("Penalty", m.penalty),
        ("CallsTaken", m.calls_taken), ("LastCall", m.last_call), ("LastPause", m.last_pause),
        ("LoginTime", a.login_time), ("InCall", int(m.in_call)), ("Status", a.device_status()),
        ("Paused", int(m.paused)), ("PausedReason", m.paused_reason), ("Wrapuptime", 0), *head,
    ])  # fmt: skip


def _or_unknown(value: str) -> str:
    """app_queue's ``S_OR(value, "unknown")``: an unset id is ``unknown`` without brackets
    (``ami-queue-two-callers.txt``), unlike the channel snapshots' ``<unknown>``."""
    return "unknown" if value in ("", "<unknown>") else value


def _entry(q: Queue, pos: int, e: Entry, now: float, head: Head) -> bytes:
    ch = e.channel
    return message([
        ("Event", "QueueEntry"), ("Queue", q.name), ("Position", pos), ("Channel", ch.name),
        ("Uniqueid", ch.uniqueid), ("CallerIDNum", _or_unknown(ch.cid_num)),
        ("CallerIDName", _or_unknown(ch.cid_name)),
        ("ConnectedLineNum", _or_unknown(ch.conn_num)),
        ("ConnectedLineName", _or_unknown(ch.conn_name)),
        ("Wait", int(now - e.joined)), ("Priority", e.prio), *head,
    ])  # fmt: skip


def queue_status(eng: Engine, a: Pairs, head: Head) -> list[bytes]:
    """QueueParams, QueueMember and QueueEntry items; filters ``Queue`` and ``Member``."""
    want_q, want_m = first(a, "Queue"), first(a, "Member")
    items: list[bytes] = []
    now = eng.clock.now()
    for q in eng.queues.values():
        if want_q and q.name != want_q:
            continue
        items.append(_params(q, head))
        items += [
            _member(q, m, head) for m in q.members if not want_m or m.agent.interface == want_m
        ]
        items += [_entry(q, pos, e, now, head) for pos, e in enumerate(q.entries, start=1)]
    done = _complete("QueueStatusComplete", head, len(items))
    return [_start(head, "Queue status will follow"), *items, done]


def queue_summary(eng: Engine, a: Pairs, head: Head) -> list[bytes]:
    want_q = first(a, "Queue")
    items: list[bytes] = []
    now = eng.clock.now()
    for q in eng.queues.values():
        if want_q and q.name != want_q:
            continue
        logged = sum(1 for m in q.members if m.agent.registered)
        avail = sum(1 for m in q.members if m.ready())
        items.append(
            message(
                [
                    ("Event", "QueueSummary"),
                    ("Queue", q.name),
                    ("LoggedIn", logged),
                    ("Available", avail),
                    ("Callers", len(q.entries)),
                    ("HoldTime", q.holdtime),
                    ("TalkTime", q.talktime),
                    ("LongestHoldTime", q.longest_hold(now)),
                    *head,
                ]
            )
        )
    return [
        _start(head, "Queue summary will follow"),
        *items,
        _complete("QueueSummaryComplete", head, len(items)),
    ]


def _duration(ch: Channel) -> str:
    s = int(time.time() - ch.created)
    return f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}"


def _snapshot_pairs(ch: Channel) -> list[tuple[str, object]]:
    out: list[tuple[str, object]] = []
    for line in ch.block().split("\r\n"):
        if line:
            k, _, v = line.partition(": ")
            out.append((k, v))
    return out


def core_show_channels(eng: Engine, a: Pairs, head: Head) -> list[bytes]:
    items = [
        message(
            [
                ("Event", "CoreShowChannel"),
                *head,
                *_snapshot_pairs(ch),
                ("BridgeId", ch.bridge_id),
                ("Application", ch.app),
                ("ApplicationData", ch.app_data),
                ("Duration", _duration(ch)),
            ]
        )
        for ch in list(eng.channels.values())
    ]
    return [
        _start(head, "Channels will follow"),
        *items,
        _complete("CoreShowChannelsComplete", head, len(items)),
    ]


def status(eng: Engine, a: Pairs, head: Head) -> list[bytes]:
    want = first(a, "Channel")
    chans = list(eng.channels.values())
    if want:
        found = eng.find(want)
        if found is None:
            return [message([("Response", "Error"), *head, ("Message", "No such channel")])]
        chans = [found]
    items = [
        message(
            [
                ("Event", "Status"),
                *head,
                *_snapshot_pairs(ch),
                ("Type", ch.name.split("/", 1)[0]),
                ("DNID", ch.variables.get("DID", "")),
                ("EffectiveConnectedLineNum", ch.conn_num),
                ("EffectiveConnectedLineName", ch.conn_name),
                ("TimeToHangup", 0),
                ("BridgeID", ch.bridge_id),
                ("Application", ch.app),
                ("Data", ch.app_data),
                ("Nativeformats", "(ulaw|alaw)"),
                ("Readformat", "alaw"),
                ("Readtrans", ""),
                ("Writeformat", "alaw"),
                ("Writetrans", ""),
                ("Callgroup", 0),
                ("Pickupgroup", 0),
                ("Seconds", int(time.time() - ch.created)),
            ]
        )
        for ch in chans
    ]
    return [
        _start(head, "Channel status will follow"),
        *items,
        _complete("StatusComplete", head, len(items), ("Items", len(items))),
    ]
