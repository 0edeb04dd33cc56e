"""One bot call over ARI: carries out the dialog's commands and turns what it observes into the
dialog's inputs (``ivr.dialog`` is the pure state machine; this is its I/O).

Set-up: answer; when recognition is available, bind an RTP port (``ivr.media``), ask Asterisk for
an ``externalMedia`` channel sending the caller's audio there, and put the caller and that
channel in a mixing bridge. Any failure there (no port, ARI error) is one log line and a
keypad-only dialog. Prompts are played on the caller's channel one after another
(``sound:<prompts>/<id>`` with ``lang``), so stopping one (barge-in) is one ``DELETE
/playbacks/{id}``. ARI events reach the session through ``SessionInbox`` (the plugin's quick
handler routes them by channel and playback id); speech events come from the media path; the
silence timer and an operator freeing up are more inputs. The call ends when the dialog is done,
the caller hangs up, or after ``max_call_s``; tear-down always releases the port, the bridge and
the externalMedia channel.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from callserver.asterisk.ari_rest import clean
from callserver.asterisk.errors import AriError, AriHttpError
from callserver.core.phone import mask
from ivr.dialog import Dialog
from ivr.errors import IvrError
from ivr.media import CallMedia, CommentLimits, Heard, MediaEvent, MediaLost
from ivr.models import (
    Answered,
    Command,
    Comment,
    CreateCallbackJob,
    DialogInput,
    DialogSettings,
    Dtmf,
    EndComment,
    HangUp,
    Hangup,
    Lang,
    ListenComment,
    PlayPrompts,
    PromptFinished,
    RecognitionLost,
    ReturnToQueue,
    SendAppointmentRequest,
    SilenceTimeout,
    SpeechStarted,
    StartRecognition,
    StartSilenceTimer,
    StopPlayback,
    StopRecognition,
    Utterance,
)  # fmt: skip
from ivr.recording import CommentRecorder, safe_name
from ivr.transcript import Transcript
from recognition.pipeline import SpeechStarted as VadStarted

log = logging.getLogger(__name__)
MAX_HEARD = 50
"""Utterances kept in a call's transcript."""


class AriPort(Protocol):
    """The ARI REST calls a bot call makes (``callserver.asterisk.ari_rest.AriRest``)."""

    async def answer(self, channel_id: str) -> None: ...
    async def get_variable(self, channel_id: str, name: str) -> str: ...
    async def play(self, channel_id: str, media: str, playback_id: str | None = None, *,
                   lang: str | None = None) -> Any: ...  # fmt: skip
    async def stop_playback(self, playback_id: str) -> None: ...
    async def set_variable(self, channel_id: str, name: str, value: str) -> None: ...
    async def continue_in_dialplan(self, channel_id: str) -> None: ...
    async def hangup(self, channel_id: str, reason: str | None = "normal") -> None: ...
    async def create_bridge(self, type: str = "mixing", bridge_id: str | None = None, *,
                            name: str | None = None) -> Any: ...  # fmt: skip
    async def add_channel(self, bridge_id: str, channel_id: str) -> None: ...
    async def destroy_bridge(self, bridge_id: str) -> None: ...
    async def external_media(self, app: str, external_host: str, format: str, *,
                             encapsulation: str = "rtp", transport: str = "udp",
                             direction: str = "both", channel_id: str | None = None
                             ) -> Any: ...  # fmt: skip


class Outcomes(Protocol):
    """Where a bot call's outcome goes (the plugin adapts the callback/CRM ports)."""

    async def callback(self, call: CallInfo, job: CreateCallbackJob) -> None: ...
    async def appointment(self, call: CallInfo, request: SendAppointmentRequest) -> None: ...


@dataclass(frozen=True, slots=True)
class CallInfo:
    """The caller's channel id, number (E.164 digits or raw), queue, priority, language."""

    channel_id: str
    caller: str
    queue: str
    priority: int
    lang: Lang


@dataclass(frozen=True, slots=True)
class SessionSettings:
    """What a session needs from ``[ivr]`` (see ``ivr.config.IvrConfig``)."""

    app: str
    prompts: str = "callserver"
    rtp_host: str = "127.0.0.1"
    codec: str = "ulaw"
    max_call_s: float = 300.0
    dialog: DialogSettings = field(default_factory=DialogSettings)
    recordings_dir: str = ""
    """Where feedback comments are recorded (``<dir>/<name>.wav``); empty: not recorded."""
    comment: CommentLimits = field(default_factory=CommentLimits)


@dataclass(frozen=True, slots=True)
class PlaybackDone:
    """ARI PlaybackFinished of one of our playbacks."""

    playback_id: str


@dataclass(frozen=True, slots=True)
class CallGone:
    """StasisEnd / hang-up of the caller's channel (``left``: went back to the dialplan)."""

    left: bool = False


class CallDialog(Protocol):
    """What a session drives: ``ivr.dialog.Dialog`` (inbound) or
    ``ivr.campaign_dialog.CampaignDialog`` (outbound campaign calls)."""

    state: str
    playing: bool

    @property
    def outcome(self) -> str | None: ...

    @property
    def grammar(self) -> str:
        """The recognition grammar to listen with before the first prompt."""
        ...

    def handle(self, event: DialogInput) -> list[Command]: ...


SoundResolver = Callable[[str, str], Awaitable[str]]
"""``(prompt, lang)`` → the ARI media URI to play (``""``: nothing to play, skip it)."""

Inbox = DialogInput | PlaybackDone | CallGone | MediaEvent
MediaFactory = Callable[[str, Callable[[MediaEvent], None]], Awaitable[CallMedia | None]]
"""``(lang, emit)`` → an unopened ``CallMedia``, or None when recognition is unavailable."""


class BotSession:
    """One call (``run`` returns when the call left the bot). ``put`` is the inbox."""

    def __init__(self, call: CallInfo, ari: AriPort, outcomes: Outcomes,
                 settings: SessionSettings, media: MediaFactory,
                 ports: Callable[[], list[int]] = lambda: list(range(40000, 41000)), *,
                 dialog: CallDialog | None = None, sound: SoundResolver | None = None) -> None:
        self.call, self._ari, self._outcomes, self.settings = call, ari, outcomes, settings
        self._media_factory, self._ports = media, ports
        self.dialog: CallDialog = dialog or Dialog(settings.dialog)
        self._sound = sound or self._prompt_sound
        self.inbox: asyncio.Queue[Inbox] = asyncio.Queue()
        self.media: CallMedia | None = None
        self.bridge_id = ""
        self.media_channel = ""
        self._prompts: list[str] = []
        self._lang: str = call.lang
        self.playing = ""
        self._timer: asyncio.TimerHandle | None = None
        self._heard_at: float | None = None
        self.gone = False
        self.own_playback: Callable[[str], None] = lambda _pid: None
        self.transcript = Transcript(call.channel_id, call.caller, call.lang, time.time())

    def put(self, item: Inbox) -> None:
        """Never blocks (unbounded: the events of one call are few)."""
        self.inbox.put_nowait(item)

    async def run(self) -> None:
        """Answer, set up media, run the dialog to its end; always tears down."""
        try:
            async with asyncio.timeout(self.settings.max_call_s):
                await self._ari.answer(self.call.channel_id)
                speech = await self._setup_media()
                self.transcript.speech = speech
                await self._execute(self.dialog.handle(Answered(speech=speech)))
                while self.dialog.state != "done":
                    await self._step(await self.inbox.get())
        except AriError as exc:  # answer failed: the caller is gone or Asterisk went away
            log.warning("ivr: call %s not answered: %s", clean(self.call.channel_id), clean(exc))
        except TimeoutError:
            log.warning("ivr: call %s reached max_call_s", clean(self.call.channel_id))
            await self._execute(self.dialog.handle(Hangup()))
            await self._safe(self._ari.hangup(self.call.channel_id))
        finally:
            self.transcript.outcome = self.dialog.outcome or ""
            self.transcript.ended = time.time()
            self._cancel_timer()
            await self._teardown()

    # ---- media set-up / tear-down -------------------------------------------------------
    async def _setup_media(self) -> bool:
        media = await self._media_factory(self.call.lang, self.put)
        if media is None:
            return False
        try:
            port = await media.open(self.settings.rtp_host, self._ports())
            self.media = media
            media.listen(self.dialog.grammar)  # audio flows once bridged, before the first prompt
            host = f"{self.settings.rtp_host}:{port}"
            self.media_channel = f"{self.call.channel_id}-ivr"
            await self._ari.external_media(self.settings.app, host, self.settings.codec,
                                           channel_id=self.media_channel)
            # no bridgeId: Asterisk picks one (pbxsim answers 500 to a given bridgeId)
            bridge = await self._ari.create_bridge("mixing", name="ivr")
            self.bridge_id = str(bridge.get("id", "")) if isinstance(bridge, dict) else ""
            for chan in (self.call.channel_id, self.media_channel):
                await self._ari.add_channel(self.bridge_id, chan)
            return True
        except (AriError, IvrError) as exc:
            log.warning("ivr: no audio path for %s (%s): keypad-only menu",
                        clean(self.call.channel_id), clean(exc))
            return False

    async def _teardown(self) -> None:
        if self.media is not None:
            await self.media.aclose()
        if self.bridge_id:
            await self._safe(self._ari.destroy_bridge(self.bridge_id))
        if self.media_channel:
            await self._safe(self._ari.hangup(self.media_channel))

    async def _safe(self, call: Awaitable[None]) -> None:
        try:
            await call
        except AriError as exc:
            if not (isinstance(exc, AriHttpError) and exc.details.get("status") == 404):
                log.info("ivr: ARI clean-up on %s: %s", clean(self.call.channel_id), clean(exc))

    # ---- inputs ---------------------------------------------------------------------------
    async def _step(self, item: Inbox) -> None:
        log.debug("ivr %s: in %s <- %r", self.call.channel_id, self.dialog.state, item)
        if isinstance(item, PlaybackDone):
            if item.playback_id == self.playing:
                self.playing = ""
                await self._play_next()
            return
        if isinstance(item, CallGone):
            self.gone = True
            await self._execute(self.dialog.handle(Hangup()))
            self.dialog.state = "done"
            return
        event = self._translate(item)
        if event is not None:
            await self._execute(self.dialog.handle(event))

    def _translate(self, item: Inbox) -> DialogInput | None:
        if isinstance(item, VadStarted):
            self._cancel_timer()
            return SpeechStarted()
        if isinstance(item, Heard):
            return self._heard(item) if item.comment is None else self._comment(item)
        if isinstance(item, MediaLost):
            log.warning("ivr: recognition lost on %s (%s): keypad-only",
                        clean(self.call.channel_id), clean(item.reason))
            return RecognitionLost()
        if isinstance(item, Dtmf):
            self._cancel_timer()
            self.transcript.keys = (self.transcript.keys + item.digit[:1])[-40:]
        return item  # type: ignore[return-value]  # the remaining members are DialogInput

    def _comment(self, item: Heard) -> Comment:
        taken, text = item.comment, item.result.text.strip()[:1000]
        assert taken is not None
        if len(self.transcript.heard) < MAX_HEARD:
            self.transcript.heard.append({
                "state": "comment", "text": text[:200], "status": taken.status,
                "duration_s": taken.duration_s, "decode_ms": round(item.result.decode_ms, 1)})
        return Comment(text, taken.recording, taken.duration_s, taken.status)

    def _heard(self, item: Heard) -> DialogInput | None:
        r = item.result
        if len(self.transcript.heard) < MAX_HEARD:
            self.transcript.heard.append({
                "state": self.dialog.state, "text": r.text[:200], "intent": r.intent.intent,
                "score": round(r.intent.score, 3), "decode_ms": round(r.decode_ms, 1)})
        if not r.text.strip():
            if not self.dialog.playing and self.dialog.state != "done":
                self._arm(self.settings.dialog.silence_s)
            return None
        self._heard_at = item.end_at
        m = r.intent
        return Utterance(r.text, m.intent, m.score, m.digits)

    # ---- commands -------------------------------------------------------------------------
    async def _execute(self, commands: list[Command]) -> None:
        # the grammar first: a play request can take a while, the caller may already speak
        first = [c for c in commands
                 if isinstance(c, StartRecognition | StopRecognition | ListenComment)]
        for cmd in first + [c for c in commands if c not in first]:
            log.debug("ivr %s: do %r", self.call.channel_id, cmd)
            try:
                await self._do(cmd)
            except AriError as exc:
                log.warning("ivr: %s on %s failed: %s", type(cmd).__name__,
                            clean(self.call.channel_id), clean(exc))

    async def _do(self, cmd: Command) -> None:
        if isinstance(cmd, PlayPrompts):
            self._cancel_timer()
            self._prompts, self._lang = list(cmd.prompts), cmd.lang
            await self._stop_current()
            await self._play_next()
        elif isinstance(cmd, StopPlayback):
            self._prompts.clear()
            self.transcript.prompts_stopped += bool(self.playing)
            await self._stop_current()
        elif isinstance(cmd, StartRecognition) and self.media is not None:
            self.media.listen(cmd.grammar)
        elif isinstance(cmd, StopRecognition) and self.media is not None:
            self.media.pause()
        elif isinstance(cmd, ListenComment) and self.media is not None:
            self.media.listen_comment(self._recorder(cmd.name), self.settings.comment)
        elif isinstance(cmd, EndComment) and self.media is not None:
            self.media.end_comment()
        elif isinstance(cmd, StartSilenceTimer):
            self._arm(cmd.seconds)
        elif isinstance(cmd, CreateCallbackJob):
            await self._outcome(self._outcomes.callback(self.call, cmd))
        elif isinstance(cmd, SendAppointmentRequest):
            await self._outcome(self._outcomes.appointment(self.call, cmd))
        elif isinstance(cmd, ReturnToQueue):
            await self._return_to_queue(cmd.priority_boost)
        elif isinstance(cmd, HangUp) and not self.gone:
            await self._ari.hangup(self.call.channel_id)

    async def _outcome(self, call: Awaitable[None]) -> None:
        try:
            await call
        except Exception:  # the caller is told "we will call you" either way: log it loudly
            log.exception("ivr: outcome of call %s not recorded", clean(self.call.channel_id))

    def _recorder(self, name: str) -> CommentRecorder:
        folder = self.settings.recordings_dir
        path = Path(folder) / f"{safe_name(name)}.wav" if folder else None
        rate = self.media.listener.stream.sample_rate if self.media is not None else 16000
        return CommentRecorder(path, rate=rate, max_s=self.settings.comment.max_s)

    async def _prompt_sound(self, prompt: str, _lang: str) -> str:
        return f"sound:{self.settings.prompts}/{prompt}"

    async def _play_next(self) -> None:
        media = ""
        while not media:
            if not self._prompts:
                await self._execute(self.dialog.handle(PromptFinished()))
                return
            media = await self._sound(self._prompts.pop(0), self._lang)
        pid = f"ivr-{uuid.uuid4().hex}"
        self.playing = pid
        self.own_playback(pid)
        await self._ari.play(self.call.channel_id, media, pid, lang=self._lang)
        if self._heard_at is not None:
            self.transcript.reply_ms.append((time.perf_counter() - self._heard_at) * 1000.0)
            self._heard_at = None

    async def _stop_current(self) -> None:
        pid, self.playing = self.playing, ""
        if pid:
            await self._safe(self._ari.stop_playback(pid))

    async def _return_to_queue(self, boost: int) -> None:
        chan = self.call.channel_id
        for name, value in (("ROUTE_QUEUE", self.call.queue),
                            ("ROUTE_PRIORITY", str(self.call.priority + boost)),
                            ("ROUTE_MODE", "queue"), ("IVR_OUTCOME", "queue")):  # fmt: skip
            await self._ari.set_variable(chan, name, value)
        await self._ari.continue_in_dialplan(chan)
        log.info("ivr: %s back to queue %s with priority %d", mask(self.call.caller),
                 clean(self.call.queue), self.call.priority + boost)

    # ---- silence timer ----------------------------------------------------------------------
    def _arm(self, seconds: float) -> None:
        self._cancel_timer()
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(seconds, self.put, SilenceTimeout())

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
