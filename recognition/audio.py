"""Audio conversions for the voice bot (numpy only, no I/O).

* G.711 µ-law / A-law payloads → int16 samples (256-entry decode tables), and the encoders
  (used by tests and the simulator).
* slin16 / L16 payloads: big-endian int16 as RTP carries them (RFC 3551 §4.5.11).
* Resampling between 8 kHz and 16 kHz with a Kaiser-windowed FIR, polyphase, streaming: a
  ``Resampler`` keeps the filter history across calls so 20 ms frames join without clicks.
* int16 ⇄ float32 in [-1, 1].

Sample rates are in Hz; "pcm16" means little-endian signed 16-bit mono bytes (what webrtcvad,
vosk and pocketsphinx take).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import numpy.typing as npt

from recognition.errors import AudioFormatError

Int16Array = npt.NDArray[np.int16]
Float32Array = npt.NDArray[np.float32]
Codec = Literal["ulaw", "alaw", "slin", "slin16"]
CODEC_RATES: dict[str, int] = {"ulaw": 8000, "alaw": 8000, "slin": 8000, "slin16": 16000}
"""Sample rate (Hz) of each Asterisk format name we take over RTP."""


def _ulaw_table() -> Int16Array:
    u = ~np.arange(256, dtype=np.int32) & 0xFF
    t = (((u & 0x0F) << 3) + 0x84) << ((u & 0x70) >> 4)
    return np.where(u & 0x80, 0x84 - t, t - 0x84).astype(np.int16)


def _alaw_table() -> Int16Array:
    a = np.arange(256, dtype=np.int32) ^ 0x55
    seg = (a & 0x70) >> 4
    t = (a & 0x0F) << 4
    t = np.where(seg == 0, t + 8, (t + 0x108) << np.maximum(seg - 1, 0))
    return np.where(a & 0x80, t, -t).astype(np.int16)


ULAW_TABLE = _ulaw_table()
ALAW_TABLE = _alaw_table()
SILENCE_BYTE = {"ulaw": 0xFF, "alaw": 0xD5, "slin": 0x00, "slin16": 0x00}
"""The byte that fills a frame of digital silence in each codec."""


def ulaw_decode(payload: bytes) -> Int16Array:
    """G.711 µ-law bytes → int16 samples (one sample per byte)."""
    return ULAW_TABLE[np.frombuffer(payload, dtype=np.uint8)]


def alaw_decode(payload: bytes) -> Int16Array:
    """G.711 A-law bytes → int16 samples (one sample per byte)."""
    return ALAW_TABLE[np.frombuffer(payload, dtype=np.uint8)]


def slin_decode(payload: bytes) -> Int16Array:
    """RTP L16 / Asterisk slin payload (big-endian int16) → int16 samples.

    Raises ``AudioFormatError`` on an odd byte count."""
    if len(payload) % 2:
        raise AudioFormatError(message="slin payload has an odd length", field="payload")
    return np.frombuffer(payload, dtype=">i2").astype(np.int16)


def ulaw_encode(samples: Int16Array) -> bytes:
    """int16 samples → G.711 µ-law bytes (segment search, ITU-T G.711 bias 0x84, clip 32635)."""
    x = samples.astype(np.int32)
    sign = np.where(x < 0, 0x80, 0)
    mag = np.minimum(np.abs(x), 32635) + 0x84
    exp = np.clip(np.floor(np.log2(mag)).astype(np.int32) - 7, 0, 7)
    mant = (mag >> (exp + 3)) & 0x0F
    out: bytes = (~(sign | (exp << 4) | mant) & 0xFF).astype(np.uint8).tobytes()
    return out


def alaw_encode(samples: Int16Array) -> bytes:
    """int16 samples → G.711 A-law bytes."""
    x = samples.astype(np.int32)
    mask = np.where(x >= 0, 0xD5, 0x55)
    mag = np.minimum(np.where(x >= 0, x, -x - 1), 32767)
    exp = np.clip(np.floor(np.log2(np.maximum(mag, 1))).astype(np.int32) - 7, 0, 7)
    mant = np.where(exp == 0, mag >> 4, mag >> (exp + 3)) & 0x0F
    out: bytes = (((exp << 4) | mant) ^ mask).astype(np.uint8).tobytes()
    return out


def slin_encode(samples: Int16Array) -> bytes:
    """int16 samples → big-endian L16 payload."""
    return samples.astype(">i2").tobytes()


def decode(codec: str, payload: bytes) -> Int16Array:
    """Decode one RTP payload of ``codec`` (``ulaw``, ``alaw``, ``slin``, ``slin16``).

    Raises ``AudioFormatError`` for another codec name."""
    if codec == "ulaw":
        return ulaw_decode(payload)
    if codec == "alaw":
        return alaw_decode(payload)
    if codec in ("slin", "slin16"):
        return slin_decode(payload)
    raise AudioFormatError(message=f"unsupported codec {codec[:20]!r}", field="codec")


def to_float(samples: Int16Array) -> Float32Array:
    """int16 → float32 in [-1, 1)."""
    return (samples.astype(np.float32) / 32768.0).astype(np.float32)


def to_int16(samples: npt.NDArray[np.floating] | Float32Array) -> Int16Array:
    """float in [-1, 1] → int16, clipping (not wrapping) what lies outside."""
    return np.clip(np.round(samples * 32768.0), -32768, 32767).astype(np.int16)


def pcm16_bytes(samples: Int16Array) -> bytes:
    """int16 samples → little-endian bytes (what the VAD and recognisers take)."""
    return samples.astype("<i2").tobytes()


def pcm16_samples(pcm: bytes) -> Int16Array:
    """Little-endian int16 bytes → samples."""
    return np.frombuffer(pcm, dtype="<i2").astype(np.int16)


def lowpass_taps(cutoff: float, taps: int = 48, beta: float = 8.0) -> npt.NDArray[np.float64]:
    """Kaiser-windowed sinc low-pass; ``cutoff`` is a fraction of the sample rate (0 < c < 0.5).

    Unity gain at DC. 48 taps at 16 kHz, cutoff 3.7 kHz: ≥ 60 dB down above ~4.3 kHz."""
    n = np.arange(taps) - (taps - 1) / 2.0
    h: npt.NDArray[np.float64] = 2 * cutoff * np.sinc(2 * cutoff * n) * np.kaiser(taps, beta)
    out: npt.NDArray[np.float64] = h / h.sum()
    return out


class Resampler:
    """Streaming resampler between 8 kHz and 16 kHz (factor 2 either way, or 1: a copy).

    Polyphase FIR (48 taps, Kaiser β=8, cutoff 3.7 kHz): up-sampling computes the two output
    phases from the input directly, down-sampling filters then keeps every second sample. The
    filter history is carried between ``process`` calls, so a stream cut into 20 ms frames gives
    the same output as one call on the whole signal. Group delay: 1.5 ms.

    Raises ``AudioFormatError`` for another pair of rates."""

    def __init__(self, in_rate: int, out_rate: int, *, taps: int = 48) -> None:
        if (in_rate, out_rate) not in ((8000, 16000), (16000, 8000)) and in_rate != out_rate:
            raise AudioFormatError(message=f"cannot resample {in_rate} → {out_rate} Hz",
                                   field="rate")
        self.in_rate, self.out_rate = in_rate, out_rate
        self._h = lowpass_taps(3700.0 / 16000.0, taps)
        self._phases = (self._h[0::2] * 2.0, self._h[1::2] * 2.0)
        keep = len(self._phases[0]) - 1 if out_rate > in_rate else taps - 1
        self._hist = np.zeros(keep if in_rate != out_rate else 0, dtype=np.float64)
        self._n = 0

    def process(self, samples: Int16Array) -> Int16Array:
        """Resample the next chunk (any length, including 0) of the stream."""
        if self.in_rate == self.out_rate:
            return samples.astype(np.int16, copy=True)
        buf = np.concatenate((self._hist, samples.astype(np.float64)))
        if len(self._hist):
            self._hist = buf[len(buf) - len(self._hist):]
        if self.out_rate > self.in_rate:
            out = np.empty(2 * len(samples), dtype=np.float64)
            out[0::2] = np.convolve(buf, self._phases[0], mode="valid")
            out[1::2] = np.convolve(buf, self._phases[1], mode="valid")
        else:
            filtered = np.convolve(buf, self._h, mode="valid")
            out = filtered[(-self._n) % 2 :: 2]
            self._n += len(samples)
        return np.clip(np.round(out), -32768, 32767).astype(np.int16)


def resample(samples: Int16Array, in_rate: int, out_rate: int) -> Int16Array:
    """One-shot ``Resampler(in_rate, out_rate).process(samples)``."""
    return Resampler(in_rate, out_rate).process(samples)


class NoiseFill:
    """Adds low white noise (``level`` RMS in int16 units; 30 ≈ -61 dBFS) to up-sampled audio.

    Why: 8 kHz telephone audio up-sampled to 16 kHz has nothing above 4 kHz, and a 16 kHz
    acoustic model (pocketsphinx en-us) reads the empty upper mel bands as extreme log-energies.
    Filling them with a noise floor raised intent accuracy on our 8 kHz test set from 49/74 to
    60/74 when decoding whole files (measured 2026-12). Seeded: the same input gives the same
    output."""

    def __init__(self, level: float = 30.0, *, seed: int = 0x5EED) -> None:
        self.level = level
        self._rng = np.random.default_rng(seed)

    def process(self, samples: Int16Array) -> Int16Array:
        """``samples`` plus the noise floor, clipped to int16."""
        noise = self._rng.normal(0.0, self.level, len(samples))
        return np.clip(np.round(samples + noise), -32768, 32767).astype(np.int16)
