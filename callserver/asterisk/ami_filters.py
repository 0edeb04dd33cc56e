"""AMI event filters callserver asks Asterisk for, so that what it never reads is never sent.

A queued call is ~170 AMI events; about 70% are ``VarSet`` of variables callserver ignores
(``BRIDGEPEER``, ``QUEUE*``, ``MEMBER*``, ``RTPAUDIOQOS*`` …), and ``Newexten``,
``DeviceStateChange``, ``NewConnectedLine``, ``DialBegin``, ``Cdr`` … are read by nothing here.
After each login the client adds **exclude** filters to its session (AMI ``Filter`` action with
``MatchCriteria``, Asterisk 20.10 / 21.5 / 22.0 and later):

- ``action(exclude),name(X)`` for each event of ``NOISE_EVENTS`` the translator and the client
  do not handle (Asterisk compares a hash of the name: no regular expression runs on those);
- ``action(exclude),name(VarSet),header(Variable),method(regex)`` for the variables of
  ``NOISE_VARIABLES``, matched on the ``Variable`` header's value only.

Exclude filters only ever take events away that nobody reads, so it does not matter how many of
them are in place: events flow from the login on, a refused filter leaves a session that still
gets what it needs, and an event or variable not listed (a clinic's own dialplan variables)
simply arrives. A kept variable that a noise pattern would match turns the VarSet filter off.
An Asterisk older than advanced filters ignores ``MatchCriteria``: the first filter sent has
an empty pattern, which it compiles as an include filter matching every event, so it sends
everything. The ``Filter`` action needs ``write = system`` in ``manager.conf``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

Filter = tuple[str, str]
"""(``MatchCriteria``, ``Filter``) of one ``Filter`` action."""

NOISE_EVENTS = (
    "AGIExecEnd", "AGIExecStart", "BridgeCreate", "BridgeDestroy", "BridgeMerge", "Cdr",
    "ChannelTalkingStart", "ChannelTalkingStop", "DTMFBegin", "DTMFEnd", "DeviceStateChange",
    "DialBegin", "DialState", "LocalBridge", "LocalOptimizationBegin", "LocalOptimizationEnd",
    "MusicOnHoldStart", "MusicOnHoldStop", "NewAccountCode", "NewConnectedLine", "Newexten",
    "RTCPReceived", "RTCPSent", "SoftHangupRequest",
)  # fmt: skip
"""Events Asterisk sends on every call that callserver does not read (those the translator
handles are never excluded, whatever this list says)."""
NOISE_VARIABLES = (
    "BRIDGEPEER|BRIDGEPVTCALLID|QUEUE[A-Z_]*|MEMBER[A-Z_]*|QE[A-Z_]*|ANSWEREDTIME[A-Z_]*"
    "|DIALEDTIME[A-Z_]*|RINGTIME[A-Z_]*|PROGRESSTIME[A-Z_]*|RTPAUDIOQOS[A-Z_]*|DIALEDPEER[A-Z_]*"
    "|SIPDOMAIN|AGISTATUS|PLAYBACKSTATUS|STASISSTATUS|UNICASTRTP_[A-Z_]*"
)
"""Variables app_queue, app_dial, the bridge, RTP, AGI and Playback set on every call."""
SAFE_NAME = re.compile(r"[A-Za-z0-9_]+")


def event_filters(
    handled: Iterable[str], variables: Iterable[str], prefixes: Iterable[str]
) -> list[Filter]:
    """The filters to add: ``NOISE_EVENTS`` but the ``handled`` ones, then (when ``VarSet`` is
    handled) ``VarSet`` of ``NOISE_VARIABLES`` unless one of the kept ``variables`` or a name
    starting with one of ``prefixes`` matches them (then no VarSet is excluded)."""
    handled = set(handled)
    out = [(f"action(exclude),name({n})", "") for n in NOISE_EVENTS if n not in handled]
    pattern = f"^_*({NOISE_VARIABLES})([^A-Za-z0-9_]|$)"
    noise = re.compile(pattern)
    kept = [*variables, *(p + suffix for p in prefixes for suffix in ("", "X", "QUEUE"))]
    if "VarSet" in handled and not any(
        noise.search(name) or not SAFE_NAME.fullmatch(name) for name in kept
    ):
        out.append(("action(exclude),name(VarSet),header(Variable),method(regex)", pattern))
    elif "VarSet" not in handled:
        out.append(("action(exclude),name(VarSet)", ""))
    return out
