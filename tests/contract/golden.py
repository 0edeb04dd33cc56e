"""Test-local AMI transcript reading and comparison for the pbxsim contract check.

Deliberately a few lines of its own parsing (not callserver's codec, not pbxsim's code):
the contract must not share a parser with either side it checks.
"""

from __future__ import annotations

import difflib
import re
from collections import defaultdict

Block = list[tuple[str, str]]
SKIP_IN_ORDER = {"RTCPSent"}
"""Periodic RTCP reports depend on wall-clock timing; only their field names are checked."""


def blocks(data: bytes) -> list[Block]:
    """Split an AMI byte stream into messages of (key, value) pairs, banner dropped."""
    out: list[Block] = []
    for raw in data.decode("utf-8").split("\r\n\r\n"):
        pairs = []
        for line in raw.split("\r\n"):
            if ": " in line:
                k, v = line.split(": ", 1)
            elif line.endswith(":"):
                k, v = line[:-1], ""
            else:
                continue
            pairs.append((k, v))
        if pairs:
            out.append(pairs)
    return out


def _get(b: Block, key: str) -> str:
    return next((v for k, v in b if k == key), "")


def events(bs: list[Block]) -> list[Block]:
    return [b for b in bs if b[0][0] == "Event"]


def signature(b: Block) -> str:
    """Event name plus the detail that identifies the step (variable, application, status)."""
    name = b[0][1]
    for key in ("Variable", "Application", "DialStatus", "Reason", "Digit", "Direction", "State"):
        v = _get(b, key)
        if v and not (name == "DeviceStateChange" and key != "State"):
            name += f" {key}={v}"
    if name.startswith("DeviceStateChange"):
        device = _get(b, "Device")
        kind = device.split("/")[0].split(":")[0]
        name += f" Device={kind}{'_avail' if device.endswith('_avail') else ''}"
    return name


FLOATING = {"Cdr", "AgentComplete"}
"""Events published by another thread than the channel's own (the CDR engine, app_queue's
stasis subscription). Two teardowns of the same flow in one capture
(``ami-queue-two-callers.txt``: Cdr before AgentComplete for the first caller, after
SoftHangupRequest for the second) show that their place in a channel's stream is a race;
``loose`` comparisons check them per channel as a set, not by position."""


def _role(b: Block, roles: dict[str, str], bridges: dict[str, str], loose: bool) -> str | None:
    """The stream an event belongs to: its channel's role (c1, c2 … by first appearance),
    ``global`` for events naming no channel, or (``loose``) a per-device/bridge/member key.
    None: not compared by position (RTCPSent)."""
    name = b[0][1]
    if name in SKIP_IN_ORDER:
        return None
    uid = _get(b, "Uniqueid") or _get(b, "UniqueID") or _get(b, "DestUniqueid")
    if uid:
        role = roles.setdefault(uid, f"c{len(roles) + 1}")
        return f"{role} floating" if loose and name in FLOATING else role
    if not loose:
        return "global"
    if name == "DeviceStateChange":
        return f"global device {_norm(_get(b, 'Device'))}"
    if name == "QueueMemberStatus":
        return f"global member {_get(b, 'Queue')} {_get(b, 'Interface')}"
    if name.startswith("Bridge") and name != "BridgeMerge":
        bid = _get(b, "BridgeUniqueid")
        return f"global bridge {bridges.setdefault(bid, f'b{len(bridges) + 1}')}"
    return "global"


def streams(evs: list[Block], loose: bool = False) -> dict[str, list[str]]:
    """Per-channel event sequences keyed by role (c1, c2 … in order of first appearance);
    events naming no channel go to ``global`` (``loose``: see ``_role``)."""
    roles: dict[str, str] = {}
    bridges: dict[str, str] = {}
    out: dict[str, list[str]] = defaultdict(list)
    for b in evs:
        role = _role(b, roles, bridges, loose)
        if role is not None:
            out[role].append(signature(b))
    return _sorted_floating(out)


def _sorted_floating(out: dict[str, list[str]]) -> dict[str, list[str]]:
    return {k: sorted(v) if k.endswith(" floating") else v for k, v in out.items()}


STABLE = (
    "Channel",
    "ChannelStateDesc",
    "CallerIDNum",
    "CallerIDName",
    "ConnectedLineNum",
    "ConnectedLineName",
    "Context",
    "Exten",
    "Priority",
    "Queue",
    "Interface",
    "MemberName",
    "DialString",
    "Cause",
    "Application",
    "AppData",
    "DestChannelStateDesc",
    "DestCallerIDNum",
    "DestConnectedLineNum",
    "DestContext",
    "DestExten",
    "Reason",
    "Position",
    "Count",
    "Disposition",
    "LastApplication",
    "LastData",
    "Source",
    "Destination",
    "DestinationContext",
    "Digit",
    "Device",
    "State",
    "Status",
    "Paused",
    "Membership",
    "Response",
)
"""Fields whose values must match too (ids, times, counters and SIP details may differ)."""
STABLE_VARS = (
    "__",
    "ROUTE",
    "AGISTATUS",
    "STASIS",
    "PLAYBACK",
    "DIALEDPEER",
    "MEMBERINTERFACE",
    "MEMBERNAME",
    "QUEUENAME",
    "QUEUESTRATEGY",
    "ABANDONED",
)
"""VarSet variables whose Value must match."""


def _norm(value: str) -> str:
    value = re.sub(r"127\.0\.0\.1:\d+", "HOST:PORT", value)  # AGI URL, externalMedia peer
    value = re.sub(r"-[0-9a-f]{8}\b", "-N", value)
    return re.sub(r"0x[0-9a-f]+", "0xN", value)


def values(evs: list[Block], loose: bool = False) -> dict[str, list[str]]:
    """Per-channel sequences of events with their stable field values (see ``STABLE``)."""
    roles: dict[str, str] = {}
    bridges: dict[str, str] = {}
    out: dict[str, list[str]] = defaultdict(list)
    for b in evs:
        role = _role(b, roles, bridges, loose)
        if role is None:
            continue
        d = dict(b)
        shown = [f"{k}={_norm(d[k])}" for k in STABLE if k in d]
        if d.get("Variable", "").startswith(STABLE_VARS):
            shown.append(f"{d['Variable']}={_norm(d.get('Value', ''))}")
        out[role].append(" ".join([b[0][1], *shown]))
    return _sorted_floating(out)


def shapes(evs: list[Block]) -> dict[str, set[tuple[str, ...]]]:
    """Event name → the field-name sequences seen for it."""
    out: dict[str, set[tuple[str, ...]]] = defaultdict(set)
    for b in evs:
        out[b[0][1]].add(tuple(k for k, _ in b))
    return dict(out)


def compare(golden: list[Block], actual: list[Block], loose: bool = False) -> list[str]:
    """Human-readable drift report (empty list: pbxsim matches the golden transcript).

    ``loose`` (the 2026-12-01 captures): ``FLOATING`` events are checked per channel as a
    set, and the channel-less events per device / bridge / queue member rather than in one
    global order — the device-state thread races app_queue (the answered-call and the hold
    captures of the same queue call order their DeviceStateChange events differently).
    """
    problems: list[str] = []
    gs, as_ = streams(events(golden), loose), streams(events(actual), loose)
    for role in sorted(set(gs) | set(as_)):
        g, a = gs.get(role, []), as_.get(role, [])
        if g != a:
            diff = difflib.unified_diff(g, a, f"golden {role}", f"pbxsim {role}", lineterm="", n=2)
            problems.append("\n".join(diff))
    if not problems:  # same steps: now the values that must not drift either
        gv, av = values(events(golden), loose), values(events(actual), loose)
        for role in sorted(set(gv) | set(av)):
            g, a = gv.get(role, []), av.get(role, [])
            if g != a:
                diff = difflib.unified_diff(
                    g, a, f"golden {role}", f"pbxsim {role}", lineterm="", n=0
                )
                problems.append("\n".join(diff))
    gshape, ashape = shapes(events(golden)), shapes(events(actual))
    for name, seen in sorted(ashape.items()):
        if name not in gshape:
            continue
        for fields in seen - gshape[name]:
            want = sorted(gshape[name])[0]
            diff = difflib.unified_diff(
                list(want), list(fields), f"golden {name}", f"pbxsim {name}", lineterm="", n=1
            )
            problems.append("\n".join(diff))
    missing = set(gshape) - set(ashape) - SKIP_IN_ORDER
    if missing:
        problems.append(f"event types never produced: {sorted(missing)}")
    return problems


def responses(bs: list[Block]) -> list[tuple[str, ...]]:
    """The field names of each Response message, in order."""
    return [tuple(k for k, _ in b) for b in bs if b[0][0] == "Response"]
