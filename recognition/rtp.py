"""RTP packet parsing (RFC 3550 §5.1), sans-IO: one UDP datagram → ``RtpPacket``.

What arrives on the externalMedia socket is untrusted: anything that is not a well-formed RTP
version-2 packet raises ``AudioFormatError`` (the caller counts and drops it; never crashes).
CSRC lists, the header extension and padding are skipped.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from recognition.errors import AudioFormatError

_HEADER = struct.Struct(">BBHII")
MAX_DATAGRAM = 1500


@dataclass(frozen=True, slots=True)
class RtpPacket:
    """One RTP packet: payload type, marker bit, 16-bit sequence, timestamp, SSRC, payload."""

    payload_type: int
    marker: bool
    seq: int
    timestamp: int
    ssrc: int
    payload: bytes


def _bad(why: str) -> AudioFormatError:
    return AudioFormatError(message=f"not an RTP packet: {why}", field="rtp")


def parse_rtp(datagram: bytes) -> RtpPacket:
    """Parse one datagram. Raises ``AudioFormatError`` for anything but valid RTP v2."""
    if not _HEADER.size <= len(datagram) <= MAX_DATAGRAM:
        raise _bad("size")
    b0, b1, seq, ts, ssrc = _HEADER.unpack_from(datagram)
    if b0 >> 6 != 2:
        raise _bad("version")
    offset = _HEADER.size + 4 * (b0 & 0x0F)
    if b0 & 0x10:  # header extension: 16-bit profile, 16-bit length in 32-bit words
        if len(datagram) < offset + 4:
            raise _bad("extension")
        offset += 4 + 4 * struct.unpack_from(">H", datagram, offset + 2)[0]
    end = len(datagram)
    if b0 & 0x20:  # padding: the last byte counts the padding bytes
        end -= datagram[-1]
    if offset > end or (datagram[-1] == 0 and b0 & 0x20):
        raise _bad("length")
    return RtpPacket(b1 & 0x7F, bool(b1 & 0x80), seq, ts, ssrc, datagram[offset:end])


def build_rtp(payload: bytes, *, seq: int, timestamp: int, ssrc: int, payload_type: int = 0,
              marker: bool = False) -> bytes:
    """A minimal RTP v2 datagram (tests, simulators)."""
    return _HEADER.pack(0x80, (0x80 if marker else 0) | payload_type, seq & 0xFFFF,
                        timestamp & 0xFFFFFFFF, ssrc & 0xFFFFFFFF) + payload
