"""One call leg's listening path: 8/16 kHz samples → VAD → recogniser (grammar per state) →
intent. Two faces with the same steps:

* ``Listener``: blocking, for tests, benchmarks and offline use;
* ``AsyncListener``: for the ARI session; VAD and resampling stay on the loop (µs per 20 ms
  frame), every recogniser call goes through ``AsyncRecognizer`` (the executor).

Audio reaches the recogniser only between the VAD's ``start`` and ``end``: silence costs no
decoder CPU, which is what lets 40 legs share 2 cores. Events out: ``SpeechStarted`` (the dialog's
barge-in) and ``Recognised`` (final text, confidence, intent, and ``decode_ms``: the time from the
VAD's end of utterance to the final result).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from recognition.audio import Int16Array, NoiseFill, Resampler, pcm16_bytes
from recognition.backends import Recognizer
from recognition.executor import AsyncStream
from recognition.intents import IntentMatch, grammar_for, match_intent
from recognition.phrases import STATE_INTENTS
from recognition.vad import Endpointer, VadEvent, VadSettings


@dataclass(frozen=True, slots=True)
class SpeechStarted:
    """The caller started speaking (``at_ms`` from the start of the leg's audio)."""

    at_ms: int


@dataclass(frozen=True, slots=True)
class Recognised:
    """An utterance's final result: recogniser ``text``/``confidence``, the ``intent`` match,
    why the utterance ended (``pause`` | ``max_length``), and ``decode_ms`` (end of utterance →
    final result, wall-clock)."""

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

    def result(self, text: str, conf: float, ev: VadEvent, t0: float) -> Recognised:
        intent = match_intent(text, self.lang, STATE_INTENTS[self.state])
        ms = (time.perf_counter() - t0) * 1000.0
        return Recognised(text, conf, intent, ev.at_ms, ev.reason, ms)


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
                self.stream.start(grammar_for(self._core.state, self._core.lang))
                out.append(SpeechStarted(ev.at_ms))
            if ev.audio:
                self.stream.accept(ev.audio)
            if ev.kind == "end":
                t0 = time.perf_counter()
                final = self.stream.finish()
                out.append(self._core.result(final.text, final.confidence, ev, t0))
        return out


class AsyncListener:
    """The same path for the event loop; recogniser calls run in the executor.

    Audio goes to the recogniser in batches of ``batch_ms`` (default 100 ms) rather than per
    20 ms RTP frame: one executor round trip per batch keeps the loop's per-call overhead low
    with 40 calls; the final result waits for at most one batch of decoding."""

    def __init__(self, stream: AsyncStream, *, in_rate: int, lang: str,
                 vad: VadSettings | None = None, batch_ms: int = 100) -> None:
        self.stream = stream
        self._core = _Core(in_rate, stream.sample_rate, lang, vad)
        self._batch_bytes = stream.sample_rate * 2 * batch_ms // 1000
        self._pending = bytearray()

    def listen(self, state: str) -> None:
        """Listen with the grammar of dialog ``state`` from the next utterance on."""
        self._core.state = state

    async def feed(self, samples: Int16Array) -> list[SpeechEvent]:
        """Take decoded int16 samples at ``in_rate``; return the events they complete.
        Raises ``RecognitionFailed`` when the decoder fails (the dialog goes DTMF-only)."""
        out: list[SpeechEvent] = []
        for ev in self._core.vad(samples):
            if ev.kind == "start":
                await self.stream.start(grammar_for(self._core.state, self._core.lang))
                out.append(SpeechStarted(ev.at_ms))
            t0 = time.perf_counter()
            self._pending += ev.audio
            if len(self._pending) >= self._batch_bytes or (ev.kind == "end" and self._pending):
                await self.stream.accept(bytes(self._pending))
                self._pending.clear()
            if ev.kind == "end":
                final = await self.stream.finish()
                out.append(self._core.result(final.text, final.confidence, ev, t0))
        return out
