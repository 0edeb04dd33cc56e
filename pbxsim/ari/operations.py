"""What each ARI REST request does to the simulated PBX (HTTP-free; ``server`` calls these).

Bridges and externalMedia channels are global in ARI, while the engine's
``StasisSession`` is per call: a bridge or externalMedia channel is adopted by the session
of the Stasis channel it is first bridged with (``session.bridges`` /
``session.extra_channels``), so the session's teardown hangs it up like Asterisk does.
Times are scenario seconds unless named ``_wall``.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from pbxsim import ami_events as ev
from pbxsim.ari.app_adapter import END_EVENT, AriApp
from pbxsim.ari.core import AriCore, BridgeRec, ChannelRec
from pbxsim.ari.errors import AriError, BadRequest, Conflict, NotFound, Unprocessable
from pbxsim.ari.json_shapes import Json, Playback, channel_json, event
from pbxsim.model import Bridge, Channel
from pbxsim.rtp import RtpEndpoint, RtpError, get_format, read_wav
from pbxsim.stasis_session import PLAYBACK_SECONDS

log = logging.getLogger("pbxsim.ari")
HANGUP_WAIT_WALL_S = 2.0
"""DELETE of a Stasis channel answers once the channel is gone, or after this long."""
HANGUP_REASONS = {
    "normal": 16, "busy": 17, "congestion": 34, "no_answer": 19, "timeout": 19,
    "rejected": 21, "unallocated": 1, "normal_unspecified": 31, "number_incomplete": 28,
    "codec_mismatch": 58, "interworking": 127, "failure": 38, "answered_elsewhere": 26,
}  # fmt: skip
AudioPicker = Callable[[Channel | None], Path | None]
"""Which WAV file an externalMedia stream sends, given the caller bridged with it."""


def default_audio(default: Path | None) -> AudioPicker:
    """The caller's ``PBXSIM_AUDIO`` channel variable (a WAV path), else ``default``."""

    def pick(caller: Channel | None) -> Path | None:
        path = caller.variables.get("PBXSIM_AUDIO", "") if caller is not None else ""
        return Path(path) if path else default

    return pick


class AriOps:
    """The REST operations; raise ``AriError`` subclasses with Asterisk's messages."""

    def __init__(self, core: AriCore, audio: AudioPicker, rtp_host: str = "127.0.0.1") -> None:
        self.core = core
        self.engine = core.engine
        self.audio = audio
        self.rtp_host = rtp_host

    # -- lookups --------------------------------------------------------------------
    def channel(self, uid: str) -> Channel:
        ch = self.core.channels[uid].channel if uid in self.core.channels else self.engine.find(uid)
        if ch is None or ch.uniqueid != uid:
            raise NotFound(message="Channel not found", channel=uid)
        return ch

    def stasis_channel(self, uid: str) -> ChannelRec:
        self.channel(uid)
        rec = self.core.channels.get(uid)
        if rec is None or not rec.in_stasis:
            raise Conflict(message="Channel not in Stasis application", channel=uid)
        return rec

    def bridge(self, bid: str) -> BridgeRec:
        brec = self.core.bridges.get(bid)
        if brec is None:
            raise NotFound(message="Bridge not found", bridge=bid)
        return brec

    def playback(self, pid: str) -> Playback:
        entry = self.core.playbacks.get(pid)
        if entry is None:
            raise NotFound(message="Playback not found", playback=pid)
        return entry[0]

    def app(self, name: str) -> AriApp:
        app = self.core.apps.get(name)
        if app is None or not app.outboxes:
            raise NotFound(message="Application not found", application=name)
        return app

    # -- channels ---------------------------------------------------------------------
    def list_channels(self) -> list[Json]:
        return [channel_json(c) for c in list(self.engine.channels.values()) if not c.hungup]

    def answer(self, uid: str) -> None:
        rec = self.stasis_channel(uid)
        if rec.session is not None and rec.is_caller:
            rec.session.answer()
        elif rec.channel.state != 6:
            self.engine.answer(rec.channel)

    def get_var(self, uid: str, name: str) -> str:
        ch = self.channel(uid)
        if not name:
            raise BadRequest(message="Variable name is required")
        special = {
            "CALLERID(num)": ch.cid_num,
            "CALLERID(name)": ch.cid_name,
            "CHANNEL(name)": ch.name,
        }
        value = special.get(name, ch.variables.get(name.lstrip("_")))
        if value is None:
            raise NotFound(message="Provided variable was not found", variable=name)
        return value

    def set_var(self, uid: str, name: str, value: str) -> None:
        ch = self.channel(uid)
        if not name:
            raise BadRequest(message="Variable name is required")
        self.engine.setvar(ch, name, value)

    def play_channel(self, uid: str, media: str, pid: str, lang: str) -> Playback:
        rec = self.stasis_channel(uid)
        pb = self._new_playback(pid, media, f"channel:{uid}", lang, "playing")
        rec.playbacks.append(pb)
        if rec.reply is not None:
            rec.reply.generation += 1
        rec.app.publish(event("PlaybackStarted", after={"playback": pb.json()}))
        self._run_playback(pb, rec.app)
        return pb

    async def hangup(self, uid: str, reason: str) -> None:
        """DELETE /channels/{id}: a Stasis call ends when the engine has torn it down."""
        if reason and reason not in HANGUP_REASONS:
            raise BadRequest(message="Invalid reason for hangup provided", reason=reason)
        ch = self.channel(uid)
        rec = self.core.channels.get(uid)
        if rec is None:
            self.engine.request_hangup(ch.name, HANGUP_REASONS.get(reason, 16))
            return
        if rec.is_caller and rec.session is not None:
            rec.session.hangup()
            rec.session.events.put_nowait(END_EVENT)
            try:
                async with asyncio.timeout(HANGUP_WAIT_WALL_S):
                    await rec.gone.wait()
            except TimeoutError:
                pass
            return
        self.core.stop_media(rec)
        if rec.session is not None:
            rec.session.hangup_extra(ch)
        else:
            self.engine.emit(ev.soft_hangup_request(ch, 32))
            self.engine.hangup(ch, 16)

    def continue_(self, uid: str) -> None:
        rec = self.stasis_channel(uid)
        if not rec.is_caller or rec.session is None:
            raise Conflict(message="Channel not in Stasis application", channel=uid)
        rec.session.events.put_nowait(END_EVENT)

    async def external_media(
        self, app_name: str, host: str, fmt_name: str, variables: dict[str, str], uid: str = ""
    ) -> Json:
        """POST /channels/externalMedia: a UnicastRTP channel with a real UDP port.

        Mirrors ``StasisSession.external_media``'s AMI events, but binds the RTP port first
        (``UNICASTRTP_LOCAL_PORT`` is the port actually bound). ``uid`` is ARI's
        ``channelId`` (empty: the engine allocates one).
        """
        app = self.app(app_name)
        remote = _host_port(host)
        try:
            fmt = get_format(fmt_name)
        except RtpError as exc:
            raise BadRequest(message="Unsupported format", format=fmt_name) from exc
        if uid and (uid in self.core.channels or self.engine.find(uid) is not None):
            raise Conflict(message="Channel with given unique ID already exists", channel=uid)
        eng = self.engine
        media = RtpEndpoint(fmt, remote, rng=eng.media_rng)
        try:
            port = await media.open(self.rtp_host, 0)
        except RtpError as exc:
            raise AriError(message="Failed to bind the RTP port", host=self.rtp_host) from exc
        ch = self._rtp_channel(host, uid)
        eng.setvar(ch, "UNICASTRTP_LOCAL_ADDRESS", self.rtp_host)
        eng.setvar(ch, "UNICASTRTP_LOCAL_PORT", str(port))
        for key, value in variables.items():
            eng.setvar(ch, key, value)
        eng.exten(ch, 1, "AppDial2", "(Outgoing Line)")
        reply = channel_json(ch)
        reply["channelvars"] = {
            "UNICASTRTP_LOCAL_PORT": str(port),
            "UNICASTRTP_LOCAL_ADDRESS": self.rtp_host,
        }
        self.core.channels[ch.uniqueid] = ChannelRec(ch, app, media=media)
        self.core.add_media(ch.uniqueid, media)
        self._dial_up(ch, host, fmt.name, app)
        return reply

    def _rtp_channel(self, host: str, uid: str) -> Channel:
        """A new ``UnicastRTP/<host>-0x…`` channel (Newchannel with ``uid`` when given)."""
        eng = self.engine
        name = f"UnicastRTP/{host}-0x{0x7F0000000000 + eng.media_rng.randrange(1 << 30):x}"
        ch = eng.new_channel(name, context="default", exten="s", announce=False)
        if uid:
            ch.uniqueid = ch.linkedid = uid
            ch.touch()
        eng.emit(ev.newchannel(ch))
        return ch

    def _dial_up(self, ch: Channel, host: str, fmt: str, app: AriApp) -> None:
        """The subscribed UnicastRTP channel gets dialled, answered and put in Stasis."""
        eng = self.engine
        eng.emit(ev.dial("DialBegin", None, ch, ("DialString", f"{host}/c({fmt})")))
        eng.set_state(ch, 6)
        eng.emit(ev.dial("DialEnd", None, ch, ("DialStatus", "ANSWER")))
        ch.app, ch.app_data = "Stasis", app.name
        eng.setvar(ch, "STASISSTATUS", "")
        eng.device_up(f"UnicastRTP/{host}")
        app.publish(event("StasisStart", after={"args": [], "channel": channel_json(ch)}))

    # -- bridges ----------------------------------------------------------------------
    def create_bridge(self, kind: str, name: str, bid: str) -> BridgeRec:
        if bid and (bid in self.core.bridges):
            raise Conflict(message="Bridge with this id already exists", bridge=bid)
        if kind and not set(kind.split(",")) <= {"mixing", "holding", "dtmf_events", "proxy_media"}:
            raise BadRequest(message="Invalid bridge type", type=kind)
        kw = {"uniqueid": bid} if bid else {}
        br = self.engine.bridge_create(
            type="stasis", creator="Stasis", name=name or "<unknown>", video_mode="talker", **kw
        )
        brec = BridgeRec(br, time.time())
        self.core.bridges[br.uniqueid] = brec
        return brec

    async def add_channels(self, bid: str, uids: list[str]) -> None:
        brec = self.bridge(bid)
        if not uids:
            raise BadRequest(message="Missing parameter channel")
        recs = []
        for uid in uids:
            if self.engine.find(uid) is None and uid not in self.core.channels:
                raise BadRequest(message="Channel not found", channel=uid)
            rec = self.core.channels.get(uid)
            if rec is None or not rec.in_stasis:
                raise Unprocessable(message="Channel not in Stasis application", channel=uid)
            recs.append(rec)
        for rec in recs:
            self._enter(brec, rec)
        await self._start_media(brec)

    def _enter(self, brec: BridgeRec, rec: ChannelRec) -> None:
        br, ch = brec.bridge, rec.channel
        if ch in br.channels:
            return
        brec.app = brec.app or rec.app
        session = rec.session or brec.session
        if session is None:
            self.engine.bridge_enter(br, ch)
            return
        if brec.session is None:
            brec.session = session
            session.bridges.append(br)
        if rec.session is None:
            rec.session = session
            session.extra_channels.append(ch)
        session.add_to_bridge(br, ch)

    async def _start_media(self, brec: BridgeRec) -> None:
        """Media flows once an RTP channel shares the bridge with someone else."""
        chans = brec.bridge.channels
        callers = [c for c in chans if not c.name.startswith("UnicastRTP/")]
        for ch in chans:
            rec = self.core.channels.get(ch.uniqueid)
            if rec is None or rec.media is None or len(chans) < 2 or rec.media.running:
                continue
            path = self.audio(callers[0] if callers else None)
            caller = self.core.channels.get(callers[0].uniqueid) if callers else None
            reply = caller.reply if caller is not None else None
            if path is not None and not rec.media.audio and not rec.media.sent:
                try:
                    pcm = await asyncio.to_thread(read_wav, path, rec.media.format.rate)
                except RtpError as exc:
                    log.warning("caller audio unusable, sending silence: %s", exc.message)
                    pcm = b""
                if reply is not None and reply.audio_after_prompt:
                    reply.audio, reply.media = pcm, rec.media  # said after the first prompt
                else:
                    rec.media.audio = pcm
            rec.media.start()

    def remove_channel(self, bid: str, uid: str) -> None:
        brec = self.bridge(bid)
        ch = self.channel(uid)
        if ch not in brec.bridge.channels:
            raise Unprocessable(message="Channel not in this bridge", channel=uid)
        rec = self.core.channels.get(uid)
        if rec is not None:
            self.core.stop_media(rec)
        self.engine.setvar(ch, "BRIDGEPEER", "")
        self.engine.bridge_leave(brec.bridge, ch)

    def play_bridge(self, bid: str, media: str, pid: str, lang: str) -> Playback:
        brec = self.bridge(bid)
        pb = self._new_playback(pid, media, f"bridge:{bid}", lang, "queued")
        if brec.session is not None:
            brec.session.play_to_bridge(brec.bridge, media)
        brec.playbacks.append(pb)
        if brec.app is not None:
            brec.app.publish(event("PlaybackStarted", after={"playback": pb.json("playing")}))
        pb.state = "playing"
        self._run_playback(pb, brec.app)
        return Playback(pb.id, pb.media_uri, pb.target_uri, pb.language, "queued")

    def destroy_bridge(self, bid: str) -> None:
        if bid in self.core.tombstones and bid not in self.core.bridges:
            return
        brec = self.bridge(bid)
        for ch in list(brec.bridge.channels):
            rec = self.core.channels.get(ch.uniqueid)
            if rec is not None:
                self.core.stop_media(rec)
        if brec.session is not None:
            brec.session.destroy_bridge(brec.bridge)
            return
        _destroy(self.core, brec.bridge)

    # -- playbacks --------------------------------------------------------------------
    def _new_playback(self, pid: str, media: str, target: str, lang: str, state: str) -> Playback:
        if not media:
            raise BadRequest(message="Missing parameter media")
        pid = pid or str(uuid.uuid4())
        if pid in self.core.playbacks:
            raise Conflict(message="Playback with this id already exists", playback=pid)
        return Playback(pid, media, target, lang or "en", state)

    def _run_playback(self, pb: Playback, app: AriApp | None) -> None:
        seconds = PLAYBACK_SECONDS.get(pb.media_uri.split(":", 1)[-1], 2.0)

        async def play() -> None:
            await self.engine.clock.sleep(seconds)
            self.core.finish_playback(pb, "done", app)

        self.core.playbacks[pb.id] = (pb, None)
        task = self.core.spawn(play(), name=f"playback-{pb.id}")
        self.core.playbacks[pb.id] = (pb, task)

    def stop_playback(self, pid: str) -> None:
        pb = self.playback(pid)
        owner = next((r.app for r in self.core.channels.values() if pb in r.playbacks), None)
        if owner is None:
            owner = next((b.app for b in self.core.bridges.values() if pb in b.playbacks), None)
        self.core.finish_playback(pb, "done", owner)


def _destroy(core: AriCore, br: Bridge) -> None:
    eng = core.engine
    for ch in list(br.channels):
        eng.bridge_leave(br, ch)
    eng.emit(ev.bridge_destroy(br))


def _host_port(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise BadRequest(message="external_host must be host:port", external_host=value)
    return host, int(port)
