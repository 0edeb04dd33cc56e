"""The receiving end of ARI externalMedia: one UDP port per call, RTP in, frames out.

Asterisk's ``UnicastRTP`` channel sends the caller's audio to ``external_host`` in 20 ms RTP
packets (RFC 3550). ``RtpReceiver`` binds a port from the configured range, parses each datagram
(version 2, CSRCs, header extension and padding honoured), keeps only the first source it hears
(address and SSRC: a stray sender on the port cannot inject audio) and the expected payload
type, and puts ``(sequence, payload)`` pairs through a ``recognition.jitter.JitterBuffer``
(reordering, loss concealment). Released payloads go to ``on_frame`` — synchronously, on the
event loop, cheap.

Payload types: ``ulaw`` 0, ``alaw`` 8, ``slin16`` dynamic (Asterisk uses 118 by default; any
dynamic type 96–127 is accepted for it).
"""

from __future__ import annotations

import asyncio
import logging
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ivr.errors import NoRtpPort
from recognition.jitter import Frame, JitterBuffer, JitterStats

log = logging.getLogger(__name__)

PAYLOAD_TYPES = {"ulaw": 0, "alaw": 8}
RATES = {"ulaw": 8000, "alaw": 8000, "slin16": 16000}
SILENCE = {"ulaw": b"\xff" * 160, "alaw": b"\xd5" * 160, "slin16": b"\x00" * 640}
"""20 ms of digital silence per codec (the jitter buffer's concealment fill)."""
MAX_DATAGRAM = 2048
_HEADER = struct.Struct("!BBHII")


@dataclass(frozen=True, slots=True)
class RtpPacket:
    """A parsed RTP packet (RFC 3550 §5.1)."""

    payload_type: int
    seq: int
    timestamp: int
    ssrc: int
    payload: bytes
    marker: bool = False


def parse_rtp(data: bytes) -> RtpPacket | None:
    """Parse one datagram; ``None`` for anything that is not a well-formed RTP v2 packet."""
    if len(data) < 12 or len(data) > MAX_DATAGRAM:
        return None
    b0, b1, seq, ts, ssrc = _HEADER.unpack_from(data)
    if b0 >> 6 != 2:
        return None
    offset = 12 + 4 * (b0 & 0x0F)
    if b0 & 0x10:  # header extension: 16-bit profile, 16-bit length in 32-bit words
        if len(data) < offset + 4:
            return None
        offset += 4 + 4 * struct.unpack_from("!H", data, offset + 2)[0]
    end = len(data)
    if b0 & 0x20:  # padding: the last byte counts the padding bytes
        end -= data[-1]
    if offset > end:
        return None
    return RtpPacket(b1 & 0x7F, seq, ts, ssrc, data[offset:end], bool(b1 & 0x80))


def build_rtp(pt: int, seq: int, ts: int, ssrc: int, payload: bytes) -> bytes:
    """An RTP v2 packet without CSRCs or extension (tests, benchmarks)."""
    return _HEADER.pack(0x80, pt & 0x7F, seq & 0xFFFF, ts & 0xFFFFFFFF, ssrc) + payload


@dataclass(slots=True)
class RtpStats:
    """Per-call counters: datagrams received, rejected (not RTP / other source / other
    payload type), frames released by the jitter buffer."""

    datagrams: int = 0
    rejected: int = 0
    frames: int = 0


class RtpReceiver(asyncio.DatagramProtocol):
    """One call's RTP port. ``await open(host, ports)`` binds the first free port of ``ports``
    (raises ``NoRtpPort``); ``close()`` releases it. ``on_frame(frame)`` gets each 20 ms frame
    in order (concealed ones flagged)."""

    def __init__(self, codec: str, on_frame: Callable[[Frame], None], *, depth: int = 3) -> None:
        self.codec = codec
        self.rate = RATES[codec]
        self._on_frame = on_frame
        self._jitter = JitterBuffer(silence=SILENCE[codec], depth=depth)
        self._ssrc: int | None = None
        self._peer: tuple[str | object, ...] | None = None
        self._transport: asyncio.DatagramTransport | None = None
        self.port = 0
        self.stats = RtpStats()

    @property
    def jitter(self) -> JitterStats:
        """The jitter buffer's counters (concealed = lost frames filled in, late, duplicate)."""
        return self._jitter.stats

    def _accepts(self, pkt: RtpPacket) -> bool:
        if self.codec == "slin16":
            return 96 <= pkt.payload_type <= 127
        return pkt.payload_type == PAYLOAD_TYPES[self.codec]

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        self.stats.datagrams += 1
        pkt = parse_rtp(data)
        if (pkt is None or not self._accepts(pkt) or self._ssrc not in (None, pkt.ssrc)
                or self._peer not in (None, addr)):  # fmt: skip
            self.stats.rejected += 1
            return
        self._ssrc, self._peer = pkt.ssrc, addr
        for frame in self._jitter.push(pkt.seq, pkt.payload):
            self.stats.frames += 1
            self._on_frame(frame)

    async def open(self, host: str, ports: Sequence[int]) -> int:
        """Bind the first free UDP port of ``ports`` on ``host``; returns it."""
        loop = asyncio.get_running_loop()
        for port in ports:
            try:
                transport, _ = await loop.create_datagram_endpoint(
                    lambda: self, local_addr=(host, port))
            except OSError:
                continue
            self._transport = transport
            self.port = port
            return port
        span = f"{min(ports, default=0)}-{max(ports, default=0)}"
        raise NoRtpPort(message=f"no free RTP port in {span}", range=span)

    def close(self) -> None:
        """Release the port (idempotent)."""
        if self._transport is not None:
            self._transport.close()
            self._transport = None


class PortPool:
    """Hands out ports of ``first..last`` round-robin, so a port just released is not reused at
    once (late packets of the previous call would land in the next one)."""

    def __init__(self, first: int, last: int) -> None:
        self.first, self.last = first, last
        self._next = first

    def candidates(self) -> list[int]:
        """Every port of the range, starting after the last one handed out (wrapping)."""
        start = self._next
        self._next = start + 1 if start < self.last else self.first
        return list(range(start, self.last + 1)) + list(range(self.first, start))
