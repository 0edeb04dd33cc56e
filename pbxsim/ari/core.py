"""ARI state of the simulator: applications, subscribed channels/bridges, playbacks.

``AriCore`` turns the engine's AMI events into ARI events for the channels and bridges an
application is subscribed to (``on_ami``), with the subscription rules real Asterisk 22
showed in ``ari-stasis-call.jsonl``:

* a channel entering ``Stasis()`` is subscribed from StasisStart until its StasisEnd
  (``STASISSTATUS=SUCCESS`` is set right after StasisEnd and is not delivered);
* a channel the application created (externalMedia) stays subscribed until destroyed;
* a bridge is subscribed by the application of the first Stasis channel added to it;
  destroying it ends its running playbacks (``failed``) before BridgeDestroyed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pbxsim.ari import ami_tap
from pbxsim.ari.json_shapes import CAUSE_TXT, Json, Playback, bridge_json, channel_json, event
from pbxsim.ari.patient_reply import KEY_GAP_S, KEY_MS, QUIET_S, PatientReply, reply_of
from pbxsim.engine import Engine
from pbxsim.model import Bridge, Channel
from pbxsim.rtp import RtpEndpoint
from pbxsim.stasis_session import StasisSession

if TYPE_CHECKING:
    from pbxsim.ari.app_adapter import AriApp

log = logging.getLogger("pbxsim.ari")
TOMBSTONES = 256
"""Bridges torn down with their Stasis call whose DELETE still answers 204."""
KEEP_MEDIA = 256
"""externalMedia endpoints remembered (with the audio they received) after hangup."""


@dataclass(eq=False)
class ChannelRec:
    """A channel an application controls."""

    channel: Channel
    app: AriApp
    session: StasisSession | None = None
    is_caller: bool = False
    """The channel that entered ``Stasis()`` (unsubscribed at StasisEnd)."""
    in_stasis: bool = True
    subscribed: bool = True
    dialstring: str = ""
    media: RtpEndpoint | None = None
    playbacks: list[Playback] = field(default_factory=list)
    gone: asyncio.Event = field(default_factory=asyncio.Event)
    reply: PatientReply | None = None
    """An outbound patient's keys / speech after the bot's prompts (``patient_reply``)."""


@dataclass(eq=False)
class BridgeRec:
    """A bridge created over ARI."""

    bridge: Bridge
    created: float
    app: AriApp | None = None
    session: StasisSession | None = None
    playbacks: list[Playback] = field(default_factory=list)


class AriCore:
    """Records and event translation shared by the REST handlers and the apps."""

    def __init__(self, engine: Engine, entity_id: str) -> None:
        self.engine = engine
        self.entity_id = entity_id
        self.apps: dict[str, AriApp] = {}
        self.channels: dict[str, ChannelRec] = {}
        self.bridges: dict[str, BridgeRec] = {}
        self.playbacks: dict[str, tuple[Playback, asyncio.Task[None] | None]] = {}
        self.tombstones: list[str] = []
        self.media: dict[str, RtpEndpoint] = {}
        """externalMedia endpoints by channel id, kept after hangup (tests assert on them)."""
        self._tasks: set[asyncio.Task[None]] = set()
        self._handlers = {
            b"Newstate": self._newstate,
            b"VarSet": self._varset,
            b"BridgeEnter": self._bridge_move,
            b"BridgeLeave": self._bridge_move,
            b"BridgeDestroy": self._bridge_destroy,
            b"DialBegin": self._dial,
            b"DialEnd": self._dial,
            b"SoftHangupRequest": self._hangup_request,
            b"HangupRequest": self._hangup_request,
            b"Hangup": self._hangup,
            b"NewConnectedLine": self._connected_line,
            b"DTMFEnd": self._dtmf,
        }

    # -- task ownership -----------------------------------------------------------
    def spawn(self, coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        """Run ``coro`` owned by the core (errors logged; cancelled by ``aclose``)."""
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("ARI task %s failed", task.get_name(), exc_info=task.exception())

    async def aclose(self) -> None:
        """Cancel playbacks and RTP streams; close every RTP port."""
        tasks = list(self._tasks)
        for t in tasks:
            t.cancel()
        if tasks:
            await asyncio.wait(tasks)
        for rec in list(self.channels.values()):
            if rec.media is not None:
                await rec.media.aclose()

    # -- sessions -----------------------------------------------------------------
    def begin_session(self, app: AriApp, session: StasisSession) -> ChannelRec:
        """Subscribe the Stasis channel and announce it (StasisStart with the args)."""
        ch = session.channel
        rec = ChannelRec(ch, app, session, is_caller=True, reply=reply_of(ch))
        self.channels[ch.uniqueid] = rec
        app.publish(
            event("StasisStart", after={"args": list(session.args), "channel": channel_json(ch)})
        )
        return rec

    def end_session(self, rec: ChannelRec) -> None:
        """``run`` returned: the channel's own playbacks stop (reported ``failed`` at
        StasisEnd, after the hangup events, as Asterisk orders them)."""
        for pb in rec.playbacks:
            entry = self.playbacks.get(pb.id)
            if entry is not None and entry[1] is not None:
                entry[1].cancel()

    def finish_playback(
        self, pb: Playback, state: str, app: AriApp | None, publish: bool = True
    ) -> None:
        """Forget ``pb`` (cancelling its timer) and send PlaybackFinished in ``state``."""
        entry = self.playbacks.pop(pb.id, None)
        if entry is None:
            return
        task = entry[1]
        if task is not None and task is not asyncio.current_task():
            task.cancel()
        for rec in self.channels.values():
            if rec.reply is not None and pb in rec.playbacks:
                gen = rec.reply.generation
                self.spawn(self._after_prompt(rec, gen), name=f"reply-{rec.channel.uniqueid}")
        owners = [r.playbacks for r in self.channels.values()]
        owners += [b.playbacks for b in self.bridges.values()]
        for playbacks in owners:
            if pb in playbacks:
                playbacks.remove(pb)
        pb.state = state
        if publish and app is not None:
            app.publish(event("PlaybackFinished", after={"playback": pb.json()}))

    async def _after_prompt(self, rec: ChannelRec, gen: int) -> None:
        """The patient's next turn once the prompt stayed finished for ``QUIET_S``."""
        reply = rec.reply
        await self.engine.clock.sleep(QUIET_S)
        if (reply is None or reply.generation != gen or rec.playbacks or not reply.turns
                or rec.channel.hungup or rec.session is None):  # fmt: skip
            return
        turn = reply.turns.pop(0)
        if turn == "audio":
            if reply.media is not None:
                reply.media.say(reply.audio)
            return
        for n, digit in enumerate(turn):
            if n:
                await self.engine.clock.sleep(KEY_GAP_S)
            if rec.channel.hungup:
                return
            rec.session.dtmf(digit, KEY_MS)
            reply.pressed.append(digit)

    def add_media(self, uid: str, media: RtpEndpoint) -> None:
        self.media[uid] = media
        while len(self.media) > KEEP_MEDIA:
            del self.media[next(iter(self.media))]

    def stop_media(self, rec: ChannelRec) -> None:
        if rec.media is not None:
            self.spawn(rec.media.stop(), name=f"rtp-stop-{rec.channel.uniqueid}")

    # -- AMI → ARI ----------------------------------------------------------------
    def on_ami(self, data: bytes) -> None:
        """The engine emitted ``data`` (one AMI event): forward what an app subscribed to."""
        if not self.channels and not self.bridges:
            return
        name = ami_tap.event_name(data)
        handler = self._handlers.get(name)
        if handler is None:
            return
        if name == b"BridgeDestroy":
            relevant = ami_tap.value(data, b"BridgeUniqueid") in self.bridges
        else:
            chans = self.channels
            relevant = ami_tap.value(data, b"Uniqueid") in chans or (
                ami_tap.value(data, b"DestUniqueid") in chans
            )
        if relevant:
            handler(ami_tap.headers(data))

    def _sub(self, uid: str | None) -> ChannelRec | None:
        rec = self.channels.get(uid or "")
        return rec if rec is not None and rec.subscribed else None

    def _publish_ch(
        self, rec: ChannelRec, type_: str, before: Json | None = None, after: Json | None = None
    ) -> None:
        tail = dict(after or {})
        tail["channel"] = channel_json(rec.channel)
        rec.app.publish(event(type_, before=before, after=tail))

    def _newstate(self, h: dict[str, str]) -> None:
        rec = self._sub(h.get("Uniqueid"))
        if rec is not None:
            self._publish_ch(rec, "ChannelStateChange")

    def _connected_line(self, h: dict[str, str]) -> None:
        rec = self._sub(h.get("Uniqueid"))
        if rec is not None:
            self._publish_ch(rec, "ChannelConnectedLine")

    def _varset(self, h: dict[str, str]) -> None:
        rec = self._sub(h.get("Uniqueid"))
        if rec is None:
            return
        var, value = h.get("Variable", ""), h.get("Value", "")
        if var == "STASISSTATUS" and value == "SUCCESS" and rec.in_stasis:
            self._stasis_end(rec)
            if rec.is_caller:
                return
        self._publish_ch(rec, "ChannelVarset", before={"variable": var, "value": value})

    def _stasis_end(self, rec: ChannelRec) -> None:
        rec.in_stasis = False
        for pb in list(rec.playbacks):
            self.finish_playback(pb, "failed", rec.app)
        self._publish_ch(rec, "StasisEnd")
        if rec.is_caller:
            rec.subscribed = False

    def _bridge_move(self, h: dict[str, str]) -> None:
        brec = self.bridges.get(h.get("BridgeUniqueid", ""))
        rec = self._sub(h.get("Uniqueid"))
        if brec is None or rec is None:
            return
        entered = h.get("Event") == "BridgeEnter"
        bridge = bridge_json(brec.bridge, brec.created)
        kind = "ChannelEnteredBridge" if entered else "ChannelLeftBridge"
        self._publish_ch(rec, kind, after={"bridge": bridge})

    def _bridge_destroy(self, h: dict[str, str]) -> None:
        brec = self.bridges.pop(h.get("BridgeUniqueid", ""), None)
        if brec is None:
            return
        for pb in list(brec.playbacks):
            self.finish_playback(pb, "failed", brec.app)
        if brec.app is not None:
            brec.app.publish(
                event("BridgeDestroyed", after={"bridge": bridge_json(brec.bridge, brec.created)})
            )
        self.tombstones.append(brec.bridge.uniqueid)
        del self.tombstones[:-TOMBSTONES]

    def _dial(self, h: dict[str, str]) -> None:
        rec = self._sub(h.get("DestUniqueid"))
        if rec is None:
            return
        if "DialString" in h:
            rec.dialstring = h["DialString"]
        after: Json = {
            "dialstatus": h.get("DialStatus", ""),
            "forward": "",
            "dialstring": rec.dialstring,
        }
        caller = self.channels.get(h.get("Uniqueid", ""))
        if caller is not None:
            after["caller"] = channel_json(caller.channel)
        after["peer"] = channel_json(rec.channel)
        rec.app.publish(event("Dial", after=after))

    def _hangup_request(self, h: dict[str, str]) -> None:
        rec = self._sub(h.get("Uniqueid"))
        if rec is None:
            return
        before: Json = {"cause": int(h.get("Cause", "16") or 16)}
        if h.get("Event") == "SoftHangupRequest":
            before["soft"] = True
        self._publish_ch(rec, "ChannelHangupRequest", before=before)

    def _hangup(self, h: dict[str, str]) -> None:
        rec = self.channels.pop(h.get("Uniqueid", ""), None)
        if rec is None:
            return
        rec.gone.set()
        if rec.media is not None:
            self.spawn(rec.media.aclose(), name=f"rtp-close-{rec.channel.uniqueid}")
        if rec.subscribed and rec.in_stasis:
            self._stasis_end(rec)
        for pb in list(rec.playbacks):
            self.finish_playback(pb, "failed", rec.app, publish=rec.subscribed)
        if not rec.subscribed:
            return
        cause = int(h.get("Cause", "16") or 16)
        after = {"cause": cause, "cause_txt": CAUSE_TXT.get(cause, "Unknown")}
        self._publish_ch(rec, "ChannelDestroyed", after=after)

    def _dtmf(self, h: dict[str, str]) -> None:
        rec = self._sub(h.get("Uniqueid"))
        if rec is None or h.get("Direction") != "Received":
            return
        after = {"digit": h.get("Digit", ""), "duration_ms": int(h.get("DurationMs", "0") or 0)}
        self._publish_ch(rec, "ChannelDtmfReceived", after=after)
