"""RTP parsing of untrusted datagrams (recognition.rtp)."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from recognition.errors import AudioFormatError
from recognition.rtp import build_rtp, parse_rtp


def test_a_plain_packet_round_trips() -> None:
    pkt = parse_rtp(build_rtp(b"\xff" * 160, seq=65535, timestamp=8000, ssrc=42, marker=True))
    assert (pkt.seq, pkt.timestamp, pkt.ssrc, pkt.payload_type, pkt.marker) == (
        65535, 8000, 42, 0, True)
    assert pkt.payload == b"\xff" * 160


def test_csrc_extension_and_padding_are_skipped() -> None:
    header = struct.pack(">BBHII", 0x80 | 0x20 | 0x10 | 2, 8, 7, 160, 1)
    csrcs = b"\x00\x00\x00\x01\x00\x00\x00\x02"
    ext = struct.pack(">HH", 0xBEDE, 1) + b"\x01\x02\x03\x04"
    pkt = parse_rtp(header + csrcs + ext + b"audio" + b"\x00\x00\x03")
    assert pkt.payload == b"audio" and pkt.payload_type == 8 and pkt.seq == 7


@pytest.mark.parametrize("datagram", [
    b"", b"\x80\x00", b"\x40" + b"\x00" * 20,                     # short, RTP version 1
    bytes([0x8F]) + b"\x00" * 11,                                 # 15 CSRCs announced, none sent
    bytes([0x90]) + b"\x00" * 11 + b"\x00\x00\xff\xff",          # extension longer than packet
    bytes([0xA0]) + b"\x00" * 11 + b"\x00",                       # padding count 0
    b"\x80" + b"\x00" * 1600,                                     # larger than a datagram
])
def test_malformed_datagrams_raise_a_typed_error(datagram: bytes) -> None:
    with pytest.raises(AudioFormatError):
        parse_rtp(datagram)


@given(st.binary(max_size=200))
def test_arbitrary_bytes_never_raise_anything_else(data: bytes) -> None:
    try:
        pkt = parse_rtp(data)
    except AudioFormatError:
        return
    assert len(pkt.payload) <= len(data)
