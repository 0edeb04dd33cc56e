"""webrtcvad endpointing on real speech (espeak-ng, 8 kHz telephone band) and on silence/noise."""

from __future__ import annotations

import numpy as np
import pytest

from recognition.audio import pcm16_bytes, resample
from recognition.errors import AudioFormatError
from recognition.vad import Endpointer, VadEvent, VadSettings
from tests.fixtures.speech.synth import add_noise, speak, white_noise


@pytest.fixture(scope="module")
def utterance() -> np.ndarray:
    # 0.5 s silence, ~1.3 s of speech, 0.9 s silence
    return add_noise(speak("I would like to book an appointment"), 25.0)


def speech_bounds_ms(x: np.ndarray, rate: int) -> tuple[float, float]:
    """First and last sample louder than -30 dBFS, in ms (the noise is ≥ 25 dB below speech)."""
    loud = np.flatnonzero(np.abs(x.astype(np.int32)) > 1000)
    return 1000 * loud[0] / rate, 1000 * loud[-1] / rate


def run(ep: Endpointer, x: np.ndarray, chunk: int) -> list[VadEvent]:
    events: list[VadEvent] = []
    for i in range(0, len(x), chunk):
        events += ep.feed(pcm16_bytes(x[i:i + chunk]))
    return events


def kinds(events: list[VadEvent]) -> list[str]:
    return [e.kind for e in events if e.kind != "audio"]


@pytest.mark.parametrize("frame_ms", [10, 20, 30])
@pytest.mark.parametrize("rate", [8000, 16000])
def test_speech_start_and_end_are_found_on_real_speech(
        utterance: np.ndarray, frame_ms: int, rate: int) -> None:
    x = utterance if rate == 8000 else resample(utterance, 8000, 16000)
    ep = Endpointer(VadSettings(sample_rate=rate, frame_ms=frame_ms, trailing_pause_ms=300))
    events = run(ep, x, rate // 50)
    assert kinds(events) == ["start", "end"]
    start, end = events[0], next(e for e in events if e.kind == "end")
    on, off = speech_bounds_ms(x, rate)
    assert on <= start.at_ms <= on + 250
    assert off + 250 <= end.at_ms <= off + 600  # ends after the 300 ms pause
    assert end.reason == "pause"
    audio = start.audio + b"".join(e.audio for e in events if e.kind == "audio")
    assert len(audio) >= (end.at_ms - start.at_ms) * rate // 1000 * 2  # pre-roll + body


def test_the_trailing_pause_setting_moves_the_end(utterance: np.ndarray) -> None:
    ends = []
    for pause in (250, 600):
        events = run(Endpointer(VadSettings(trailing_pause_ms=pause)), utterance, 160)
        ends.append(next(e.at_ms for e in events if e.kind == "end"))
    assert 300 <= ends[1] - ends[0] <= 400


def test_max_utterance_length_cuts_long_speech(utterance: np.ndarray) -> None:
    events = run(Endpointer(VadSettings(max_utterance_ms=600)), utterance, 160)
    ends = [e for e in events if e.kind == "end"]
    assert ends and ends[0].reason == "max_length"


def test_two_utterances_give_two_segments(utterance: np.ndarray) -> None:
    events = run(Endpointer(VadSettings(trailing_pause_ms=400)), np.concatenate([utterance] * 2),
                 160)
    assert kinds(events) == ["start", "end", "start", "end"]


def test_silence_and_line_noise_start_nothing() -> None:
    ep = Endpointer()
    assert run(ep, np.zeros(8000 * 3, dtype=np.int16), 160) == []
    assert run(Endpointer(), white_noise(3.0, 150.0), 160) == []  # ≈ -47 dBFS hiss


def test_odd_chunk_sizes_are_buffered_into_frames(utterance: np.ndarray) -> None:
    a = kinds(run(Endpointer(), utterance, 160))
    b = kinds(run(Endpointer(), utterance, 37))
    assert a == b == ["start", "end"]


def test_bad_settings_are_refused() -> None:
    with pytest.raises(AudioFormatError):
        VadSettings(sample_rate=11025)
    with pytest.raises(AudioFormatError):
        VadSettings(frame_ms=25)
