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
    "BRIDGEPEER", "BRIDGEPVTCALLID", "QUEUE*", "MEMBER*", "QE*", "ANSWEREDTIME*", "DIALEDTIME*",
    "RINGTIME*", "PROGRESSTIME*", "RTPAUDIOQOS*", "DIALEDPEER*", "SIPDOMAIN", "AGISTATUS",
    "PLAYBACKSTATUS", "STASISSTATUS", "UNICASTRTP_*",
)  # fmt: skip
"""Variables app_queue, app_dial, the bridge, RTP, AGI and Playback set on every call
(``*``: and every name that starts so)."""
VARSET_CRITERIA = "action(exclude),name(VarSet),header(Variable),method(regex)"


def _noise_pattern() -> str:
    names = "|".join(n[:-1] + "[A-Z_]*" if n.endswith("*") else n for n in NOISE_VARIABLES)
    # the value may keep its line's CR: end at a character that cannot be in a name
    return f"^_*({names})([^A-Za-z0-9_]|$)"


def _is_noise(variable: str, prefix: bool) -> bool:
    """Whether the VarSet filter would hold back ``variable`` (``prefix``: or any variable
    whose name starts with it)."""
    name = variable.lstrip("_")
    for noise in NOISE_VARIABLES:
        head, open_end = noise.rstrip("*"), noise.endswith("*")
        if name == head or (open_end and name.startswith(head)):
            return True
        if prefix and head.startswith(name):
            return True
    return False


def event_filters(
    handled: Iterable[str], variables: Iterable[str], prefixes: Iterable[str]
) -> list[Filter]:
    """The filters to add: ``NOISE_EVENTS`` but the ``handled`` ones, then ``VarSet`` of
    ``NOISE_VARIABLES``, unless one of the kept ``variables`` or a name starting with one of
    ``prefixes`` would be among them (then no VarSet is excluded)."""
    read = set(handled)
    out = [(f"action(exclude),name({n})", "") for n in NOISE_EVENTS if n not in read]
    if not any(_is_noise(v, False) for v in variables) and not any(
        _is_noise(p, True) for p in prefixes
    ):
        out.append((VARSET_CRITERIA, _noise_pattern()))
    return out
