"""What Asterisk's durable records say about one call: the pure half of the catch-up.

``call_truth(cdrs, qlog, inbound_contexts)`` turns one call's rows of Asterisk's ``cdr`` table
(``cdr_pgsql``; every row sharing the call's ``linkedid``) and realtime ``queue_log`` table
(``callid`` = a channel's uniqueid) into a ``Truth``; ``corrections(stored, truth)`` says which
stored facts are wrong. Times are POSIX seconds. Standard library + callserver.core only.

Where each fact comes from:

* caller, caller name, start: the CDR of the call's first channel (``uniqueid = linkedid``):
  ``src``, ``clid`` (``"Name" <number>``), ``calldate``; the end: the latest CDR end;
* DID: ``userfield``'s first ``|``-separated part when it is a number (asterisk-conf's dialplan
  sets ``CDR(userfield)=${DID}|campaign|reason``), else the first channel's ``dst`` when it is a
  number and its ``dcontext`` an inbound context;
* queue, answered at, wait: ENTERQUEUE (queuename, time), the first CONNECT (time, data1
  holdtime), or ABANDON / EXITWITHTIMEOUT (data3 waittime, data1 position);
* agent: the destination channel (``PJSIP/op101-0000002a`` → ``PJSIP/op101``) of the latest
  ending answered CDR whose destination is no ``Local/`` channel; the agent's name: CONNECT's
  ``agent`` (the queue member name);
* talk (hold included, as app_queue counts it): COMPLETECALLER/COMPLETEAGENT time − CONNECT time;
  after a BLINDTRANSFER/ATTENDEDTRANSFER: call end − CONNECT time (an estimate: it includes the
  transfer target's ring time).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from callserver.core.events import AgentTurn, CallSnapshot

SUFFIX = re.compile(r"-[0-9a-fA-F]{8}$")
_CLID = re.compile(r'^\s*"?(?P<name>[^"<]*?)"?\s*<(?P<num>[^>]*)>\s*$')
_NUMBER = re.compile(r"^\+?[0-9]{3,20}$")
ABANDON_EVENTS = ("ABANDON", "EXITWITHTIMEOUT")
COMPLETE_EVENTS = ("COMPLETECALLER", "COMPLETEAGENT")
TRANSFER_EVENTS = ("BLINDTRANSFER", "ATTENDEDTRANSFER", "TRANSFER")
MAX_TEXT = 200
TOLERANCE = 1.0
"""Seconds: stored durations and times within this of the records' are right."""


@dataclass(frozen=True, slots=True)
class Cdr:
    """One ``cdr`` row (times POSIX seconds; ``answer`` None when never answered)."""

    start: float
    answer: float | None
    end: float
    src: str
    dst: str
    dcontext: str
    channel: str
    dstchannel: str
    disposition: str
    uniqueid: str
    linkedid: str
    userfield: str = ""
    clid: str = ""
    sequence: int = 0


@dataclass(frozen=True, slots=True)
class QueueLog:
    """One ``queue_log`` row (``time`` POSIX seconds)."""

    time: float
    callid: str
    queuename: str
    agent: str
    event: str
    data: tuple[str, str, str, str, str] = ("", "", "", "", "")


@dataclass(frozen=True, slots=True)
class Truth:
    """One call as Asterisk's records tell it (see the module docstring)."""

    id: str
    inbound: bool
    caller: str
    caller_name: str
    did: str
    queue: str
    agent: str
    agent_name: str
    state: str
    started_at: float
    ended_at: float
    queued_at: float | None = None
    answered_at: float | None = None
    wait_seconds: float | None = None
    talk_seconds: float | None = None
    """Hold included (the records cannot tell hold apart)."""
    abandon_position: int | None = None
    hangup_by: str = ""
    transferred: bool = False
    agents: tuple[str, ...] = field(default=())

    def fingerprint(self) -> str:
        """Stable digest of every fact: the same records give the same value."""
        text = json.dumps([getattr(self, n) for n in self.__slots__], default=str)
        return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def _text(value: str) -> str:
    return value.replace("\x00", "")[:MAX_TEXT]


def _int(value: str) -> int | None:
    try:
        return int(value.strip())
    except ValueError:
        return None


def interface(channel: str) -> str:
    """``PJSIP/op101-0000002a`` → ``PJSIP/op101`` (Local/ and empty → "")."""
    if not channel or channel.startswith("Local/"):
        return ""
    return SUFFIX.sub("", channel)


def _caller_name(clid: str) -> str:
    m = _CLID.match(clid)
    if m is None:
        return ""
    name = m.group("name").strip()
    return "" if name in ("", m.group("num"), "<unknown>") else _text(name)


def _did(root: Cdr, inbound_contexts: Sequence[str]) -> str:
    """``userfield`` (or its first ``|`` part: asterisk-conf sets ``DID|campaign|reason``) when
    it is a number, else ``dst`` when it is one and the CDR ended in an inbound context."""
    first = root.userfield.split("|", 1)[0].strip()
    if _NUMBER.match(first):
        return first
    dst = root.dst.strip()
    return dst if root.dcontext in inbound_contexts and _NUMBER.match(dst) else ""


def _agents(cdrs: Sequence[Cdr]) -> tuple[str, ...]:
    """Agent interfaces in the order their part of the call ended (answered CDRs only)."""
    seen: list[str] = []
    for c in sorted(cdrs, key=lambda c: (c.end, c.sequence)):
        iface = interface(c.dstchannel) if c.disposition == "ANSWERED" else ""
        if iface and not iface.startswith("PJSIP/trunk"):
            if iface in seen:
                seen.remove(iface)
            seen.append(iface)
    return tuple(seen)


def _first(qlog: Sequence[QueueLog], *events: str) -> QueueLog | None:
    return next((q for q in qlog if q.event in events), None)


def call_truth(
    cdrs: Sequence[Cdr], qlog: Sequence[QueueLog], inbound_contexts: Sequence[str]
) -> Truth | None:
    """The call of ``cdrs`` (all rows of one linkedid) and its ``qlog`` rows, or None when
    its first channel has no CDR (not a call started by a channel of its own)."""
    root = next((c for c in cdrs if c.uniqueid == c.linkedid), None)
    if root is None:
        return None
    qlog = sorted(qlog, key=lambda q: q.time)
    enter = _first(qlog, "ENTERQUEUE")
    connect = _first(qlog, "CONNECT")
    gone = _first(qlog, *ABANDON_EVENTS)
    done = _first(qlog, *COMPLETE_EVENTS)
    transfer = _first(qlog, *TRANSFER_EVENTS)
    agents = _agents(cdrs) if connect is not None else ()
    if connect is not None and not agents and "/" in connect.agent:
        agents = (connect.agent,)
    end = max(c.end for c in cdrs)
    talk: float | None = None
    if connect is not None:
        until = done.time if done is not None and transfer is None else end
        talk = max(0.0, until - connect.time)
    abandoned = connect is None and gone is not None
    return Truth(
        id=root.linkedid, inbound=enter is not None or root.dcontext in inbound_contexts,
        caller=_text(root.src), caller_name=_caller_name(root.clid),
        did=_did(root, inbound_contexts), queue=_text(enter.queuename) if enter else "",
        agent=agents[-1] if agents else "",
        agent_name=_member_name(connect, agents),
        state="abandoned" if abandoned else "ended", started_at=min(c.start for c in cdrs),
        ended_at=end, queued_at=enter.time if enter else None,
        answered_at=connect.time if connect else None,
        wait_seconds=_wait(connect, gone), talk_seconds=talk,
        abandon_position=_int(gone.data[0]) if abandoned and gone else None,
        hangup_by=_hangup_by(done, abandoned), transferred=transfer is not None, agents=agents,
    )  # fmt: skip


def _member_name(connect: QueueLog | None, agents: Sequence[str]) -> str:
    """CONNECT's member name, when that member is also the call's last agent."""
    if connect is None or connect.agent == "NONE" or len(agents) > 1:
        return ""
    return _text(connect.agent)


def _wait(connect: QueueLog | None, gone: QueueLog | None) -> float | None:
    if connect is not None:
        value = _int(connect.data[0])
    elif gone is not None:
        value = _int(gone.data[2])
    else:
        return None
    return None if value is None else float(value)


def _hangup_by(done: QueueLog | None, abandoned: bool) -> str:
    if abandoned:
        return "caller"
    if done is None:
        return ""
    return "agent" if done.event == "COMPLETEAGENT" else "caller"


def _digits(value: str) -> str:
    return "".join(ch for ch in value if ch.isdigit())


def _off(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return (a is None) != (b is None)
    return abs(a - b) > TOLERANCE


def corrections(stored: CallSnapshot, ended_at: float | None, truth: Truth,
                resync_closed: bool) -> dict[str, Any]:  # fmt: skip
    """The snapshot fields to replace in ``stored`` (empty: it agrees with the records).

    ``resync_closed``: resync closed the call (its end and durations are guesses); every fact
    the records know is then taken. Otherwise only facts that disagree are."""
    fix: dict[str, Any] = {}
    talk_total = (stored.talk_seconds or 0.0) + (stored.hold_seconds or 0.0)
    talk_off = truth.talk_seconds is not None and (
        stored.talk_seconds is None
        or (not truth.transferred and _off(talk_total, truth.talk_seconds))
    )
    checks: list[tuple[bool, Mapping[str, Any]]] = [
        (bool(truth.caller) and _digits(stored.caller) != _digits(truth.caller),
         {"caller": truth.caller}),
        (bool(truth.did) and not stored.did, {"did": truth.did}),
        (bool(truth.queue) and stored.queue != truth.queue, {"queue": truth.queue}),
        (bool(truth.agent) and stored.agent != truth.agent,
         {"agent": truth.agent, "agent_name": truth.agent_name or stored.agent_name}),
        (_off(stored.answered_at, truth.answered_at), {"answered_at": truth.answered_at}),
        (_off(stored.wait_seconds, truth.wait_seconds), {"wait_seconds": truth.wait_seconds}),
        (stored.state != truth.state, {"state": truth.state}),
        (ended_at is None or resync_closed or _off(ended_at, truth.ended_at),
         {"ended_at": truth.ended_at}),
        (talk_off or (resync_closed and truth.talk_seconds is not None),
         {"talk_seconds": max(0.0, (truth.talk_seconds or 0.0) - (stored.hold_seconds or 0.0))}),
    ]  # fmt: skip
    for wrong, values in checks:
        if wrong:
            fix.update(values)
    if fix and truth.abandon_position is not None and stored.abandon_position is None:
        fix["abandon_position"] = truth.abandon_position
    if fix and truth.hangup_by and not stored.hangup_by:
        fix["hangup_by"] = truth.hangup_by
    return fix


def new_snapshot(truth: Truth) -> CallSnapshot:
    """The whole call record of a call the live model never saw."""
    turns = tuple(
        AgentTurn(agent=a, agent_name=truth.agent_name if i == 0 else "",
                  connected_at=truth.answered_at or truth.started_at,
                  via="queue" if i == 0 else "blind")
        for i, a in enumerate(truth.agents)
    )  # fmt: skip
    return CallSnapshot(
        id=truth.id, linkedid=truth.id, direction="inbound" if truth.inbound else "internal",
        state="abandoned" if truth.state == "abandoned" else "ended", caller=truth.caller,
        caller_name=truth.caller_name, did=truth.did, ad_source="", queue=truth.queue,
        agent=truth.agent, agent_name=truth.agent_name, started_at=truth.started_at,
        queued_at=truth.queued_at, answered_at=truth.answered_at, ended_at=truth.ended_at,
        wait_seconds=truth.wait_seconds, talk_seconds=truth.talk_seconds,
        abandon_position=truth.abandon_position, hangup_by=truth.hangup_by, agents=turns,
    )  # fmt: skip
