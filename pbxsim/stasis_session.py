"""``StasisSession``: the channel operations a Stasis app may perform, as AMI sees them.

Durations are scenario seconds (``Engine.clock``). Every method emits the AMI events real
Asterisk 22 produced for the same ARI request in ``ami-during-ari-call.txt``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from pbxsim import ami_events as ev
from pbxsim.engine import Engine
from pbxsim.model import Bridge, Channel
from pbxsim.stasis import StasisEvent

PLAYBACK_SECONDS = {"hello-world": 1.4, "vm-goodbye": 0.9, "tt-monkeys": 6.0}
"""Length of the stock sounds pbxsim knows; anything else plays 2 s."""


@dataclass(eq=False)
class StasisSession:
    """One channel inside ``Stasis(app,args)``; ``events`` carries caller DTMF and hangup."""

    engine: Engine
    channel: Channel
    app: str
    args: list[str]
    events: asyncio.Queue[StasisEvent] = field(default_factory=asyncio.Queue)
    bridges: list[Bridge] = field(default_factory=list)
    extra_channels: list[Channel] = field(default_factory=list)
    announcer: bool = False
    released: list[Channel] = field(default_factory=list)
    hangup_cause: int | None = None
    """Set by ``hangup()``: the app hung the caller up (ARI DELETE /channels/{id})."""

    def answer(self) -> None:
        """POST /channels/{id}/answer."""
        if self.channel.state != 6:
            self.engine.answer(self.channel)

    async def play(self, media: str) -> None:
        """Play ``sound:NAME`` to the channel and wait until it finished."""
        name = media.split(":", 1)[-1]
        await self.engine.clock.sleep(PLAYBACK_SECONDS.get(name, 2.0))

    def create_bridge(self, name: str = "", kind: str = "mixing") -> Bridge:
        """POST /bridges?type=mixing (AMI: BridgeType ``stasis``, creator ``Stasis``)."""
        del kind
        br = self.engine.bridge_create(
            type="stasis", creator="Stasis", name=name or "<unknown>", video_mode="talker"
        )
        self.bridges.append(br)
        return br

    def add_to_bridge(self, br: Bridge, ch: Channel) -> None:
        """POST /bridges/{id}/addChannel."""
        self.engine.bridge_enter(br, ch)
        others = [c for c in br.channels if c is not ch]
        if not others:
            return
        peer = others[0]
        self.engine.setvar(peer, "BRIDGEPEER", ch.name)
        self.engine.setvar(ch, "BRIDGEPEER", peer.name)
        self.engine.setvar(ch, "BRIDGEPVTCALLID", peer.variables.get("PVTCALLID", "1-1@127.0.0.1"))
        ch.set_connected(peer.cid_num, peer.cid_name)
        self.engine.emit(ev.new_connected_line(ch))

    def play_to_bridge(self, br: Bridge, media: str) -> None:
        """POST /bridges/{id}/play: an Announcer channel joins (BRIDGEPEER noise)."""
        self.announcer = True
        names = [c.name for c in br.channels]
        for ch in br.channels:
            others = [n for n in names if n != ch.name]
            self.engine.setvar(ch, "BRIDGEPEER", ",".join(["Announcer/ARI-00000001;2", *others]))
            if ch is not self.channel:
                self.engine.setvar(ch, "BRIDGEPVTCALLID", "")
        del media

    def external_media(self, host: str, fmt: str = "alaw") -> Channel:
        """POST /channels/externalMedia: a UnicastRTP channel, answered, put in Stasis."""
        eng = self.engine
        local_port = 10000 + eng.media_rng.randrange(0, 10000, 2)
        name = f"UnicastRTP/{host}-0x{0x7F0000000000 + eng.media_rng.randrange(1 << 30):x}"
        ch = eng.new_channel(name, context="default", exten="s", linkedid=None)
        eng.setvar(ch, "UNICASTRTP_LOCAL_ADDRESS", "127.0.0.1")
        eng.setvar(ch, "UNICASTRTP_LOCAL_PORT", str(local_port))
        eng.exten(ch, 1, "AppDial2", "(Outgoing Line)")
        eng.emit(ev.dial("DialBegin", None, ch, ("DialString", f"{host}/c({fmt})")))
        eng.set_state(ch, 6)
        eng.emit(ev.dial("DialEnd", None, ch, ("DialStatus", "ANSWER")))
        ch.app, ch.app_data = "Stasis", self.app
        eng.setvar(ch, "STASISSTATUS", "")
        eng.device_up(f"UnicastRTP/{host}")
        self.extra_channels.append(ch)
        return ch

    def dtmf(self, digit: str, duration_ms: int) -> None:
        """The caller pressed ``digit`` (DTMFBegin/End; Sent on bridged RTP channels)."""
        peers = [c for b in self.bridges for c in b.channels if c is not self.channel]
        self.engine.emit(ev.dtmf_begin(self.channel, digit, "Received"))
        for p in peers:
            self.engine.emit(ev.dtmf_begin(p, digit, "Sent"))
        self.engine.emit(ev.dtmf_end(self.channel, digit, duration_ms, "Received"))
        for p in peers:
            self.engine.emit(ev.dtmf_end(p, digit, duration_ms, "Sent"))
        self.events.put_nowait(StasisEvent("dtmf", digit=digit, duration_ms=duration_ms))

    def hangup_extra(self, ch: Channel, cause: int = 32) -> None:
        """DELETE /channels/{id} of a channel the app created (externalMedia)."""
        eng = self.engine
        eng.emit(ev.soft_hangup_request(ch, cause))
        eng.setvar(ch, "BRIDGEPEER", "")
        for br in self.bridges:
            if ch in br.channels:
                eng.bridge_leave(br, ch)
                rest = [c.name for c in br.channels]
                for other in br.channels:
                    peers = ["Announcer/ARI-00000001;2"] if self.announcer else []
                    peers += [n for n in rest if n != other.name]
                    eng.setvar(other, "BRIDGEPEER", ",".join(peers))
        eng.setvar(ch, "STASISSTATUS", "SUCCESS")
        self.released.append(ch)

    def hangup(self, cause: int = 32) -> None:
        """DELETE /channels/{id} of the Stasis channel itself: ``run`` should return now."""
        self.hangup_cause = cause

    def finish(self, by_app: bool) -> None:
        """Tear down after ``run`` returned: leave bridges, hang everything up, Cdr events."""
        eng, caller = self.engine, self.channel
        if by_app:
            eng.rtp_qos(caller, None)
            eng.emit(ev.soft_hangup_request(caller, self.hangup_cause or 32))
            if caller.bridge_id:
                eng.setvar(caller, "BRIDGEPEER", "")
            for br in self.bridges:
                if caller in br.channels:
                    eng.bridge_leave(br, caller)
        leftovers = [c for c in self.extra_channels if c not in self.released]
        for ch in self.released + leftovers:
            eng.cdr(ch, "", "ANSWERED")
        eng.setvar(caller, "STASISSTATUS", "SUCCESS")
        eng.emit(ev.soft_hangup_request(caller, 16))
        for ch in self.released + leftovers:
            eng.hangup(ch, 16, release_device=False)
            if self.announcer:
                eng.emit(ev.device_state("Announcer/ARI", "UNKNOWN"))
            eng.emit(ev.device_state(ch.name.rsplit("-", 1)[0], "UNKNOWN"))
            if self.announcer:
                eng.emit(ev.device_state("Announcer/ARI", "UNKNOWN"))
        eng.hangup(caller, 16, release_device=False)
        dest = self.extra_channels[0].name if self.extra_channels else ""
        eng.cdr(caller, dest, "ANSWERED")
        eng.device_down(caller.device)
        for br in list(self.bridges):
            self.destroy_bridge(br)

    def destroy_bridge(self, br: Bridge) -> None:
        """DELETE /bridges/{id}."""
        for ch in list(br.channels):
            self.engine.bridge_leave(br, ch)
        self.engine.emit(ev.bridge_destroy(br))
        if br in self.bridges:
            self.bridges.remove(br)
