"""Reading pbxsim's own AMI event bytes back, to derive ARI events from them.

Real Asterisk derives AMI and ARI events from the same internal messages; pbxsim's engine
renders AMI only, so the ARI server taps the engine's event stream (``AriCore.on_ami``) and
translates the events of the channels and bridges its applications are subscribed to.
"""

from __future__ import annotations

TRANSLATED = frozenset(
    {
        b"Newstate",
        b"VarSet",
        b"BridgeEnter",
        b"BridgeLeave",
        b"BridgeDestroy",
        b"DialBegin",
        b"DialEnd",
        b"SoftHangupRequest",
        b"HangupRequest",
        b"Hangup",
        b"NewConnectedLine",
        b"DTMFEnd",
    }
)


def event_name(data: bytes) -> bytes:
    """The ``Event:`` value of one rendered event (``b""`` if it is not an event)."""
    if not data.startswith(b"Event: "):
        return b""
    return data[7 : data.find(b"\r\n")]


def headers(data: bytes) -> dict[str, str]:
    """Header → value (the first occurrence wins; values keep their inner spaces)."""
    out: dict[str, str] = {}
    for line in data.decode("utf-8", errors="replace").split("\r\n"):
        key, sep, value = line.partition(": ")
        if not sep:
            key, sep, value = line.partition(":")
            if not sep:
                continue
        out.setdefault(key, value)
    return out


def value(data: bytes, key: bytes) -> str:
    """The value of header ``key`` (the first one, never a prefixed ``XKey``), or ``""``.

    A cheap peek used to skip events of channels no application is subscribed to.
    """
    i = data.find(b"\r\n" + key + b": ")
    if i < 0:
        return ""
    start = i + len(key) + 4
    return data[start : data.find(b"\r\n", start)].decode("utf-8", errors="replace")
