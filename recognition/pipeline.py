"""One call leg's listening path: 8/16 kHz samples → VAD → recogniser (grammar per state) →
intent. Two faces with the same steps:

* ``Listener``: blocking, for tests, benchmarks and offline use;
* ``AsyncListener``: for the ARI session; VAD and resampling stay on the loop (µs per 20 ms
  frame), every recogniser call goes through an ``AsyncStream`` (thread or process pool) in a
  consumer task, so a busy recogniser never delays the audio path or barge-in.

Audio reaches the recogniser only between the VAD's ``start`` and ``end``: silence costs no
decoder CPU, which is what lets 40 legs share 2 cores. Events out: ``SpeechStarted`` (the dialog's
barge-in) and ``Recognised`` (final text, confidence, intent, and ``decode_ms``: the time from the
VAD's end of utterance to the final result).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from callserver.core.tasks import cancel_and_wait
from recognition.audio import Int16Array, NoiseFill, Resampler, pcm16_bytes
from recognition.backends import Grammar, Recognizer
from recognition.errors import RecognitionError
from recognition.executor import AsyncStream
from recognition.intents import IntentMatch, grammar_for, match_intent
from recognition.phrases import STATE_INTENTS
from recognition.vad import Endpointer, VadEvent, VadSettings

DICTATION = "dictation"
"""The listening state of free speech (a feedback comment): no grammar, no intents."""
RECORD_ONLY = "record_only"
"""Endpointing without recognition (no model transcribes free speech): results are empty,
``reason='not_transcribed'``."""


def grammar_of(state: str, lang: str) -> Grammar | None:
    """The recogniser grammar of a listening state; None for ``DICTATION``."""
    return None if state in (DICTATION, RECORD_ONLY) else grammar_for(state, lang)


@dataclass(frozen=True, slots=True)
class SpeechStarted:
    """The caller started speaking (``at_ms`` from the start of the leg's audio)."""

    at_ms: int


@dataclass(frozen=True, slots=True)
class Recognised:
    """An utterance's final result: recogniser ``text``/``confidence``, the ``intent`` match,
    why the utterance ended (``pause`` | ``max_length``), and ``decode_ms`` (end of utterance →
    final result, wall-clock). ``reason='overload'``: not decoded (see ``AsyncListener``)."""

    text: str
    confidence: float
    intent: IntentMatch
    at_ms: int
    reason: str
    decode_ms: float


SpeechEvent = SpeechStarted | Recognised


class _Core:
    def __init__(self, in_rate: int, out_rate: int, lang: str, vad: VadSettings | None) -> None:
        self.lang = lang
        self.resampler = Resampler(in_rate, out_rate)
        settings = vad or VadSettings()
        if settings.sample_rate != in_rate:
            settings = VadSettings(**{**_as_dict(settings), "sample_rate": in_rate})
        self.endpointer = Endpointer(settings)
        self.fill = NoiseFill() if out_rate > in_rate else None
        self.state = "main_menu"

    def vad(self, samples: Int16Array) -> list[VadEvent]:
        """The VAD decides on the audio as received (8 kHz telephone audio is what webrtcvad is
        best at; on up-sampled noisy audio it took line noise for speech); the events carry the
        audio at the recogniser's rate."""
        up = self.resampler.process(samples)
        if self.fill is not None:
            up = self.fill.process(up)
        return self.endpointer.feed(pcm16_bytes(samples), pcm16_bytes(up))

    def result(self, text: str, conf: float, ev: VadEvent, t0: float,
               state: str | None = None, reason: str = "") -> Recognised:
        state = state or self.state
        intent = match_intent(text, self.lang, STATE_INTENTS.get(state, ()))
        ms = (time.perf_counter() - t0) * 1000.0
        return Recognised(text, conf, intent, ev.at_ms, reason or ev.reason, ms)


def _as_dict(s: VadSettings) -> dict[str, int]:
    return {f: getattr(s, f) for f in VadSettings.__dataclass_fields__}


class Listener:
    """Blocking listening path over one ``Recognizer`` stream; ``in_rate`` is the RTP audio's
    rate (8000 or 16000), the stream's own rate is what the recogniser needs."""

    def __init__(self, stream: Recognizer, *, in_rate: int, lang: str,
                 vad: VadSettings | None = None) -> None:
        self.stream = stream
        self._core = _Core(in_rate, stream.sample_rate, lang, vad)

    def listen(self, state: str) -> None:
        """Listen with the grammar of dialog ``state`` from the next utterance on."""
        self._core.state = state

    def feed(self, samples: Int16Array) -> list[SpeechEvent]:
        """Take decoded int16 samples at ``in_rate``; return the events they complete."""
        out: list[SpeechEvent] = []
        for ev in self._core.vad(samples):
            if ev.kind == "start":
                self.stream.start(grammar_of(self._core.state, self._core.lang))
                out.append(SpeechStarted(ev.at_ms))
            if ev.audio:
                self.stream.accept(ev.audio)
            if ev.kind == "end":
                t0 = time.perf_counter()
                final = self.stream.finish()
                out.append(self._core.result(final.text, final.confidence, ev, t0))
        return out


class AsyncListener:
    """The same path for the event loop, with recognition decoupled from the audio.

    ``feed()`` is synchronous and never waits for a recogniser: it runs the VAD (µs), returns
    ``SpeechStarted`` at once (barge-in must not queue behind decoding), and queues the
    recogniser work. A consumer task (``start()``/``aclose()``) sends the audio to the stream in
    batches of ``batch_ms`` (one executor or worker round trip per batch) and puts each final
    ``Recognised`` in a queue read by ``next_result()``. ``decode_ms`` runs from the VAD's end of
    utterance to the final result, queueing included.

    Overload: when more than ``max_backlog_ms`` of audio is still waiting for the recogniser as
    a new utterance starts, that utterance is not decoded: its result (empty text,
    ``reason='overload'``, so the dialog asks again) follows the results before it in order,
    without adding its own decoding to a backlog that is already late."""

    def __init__(self, stream: AsyncStream, *, in_rate: int, lang: str,
                 vad: VadSettings | None = None, batch_ms: int = 100,
                 max_backlog_ms: int = 2000) -> None:
        self.stream = stream
        self._core = _Core(in_rate, stream.sample_rate, lang, vad)
        self._batch_bytes = stream.sample_rate * 2 * batch_ms // 1000
        self._max_backlog = stream.sample_rate * 2 * max_backlog_ms // 1000
        self._backlog = 0
        self._skipping = False
        self._pending = bytearray()
        self._work: asyncio.Queue[tuple[str, object, VadEvent | None, float]] = asyncio.Queue()
        self._results: asyncio.Queue[Recognised | RecognitionError] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self.tap: Callable[[VadEvent], None] | None = None
        """Sees every VAD event (audio at the recogniser's rate) as it happens: a recording."""

    def listen(self, state: str) -> None:
        """Listen with the grammar of dialog ``state`` from the next utterance on
        (``DICTATION``: free speech; ``RECORD_ONLY``: endpointing only)."""
        self._core.state = state

    def limits(self, *, trailing_pause_ms: int, max_utterance_ms: int) -> None:
        """Utterances from now on end after this pause or length (see ``Endpointer``)."""
        self._core.endpointer.set_limits(trailing_pause_ms=trailing_pause_ms,
                                         max_utterance_ms=max_utterance_ms)

    def end_now(self, reason: str = "key") -> bool:
        """End the utterance in progress at once (its result follows as usual); False when
        nobody was speaking."""
        ev = self._core.endpointer.force_end(reason)
        if ev is None:
            return False
        self._event(ev)
        return True

    def start(self) -> None:
        """Start the consumer task (owned by this listener; stopped by ``aclose``)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._consume(),
                                                                name="asr-listener")

    def feed(self, samples: Int16Array) -> list[SpeechStarted]:
        """Take decoded int16 samples at ``in_rate``; return speech starts (barge-in) now."""
        out: list[SpeechStarted] = []
        for ev in self._core.vad(samples):
            if ev.kind == "start":
                out.append(SpeechStarted(ev.at_ms))
            self._event(ev)
        return out

    def _event(self, ev: VadEvent) -> None:
        if self.tap is not None:
            self.tap(ev)
        if ev.kind == "start":
            self._skipping = (self._backlog > self._max_backlog
                              or self._core.state == RECORD_ONLY)  # fmt: skip
            if not self._skipping:
                grammar = grammar_of(self._core.state, self._core.lang)
                self._work.put_nowait(("start", grammar, None, 0.0))
        if not self._skipping:
            self._queue_audio(ev)
        if ev.kind == "end":
            op = "skip" if self._skipping else "end"
            self._work.put_nowait((op, self._core.state, ev, time.perf_counter()))

    def _queue_audio(self, ev: VadEvent) -> None:
        self._pending += ev.audio
        if len(self._pending) >= self._batch_bytes or (ev.kind == "end" and self._pending):
            self._backlog += len(self._pending)
            self._work.put_nowait(("audio", bytes(self._pending), None, 0.0))
            self._pending.clear()

    async def next_result(self) -> Recognised:
        """The next final result. Raises ``RecognitionFailed`` (or another
        ``RecognitionError``) when the recogniser failed: the dialog goes keypad-only."""
        item = await self._results.get()
        if isinstance(item, RecognitionError):
            raise item
        return item

    async def _consume(self) -> None:
        try:
            while True:
                op, arg, ev, t0 = await self._work.get()
                try:
                    await self._apply(op, arg, ev, t0)
                finally:
                    self._work.task_done()
        except RecognitionError as exc:
            self._results.put_nowait(exc)

    async def _apply(self, op: str, arg: object, ev: VadEvent | None, t0: float) -> None:
        if op == "start" and (arg is None or isinstance(arg, Grammar)):
            await self.stream.start(arg)
        elif op == "audio" and isinstance(arg, bytes):
            self._backlog -= len(arg)
            await self.stream.accept(arg)
        elif op == "skip" and ev is not None:
            why = "not_transcribed" if arg == RECORD_ONLY else "overload"
            self._results.put_nowait(self._core.result("", 0.0, ev, t0, str(arg), why))
        elif ev is not None:
            final = await self.stream.finish()
            self._results.put_nowait(self._core.result(final.text, final.confidence, ev, t0,
                                                       str(arg)))

    async def drained(self) -> None:
        """Wait until every queued recogniser call has been made (tests, benchmarks)."""
        await self._work.join()

    async def aclose(self) -> None:
        """Stop the consumer and release the recogniser stream."""
        if self._task is not None:
            await cancel_and_wait(self._task)
            self._task = None
        await self.stream.aclose()
