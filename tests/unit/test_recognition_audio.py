"""G.711 / L16 decoding, the streaming resampler and sample conversions (recognition.audio)."""

from __future__ import annotations

import numpy as np
import pytest

from recognition.audio import (
    ALAW_TABLE,
    ULAW_TABLE,
    NoiseFill,
    Resampler,
    alaw_decode,
    alaw_encode,
    decode,
    resample,
    slin_decode,
    slin_encode,
    to_float,
    to_int16,
    ulaw_decode,
    ulaw_encode,
)
from recognition.errors import AudioFormatError


def tone(freq: float, rate: int, seconds: float = 0.5, amp: float = 10000.0) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.int16)


def band_power_db(x: np.ndarray, rate: int, lo: float, hi: float) -> float:
    spec = np.abs(np.fft.rfft(x.astype(np.float64) * np.hanning(len(x)))) ** 2
    freqs = np.fft.rfftfreq(len(x), 1 / rate)
    sel = spec[(freqs >= lo) & (freqs < hi)].sum()
    return float(10 * np.log10(sel / spec.sum() + 1e-30))


def test_ulaw_table_has_the_g711_reference_values() -> None:
    assert ULAW_TABLE[0xFF] == 0 and ULAW_TABLE[0x7F] == 0
    assert ULAW_TABLE[0x00] == -32124 and ULAW_TABLE[0x80] == 32124
    assert ULAW_TABLE[0xFE] == 8 and ULAW_TABLE[0x7E] == -8  # smallest steps


def test_alaw_table_has_the_g711_reference_values() -> None:
    assert ALAW_TABLE[0xD5] == 8 and ALAW_TABLE[0x55] == -8
    assert ALAW_TABLE[0xAA] == 32256 and ALAW_TABLE[0x2A] == -32256


@pytest.mark.parametrize(("enc", "dec", "max_err"),
                         [(ulaw_encode, ulaw_decode, 1024), (alaw_encode, alaw_decode, 1024)])
def test_g711_round_trip_error_is_within_one_quantisation_step(enc, dec, max_err) -> None:  # type: ignore[no-untyped-def]
    x = np.arange(-32768, 32768, 7, dtype=np.int32).astype(np.int16)
    y = dec(enc(x)).astype(np.int32)
    err = np.abs(y - x.astype(np.int32))
    assert err.max() <= max_err
    small = np.abs(x.astype(np.int32)) < 256
    assert err[small].max() <= 16  # fine steps near zero: the point of companding


def test_g711_decoding_every_byte_is_stable_under_reencoding() -> None:
    codes = bytes(range(256))
    for enc, dec in ((ulaw_encode, ulaw_decode), (alaw_encode, alaw_decode)):
        assert np.array_equal(dec(enc(dec(codes))), dec(codes))


def test_slin_is_big_endian_as_rtp_carries_it() -> None:
    assert slin_decode(b"\x01\x00\xff\xfe").tolist() == [256, -2]
    x = tone(440, 16000, 0.02)
    assert np.array_equal(slin_decode(slin_encode(x)), x)
    with pytest.raises(AudioFormatError):
        slin_decode(b"\x00\x01\x02")


def test_decode_dispatches_by_codec_and_refuses_others() -> None:
    assert decode("ulaw", b"\xff" * 160).shape == (160,)
    assert decode("alaw", b"\xd5" * 160).max() == 8
    assert decode("slin16", b"\x00\x10" * 320).tolist()[0] == 16
    with pytest.raises(AudioFormatError):
        decode("g729", b"\x00")


def test_float_conversion_round_trips_and_clips() -> None:
    x = np.array([-32768, -1, 0, 1, 32767], dtype=np.int16)
    assert np.array_equal(to_int16(to_float(x)), x)
    assert to_int16(np.array([1.5, -1.5])).tolist() == [32767, -32768]


def test_upsampling_keeps_a_tone_and_leaves_no_image_above_4khz() -> None:
    x = tone(3000, 8000)
    y = resample(x, 8000, 16000)
    assert len(y) == 2 * len(x)
    mid = y[200:-200].astype(np.float64)
    assert abs(np.sqrt(2 * np.mean(mid**2)) - 10000) < 300  # passband gain within ±0.3 dB
    # zero-order hold or zero stuffing would leave an image at 5 kHz; the FIR removes it
    assert band_power_db(y, 16000, 4300, 8000) < -50


def test_downsampling_removes_what_would_alias() -> None:
    x = tone(6000, 16000)  # above the 4 kHz Nyquist of the 8 kHz output
    y = resample(x, 16000, 8000)
    assert len(y) == len(x) // 2
    assert np.sqrt(np.mean(y[100:-100].astype(np.float64) ** 2)) < 70  # ≥ 40 dB down


def test_resampler_in_20ms_frames_equals_one_call() -> None:
    x = (np.random.default_rng(1).normal(0, 3000, 8000)).astype(np.int16)
    whole = resample(x, 8000, 16000)
    r = Resampler(8000, 16000)
    chunks = np.concatenate([r.process(x[i:i + 160]) for i in range(0, len(x), 160)])
    assert np.array_equal(chunks, whole)
    d = Resampler(16000, 8000)
    down = np.concatenate([d.process(whole[i:i + 317]) for i in range(0, len(whole), 317)])
    assert np.array_equal(down, resample(whole, 16000, 8000))


def test_resampler_refuses_other_ratios() -> None:
    with pytest.raises(AudioFormatError):
        Resampler(8000, 44100)
    assert np.array_equal(Resampler(16000, 16000).process(tone(1000, 16000)), tone(1000, 16000))


def test_noise_fill_is_low_and_deterministic() -> None:
    silence = np.zeros(16000, dtype=np.int16)
    a, b = NoiseFill().process(silence), NoiseFill().process(silence)
    assert np.array_equal(a, b)
    assert 20 < np.sqrt(np.mean(a.astype(np.float64) ** 2)) < 40
