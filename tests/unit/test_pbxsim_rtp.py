"""pbxsim.rtp: packet headers, G.711 against the standard's code points, WAV reading."""

from __future__ import annotations

import itertools
import math
import random
import struct
import wave
from pathlib import Path

import pytest

from pbxsim import rtp


def _pcm(*samples: int) -> bytes:
    return struct.pack(f"<{len(samples)}h", *samples)


def _write_wav(path: Path, rate: int, samples: list[int], channels: int = 1) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(struct.pack(f"<{len(samples)}h", *samples))


def test_header_fields_are_rfc3550_big_endian() -> None:
    pkt = rtp.RtpPacket(8, 0xFFFF, 0xFFFFFFF0, 0x11223344, b"\xd5" * 160, marker=True)
    data = pkt.encode()
    assert len(data) == 12 + 160
    assert data[0] == 0x80  # V=2, no padding, no extension, no CSRC
    assert data[1] == 0x80 | 8  # marker + PT 8 (PCMA)
    assert data[2:4] == b"\xff\xff"
    assert data[4:8] == b"\xff\xff\xff\xf0"
    assert data[8:12] == b"\x11\x22\x33\x44"
    assert rtp.RtpPacket.parse(data) == pkt


def test_parse_skips_csrc_extension_and_padding() -> None:
    head = bytes([0x80 | 0x20 | 0x10 | 1, 0]) + struct.pack("!HII", 7, 160, 5)
    csrc = b"\0\0\0\1"
    ext = struct.pack("!HH", 0xBEDE, 1) + b"\1\2\3\4"
    data = head + csrc + ext + b"abc" + b"\0\0\3"
    pkt = rtp.RtpPacket.parse(data)
    assert (pkt.payload_type, pkt.sequence, pkt.timestamp, pkt.ssrc) == (0, 7, 160, 5)
    assert pkt.payload == b"abc"


@pytest.mark.parametrize("data", [b"", b"\x80" * 11, b"\x40" + b"\0" * 20])
def test_parse_rejects_short_or_wrong_version(data: bytes) -> None:
    with pytest.raises(rtp.RtpError):
        rtp.RtpPacket.parse(data)


@pytest.mark.parametrize(
    ("sample", "ulaw", "alaw"),
    [
        (0, 0xFF, 0xD5),
        (-1, 0x7E, 0x55),  # Sun g711.c: -1 >> 2 is -1, one step below zero
        (32767, 0x80, 0xAA),
        (-32768, 0x00, 0x2A),
        (1000, 0xCE, 0xFA),
        (-1000, 0x4E, 0x7A),
    ],
)
def test_g711_code_points(sample: int, ulaw: int, alaw: int) -> None:
    assert rtp.ulaw_encode(_pcm(sample)) == bytes([ulaw])
    assert rtp.alaw_encode(_pcm(sample)) == bytes([alaw])


def test_g711_round_trip_error_is_small() -> None:
    samples = [int(8000 * math.sin(i / 5)) for i in range(400)]
    for enc, dec in ((rtp.ulaw_encode, rtp.ulaw_decode), (rtp.alaw_encode, rtp.alaw_decode)):
        back = struct.unpack("<400h", dec(enc(_pcm(*samples))))
        assert max(abs(a - b) for a, b in zip(samples, back, strict=True)) <= 256


def test_slin16_payload_is_big_endian() -> None:
    fmt = rtp.get_format("slin16")
    assert (fmt.payload_type, fmt.rate, fmt.samples_per_packet) == (118, 16000, 320)
    assert rtp.encode(fmt, _pcm(1, -2)) == b"\x00\x01\xff\xfe"
    assert rtp.decode(fmt, b"\x00\x01\xff\xfe") == _pcm(1, -2)


def test_unknown_format_is_rejected() -> None:
    with pytest.raises(rtp.RtpError):
        rtp.get_format("g729")


def test_endpoint_packets_count_sequence_and_timestamp() -> None:
    fmt = rtp.get_format("ulaw")
    audio = _pcm(*range(200))
    ep = rtp.RtpEndpoint(fmt, ("127.0.0.1", 9), audio, rng=random.Random(3))
    packets = [ep.packet(n) for n in range(4)]
    assert [p.marker for p in packets] == [True, False, False, False]
    assert {p.ssrc for p in packets} == {ep.ssrc}
    seqs = [p.sequence for p in packets]
    assert all((b - a) % 65536 == 1 for a, b in itertools.pairwise(seqs))
    stamps = [p.timestamp for p in packets]
    assert all((b - a) % 2**32 == 160 for a, b in itertools.pairwise(stamps))
    assert packets[0].payload == rtp.ulaw_encode(audio[:320])
    assert packets[1].payload == rtp.ulaw_encode(audio[320:] + bytes(320 - len(audio[320:])))
    assert packets[2].payload == b"\xff" * 160  # silence after the audio


def test_read_wav_mono_at_rate(tmp_path: Path) -> None:
    samples = [0, 100, -100, 32767, -32768]
    path = tmp_path / "a.wav"
    _write_wav(path, 8000, samples)
    assert rtp.read_wav(path, 8000) == _pcm(*samples)


def test_read_wav_downmixes_and_resamples(tmp_path: Path) -> None:
    stereo = [v for i in range(160) for v in (i * 10, i * 10 + 20)]
    path = tmp_path / "s.wav"
    _write_wav(path, 8000, stereo, channels=2)
    out = struct.unpack("<320h", rtp.read_wav(path, 16000))
    assert out[0] == 10 and out[2] == 20  # (0+20)/2, (10+30)/2
    assert out[1] == 15  # linear interpolation between the two


def test_read_wav_rejects_missing_and_8bit(tmp_path: Path) -> None:
    with pytest.raises(rtp.RtpError):
        rtp.read_wav(tmp_path / "missing.wav", 8000)
    path = tmp_path / "b.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(1)
        w.setframerate(8000)
        w.writeframes(b"\x80" * 10)
    with pytest.raises(rtp.RtpError):
        rtp.read_wav(path, 8000)
