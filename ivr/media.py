"""One call's audio path into the recogniser: RTP port → jitter buffer → decode → VAD →
recogniser (in the executor / worker processes) → speech events.

``CallMedia`` owns the call's ``RtpReceiver`` and ``recognition.pipeline.AsyncListener``. Frames
arrive synchronously from the datagram callback, in order from the jitter buffer, and are decoded
and fed to the listener at once (the VAD runs there: barge-in is never late); the listener queues
the recogniser's work for its own task, which runs it off the loop, and a task of ours hands the
final results on. Events go to
``emit``: ``pipeline.SpeechStarted``, ``pipeline.Recognised``, or ``MediaLost`` when the
recogniser fails (the dialog then continues keypad-only).

While not listening (``pause``), frames are dropped before the VAD: no decoder CPU is spent.

A feedback comment (``listen_comment``): the next utterance is recorded (``ivr.recording``, the
listener's tap) and transcribed free-form (``recognition.pipeline.DICTATION``; only endpointed
when no model transcribes free speech), with a longer pause and length; its result comes out as
a ``Heard`` whose ``comment`` holds the recording, written before the event is emitted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ivr.recording import CommentRecorder
from ivr.rtp import RtpReceiver
from recognition.audio import decode
from recognition.errors import RecognitionError
from recognition.executor import AsyncStream
from recognition.jitter import Frame
from recognition.pipeline import DICTATION, RECORD_ONLY, AsyncListener, Recognised, SpeechStarted
from recognition.vad import VadSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class MediaLost:
    """The recogniser failed; ``reason`` is safe for a log line."""

    reason: str


@dataclass(frozen=True, slots=True)
class Heard:
    """A final recognition plus when the VAD declared the end of the utterance
    (``end_at``: ``time.perf_counter()`` seconds)."""

    result: Recognised
    end_at: float
    comment: Taken | None = None
    """Set when this utterance was the comment asked for by ``listen_comment``."""


@dataclass(frozen=True, slots=True)
class Taken:
    """A comment's recording: the WAV's path (``""``: not kept), its length, and the
    transcription's status."""

    recording: str
    duration_s: float
    status: str


@dataclass(frozen=True, slots=True)
class CommentLimits:
    """A comment ends after ``pause_ms`` of silence or ``max_s`` of speech."""

    pause_ms: int = 1500
    max_s: float = 60.0


MediaEvent = SpeechStarted | Heard | MediaLost


class CallMedia:
    """The listening half of one bot call (see the module doc)."""

    def __init__(self, codec: str, stream: AsyncStream, *, lang: str, vad: VadSettings,
                 emit: Callable[[MediaEvent], None], dictation: bool = False) -> None:
        self.codec = codec
        self.dictation = dictation
        """Whether the recogniser transcribes free speech (else comments are only recorded)."""
        self.comment: CommentRecorder | None = None
        self._stream = stream
        self._emit = emit
        self.receiver = RtpReceiver(codec, self._on_frame)
        self.listener = AsyncListener(stream, in_rate=self.receiver.rate, lang=lang, vad=vad)
        self._task: asyncio.Task[None] | None = None
        self.listening = False
        self.dropped = 0
        self.port = 0

    async def open(self, host: str, ports: Sequence[int]) -> int:
        """Bind the call's RTP port (raises ``NoRtpPort``) and start the listener and the task
        that hands its results on."""
        self.port = await self.receiver.open(host, ports)
        self.listener.start()
        self._task = asyncio.create_task(self._results(), name=f"ivr-media-{self.port}")
        return self.port

    def listen(self, state: str) -> None:
        """Listen with the grammar of dialog ``state`` from the next utterance on."""
        self.listener.listen(state)
        self.listening = True

    def listen_comment(self, recorder: CommentRecorder, limits: CommentLimits) -> None:
        """Record (and, with ``dictation``, transcribe) the next utterance as a comment."""
        self.comment = recorder
        self.listener.tap = recorder.on_vad
        self.listener.limits(trailing_pause_ms=limits.pause_ms,
                             max_utterance_ms=int(limits.max_s * 1000))
        self.listen(DICTATION if self.dictation else RECORD_ONLY)

    def end_comment(self) -> bool:
        """``#``: end the comment being spoken now; False when nobody was speaking."""
        return self.listener.end_now("key")

    def pause(self) -> None:
        """Stop listening (frames are dropped until ``listen``)."""
        self.listening = False

    def _on_frame(self, frame: Frame) -> None:
        """A frame in order from the jitter buffer: VAD now (barge-in is never late); the
        recogniser's work is queued inside the listener and runs off the loop."""
        if not self.listening:
            return
        try:
            for started in self.listener.feed(decode(self.codec, frame.payload)):
                self._emit(started)
        except RecognitionError as exc:
            self._lost(exc)
        rec = self.comment
        if rec is not None and rec.finished:  # the comment is all this call listens for now
            if rec.reason == "max_length":
                self.listener.end_now("max_length")
            self.listening = False

    def _lost(self, exc: RecognitionError) -> None:
        self.listening = False
        self._emit(MediaLost(exc.message[:200]))

    async def _results(self) -> None:
        while True:
            try:
                result = await self.listener.next_result()
            except RecognitionError as exc:
                self._lost(exc)
                return
            end_at = time.perf_counter() - result.decode_ms / 1000.0
            self._emit(Heard(result, end_at, await self._taken(result)))

    async def _taken(self, result: Recognised) -> Taken | None:
        """The comment's recording, when ``result`` is the comment's utterance (the recorder
        saw its start and its end; a result queued before the comment was asked is not)."""
        rec = self.comment
        if rec is None or not rec.finished:
            return None
        self.comment, self.listener.tap = None, None
        path = await rec.save()
        if result.reason == "not_transcribed":
            status = "not transcribed: no model"
        else:
            status = "transcribed" if result.text.strip() else "nothing recognised"
        return Taken(path, round(rec.duration_s, 2), status)

    async def aclose(self) -> None:
        """Stop the task, release the port and the recogniser stream (errors logged)."""
        self.listening = False
        self.receiver.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        try:
            await self.listener.aclose()
        except RecognitionError as exc:
            log.warning("ivr: recogniser stream not closed cleanly: %s", exc.message[:200])
