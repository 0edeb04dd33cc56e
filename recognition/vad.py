"""Endpointing with webrtcvad: where an utterance starts and where it ends.

``Endpointer.feed(pcm16)`` cuts the audio into 10/20/30 ms frames, asks webrtcvad about each, and
returns ``VadEvent``s:

* ``start``: speech began (``min_speech_ms`` of voiced frames within the last ``start_window_ms``);
  ``audio`` carries the pre-roll (``pre_roll_ms`` before the start, so a recogniser hears the
  onset and some silence: decoders do badly on audio that starts mid-word);
* ``audio``: in-utterance audio of this ``feed`` call;
* ``end``: the utterance is over: ``reason='pause'`` after ``trailing_pause_ms`` of unvoiced
  frames (the trailing pause audio has already been delivered), or ``reason='max_length'`` after
  ``max_utterance_ms``.

Times (``at_ms``) count from the first sample fed. webrtcvad is C and fast (~5 µs per 20 ms frame),
so the endpointer may run on the event loop; the recogniser may not.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, replace
from typing import Literal

from recognition.errors import AudioFormatError, BackendUnavailable

VAD_RATES = (8000, 16000, 32000, 48000)
FRAME_MS = (10, 20, 30)


@dataclass(frozen=True, slots=True)
class VadSettings:
    """Endpointing parameters; all durations in milliseconds.

    ``aggressiveness`` is webrtcvad's mode 0 (least) … 3 (most eager to call audio non-speech)."""

    sample_rate: int = 8000
    frame_ms: int = 20
    aggressiveness: int = 2
    start_window_ms: int = 200
    min_speech_ms: int = 120
    trailing_pause_ms: int = 400
    max_utterance_ms: int = 8000
    pre_roll_ms: int = 300

    def __post_init__(self) -> None:
        if self.sample_rate not in VAD_RATES:
            raise AudioFormatError(message="VAD sample rate must be 8/16/32/48 kHz", field="rate")
        if self.frame_ms not in FRAME_MS:
            raise AudioFormatError(message="VAD frame must be 10, 20 or 30 ms", field="frame_ms")
        if not 0 <= self.aggressiveness <= 3:
            raise AudioFormatError(message="aggressiveness is 0..3", field="aggressiveness")


@dataclass(frozen=True, slots=True)
class VadEvent:
    """One endpointing event (see the module doc); ``audio`` is pcm16 bytes, ``reason`` is set on
    ``end`` only."""

    kind: Literal["start", "audio", "end"]
    at_ms: int
    audio: bytes = b""
    reason: str = ""


def _load_vad(mode: int) -> object:
    try:
        import webrtcvad
    except ImportError as exc:
        raise BackendUnavailable(message="webrtcvad is not installed", backend="webrtcvad") from exc
    return webrtcvad.Vad(mode)


class Endpointer:
    """Utterance start/end detection over a pcm16 stream (one per call leg)."""

    def __init__(self, settings: VadSettings | None = None) -> None:
        self.settings = s = settings or VadSettings()
        self._vad = _load_vad(s.aggressiveness)
        self._frame_bytes = s.sample_rate * s.frame_ms // 1000 * 2
        self._buf = b""
        self._carry = b""
        self._t_ms = 0
        self._window: deque[bool] = deque(maxlen=max(1, s.start_window_ms // s.frame_ms))
        self._pre: deque[bytes] = deque(maxlen=max(1, s.pre_roll_ms // s.frame_ms))
        self.in_speech = False
        self._silent_ms = 0
        self._utt_ms = 0

    def is_speech(self, frame: bytes) -> bool:
        """webrtcvad's verdict on one frame of exactly ``frame_ms``."""
        return bool(self._vad.is_speech(frame, self.settings.sample_rate))  # type: ignore[attr-defined]

    def feed(self, pcm: bytes, carry: bytes | None = None) -> list[VadEvent]:
        """Take the next pcm16 chunk (any length); return the events it completes.

        ``carry``: the same stretch of audio at another rate (e.g. the 16 kHz audio a recogniser
        wants, while the VAD decides on the original 8 kHz, which webrtcvad handles best); the
        events then carry it instead of ``pcm``. Its length must be a fixed multiple of
        ``len(pcm)`` for the whole stream (2× for 8 → 16 kHz)."""
        self._buf += pcm
        if carry is not None:
            self._carry += carry
            ratio = len(carry) // max(1, len(pcm))
        events: list[VadEvent] = []
        audio = bytearray()
        n = self._frame_bytes
        while len(self._buf) >= n:
            frame, self._buf = self._buf[:n], self._buf[n:]
            out = frame
            if carry is not None:
                out, self._carry = self._carry[: n * ratio], self._carry[n * ratio :]
            self._t_ms += self.settings.frame_ms
            self._step(out, self.is_speech(frame), events, audio)
        if audio:
            events.append(VadEvent("audio", self._t_ms, bytes(audio)))
        return events

    def _step(self, frame: bytes, voiced: bool, events: list[VadEvent], audio: bytearray) -> None:
        s = self.settings
        if not self.in_speech:
            self._pre.append(frame)
            self._window.append(voiced)
            if sum(self._window) * s.frame_ms >= s.min_speech_ms:
                self.in_speech, self._silent_ms, self._utt_ms = True, 0, len(self._pre) * s.frame_ms
                events.append(VadEvent("start", self._t_ms, b"".join(self._pre)))
                self._pre.clear()
                self._window.clear()
            return
        audio += frame
        self._utt_ms += s.frame_ms
        self._silent_ms = 0 if voiced else self._silent_ms + s.frame_ms
        reason = ""
        if self._silent_ms >= s.trailing_pause_ms:
            reason = "pause"
        elif self._utt_ms >= s.max_utterance_ms:
            reason = "max_length"
        if reason:
            if audio:
                events.append(VadEvent("audio", self._t_ms, bytes(audio)))
                audio.clear()
            events.append(VadEvent("end", self._t_ms, reason=reason))
            self.in_speech = False

    def set_limits(self, *, trailing_pause_ms: int, max_utterance_ms: int) -> None:
        """End the next utterances after ``trailing_pause_ms`` of pause or ``max_utterance_ms``
        (a free-form comment is longer and has longer pauses than an answer to a menu)."""
        self.settings = replace(self.settings, trailing_pause_ms=trailing_pause_ms,
                                max_utterance_ms=max_utterance_ms)

    def force_end(self, reason: str) -> VadEvent | None:
        """End the utterance in progress now (the caller pressed a key): its ``end`` event, or
        None when nobody is speaking. Audio not yet framed is dropped."""
        if not self.in_speech:
            return None
        self.reset()
        return VadEvent("end", self._t_ms, reason=reason)

    def reset(self) -> None:
        """Forget any utterance in progress (e.g. when the dialog stops listening)."""
        self._buf = self._carry = b""
        self._window.clear()
        self._pre.clear()
        self.in_speech = False
