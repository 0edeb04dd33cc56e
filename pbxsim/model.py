"""Channels, bridges and the id allocators, shaped like Asterisk's snapshots.

A channel snapshot is the 14-field block most AMI events start with (``Channel`` …
``Linkedid``); ``Channel.block(prefix)`` renders it once per state change and caches the
text, because a busy simulator renders it tens of thousands of times per second.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field

from pbxsim.wire import clean

STATE_DESC = {0: "Down", 4: "Ring", 5: "Ringing", 6: "Up"}
SNAPSHOT_KEYS = (
    "Channel",
    "ChannelState",
    "ChannelStateDesc",
    "CallerIDNum",
    "CallerIDName",
    "ConnectedLineNum",
    "ConnectedLineName",
    "Language",
    "AccountCode",
    "Context",
    "Exten",
    "Priority",
    "Uniqueid",
    "Linkedid",
)


class Ids:
    """Uniqueids (``<epoch>.<n>``), channel-name sequence numbers and Local pair numbers.

    Asterisk uses one global counter for uniqueids and another for the ``-0000000N``
    suffix of technology channels; ``start`` lets a run continue numbering like a live box.
    """

    def __init__(self, start: int = 0) -> None:
        self._uid = start
        self._chan = start
        self._local = 0

    def uniqueid(self) -> str:
        n = self._uid
        self._uid += 1
        return f"{int(time.time())}.{n}"

    def channel_suffix(self) -> str:
        n = self._chan
        self._chan += 1
        return f"{n:08x}"

    def local_suffix(self) -> str:
        n = self._local
        self._local += 1
        return f"{n:08x}"


@dataclass(eq=False)
class Channel:
    """One Asterisk channel as AMI reports it; mutate through the setters to keep caches."""

    name: str
    uniqueid: str
    linkedid: str
    context: str
    exten: str
    cid_num: str = "<unknown>"
    cid_name: str = "<unknown>"
    state: int = 0
    priority: int = 1
    conn_num: str = "<unknown>"
    conn_name: str = "<unknown>"
    language: str = "en"
    created: float = field(default_factory=time.time)
    answered: float = 0.0
    variables: dict[str, str] = field(default_factory=dict)
    inheritable: list[str] = field(default_factory=list)
    hungup: bool = False
    cause: int = 0
    """Hangup cause once hung up."""
    ended: float = 0.0
    """``clock.wall()`` of the Hangup."""
    app: str = ""
    app_data: str = ""
    bridge_id: str = ""
    _cache: dict[str, str] = field(default_factory=dict, repr=False)

    def touch(self) -> None:
        """Forget the rendered snapshot after a field changed."""
        self._cache.clear()

    def set_state(self, state: int) -> None:
        self.state = state
        if state == 6 and not self.answered:
            self.answered = time.time()
        self.touch()

    def goto(self, context: str, exten: str, priority: int) -> None:
        self.context, self.exten, self.priority = context, exten, priority
        self.touch()

    def set_priority(self, priority: int) -> None:
        self.priority = priority
        self.touch()

    def set_connected(self, num: str, name: str) -> None:
        self.conn_num, self.conn_name = num, name
        self.touch()

    def set_callerid(self, num: str, name: str) -> None:
        self.cid_num, self.cid_name = num, name
        self.touch()

    @property
    def device(self) -> str:
        """The device the channel belongs to: ``PJSIP/trunk`` for ``PJSIP/trunk-00000004``."""
        if self.name.startswith("Local/"):
            return self.name.rsplit("-", 1)[0]
        return self.name.rsplit("-", 1)[0]

    def block(self, prefix: str = "") -> str:
        """The snapshot fields as CRLF lines, each key prefixed (``Dest``, ``LocalOne`` …)."""
        cached = self._cache.get(prefix)
        if cached is None:
            values = (
                self.name,
                self.state,
                STATE_DESC.get(self.state, "Unknown"),
                self.cid_num,
                self.cid_name,
                self.conn_num,
                self.conn_name,
                self.language,
                "",
                self.context,
                self.exten,
                self.priority,
                self.uniqueid,
                self.linkedid,
            )
            cached = "".join(
                f"{prefix}{k}: {clean(v)}\r\n" for k, v in zip(SNAPSHOT_KEYS, values, strict=True)
            )
            self._cache[prefix] = cached
        return cached


@dataclass(eq=False)
class Bridge:
    """A bridge snapshot (BridgeCreate/Enter/Leave/Destroy)."""

    uniqueid: str = field(default_factory=lambda: str(uuid.uuid4()))
    type: str = "basic"
    technology: str = "simple_bridge"
    creator: str = "<unknown>"
    name: str = "<unknown>"
    video_mode: str = "none"
    channels: list[Channel] = field(default_factory=list)

    def block(self) -> str:
        return (
            f"BridgeUniqueid: {self.uniqueid}\r\n"
            f"BridgeType: {self.type}\r\n"
            f"BridgeTechnology: {self.technology}\r\n"
            f"BridgeCreator: {clean(self.creator)}\r\n"
            f"BridgeName: {clean(self.name)}\r\n"
            f"BridgeNumChannels: {len(self.channels)}\r\n"
            f"BridgeVideoSourceMode: {self.video_mode}\r\n"
        )
