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
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ivr.rtp import RtpReceiver
from recognition.audio import decode
from recognition.errors import RecognitionError
from recognition.executor import AsyncStream
from recognition.jitter import Frame
from recognition.pipeline import AsyncListener, Recognised, SpeechStarted
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


MediaEvent = SpeechStarted | Heard | MediaLost


class CallMedia:
    """The listening half of one bot call (see the module doc)."""

    def __init__(self, codec: str, stream: AsyncStream, *, lang: str, vad: VadSettings,
                 emit: Callable[[MediaEvent], None]) -> None:
        self.codec = codec
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
            self._emit(Heard(result, time.perf_counter() - result.decode_ms / 1000.0))

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
