"""RTP for ARI externalMedia: the caller's audio out, the bot's audio in.

A real Asterisk bridges the caller into a ``UnicastRTP`` channel and streams the caller's
audio to ``external_host`` in 20 ms RTP packets (RFC 3550), while it plays whatever RTP
arrives on ``UNICASTRTP_LOCAL_ADDRESS:UNICASTRTP_LOCAL_PORT`` back to the caller.
``RtpEndpoint`` does both: it sends PCM (from a WAV file, then silence) in the channel's
format and keeps every packet it receives so tests can assert on the bot's audio.

Formats as Asterisk's ``chan_rtp`` names them: ``ulaw`` (PT 0, 8 kHz), ``alaw`` (PT 8,
8 kHz), ``slin16`` (dynamic PT 118, 16 kHz, 16-bit big-endian samples). Pacing is wall
clock (audio is real time even when the call model runs faster).
"""

from __future__ import annotations

import asyncio
import logging
import random
import struct
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from pbxsim.wire import PbxsimError

log = logging.getLogger("pbxsim.rtp")

PTIME_S = 0.020
"""Packet duration: 20 ms, as Asterisk sends by default."""
RTP_VERSION = 2
MAX_KEEP_PACKETS = 50 * 600
"""Received packets kept per endpoint (10 minutes of 20 ms packets); older ones are dropped."""


class RtpError(PbxsimError):
    """Bad RTP packet, unknown format or unusable WAV file."""


@dataclass(frozen=True)
class Format:
    """An externalMedia format: RTP payload type and sample rate (Hz)."""

    name: str
    payload_type: int
    rate: int

    @property
    def samples_per_packet(self) -> int:
        return int(self.rate * PTIME_S)


FORMATS = {
    "ulaw": Format("ulaw", 0, 8000),
    "alaw": Format("alaw", 8, 8000),
    "slin16": Format("slin16", 118, 16000),
}


def get_format(name: str) -> Format:
    """The format called ``name``; raises ``RtpError`` for anything else."""
    fmt = FORMATS.get(name)
    if fmt is None:
        raise RtpError(message="unsupported externalMedia format", format=name)
    return fmt


# -- G.711 (ITU-T G.711, the Sun reference implementation's segment search) -------------


def _ulaw_byte(sample: int) -> int:
    pcm = sample >> 2
    mask = 0xFF
    if pcm < 0:
        pcm, mask = -pcm, 0x7F
    pcm = min(pcm, 8159) + 33
    seg = next(
        (
            i
            for i, end in enumerate((0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF))
            if pcm <= end
        ),
        8,
    )
    if seg >= 8:
        return 0x7F ^ mask
    return ((seg << 4) | ((pcm >> (seg + 1)) & 0x0F)) ^ mask


def _alaw_byte(sample: int) -> int:
    pcm = sample >> 3
    mask = 0xD5
    if pcm < 0:
        pcm, mask = -pcm - 1, 0x55
    seg = next(
        (
            i
            for i, end in enumerate((0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF))
            if pcm <= end
        ),
        8,
    )
    if seg >= 8:
        return 0x7F ^ mask
    low = (pcm >> 1) & 0x0F if seg < 2 else (pcm >> seg) & 0x0F
    return ((seg << 4) | low) ^ mask


def _ulaw_linear(byte: int) -> int:
    u = ~byte & 0xFF
    t = (((u & 0x0F) << 3) + 0x84) << ((u & 0x70) >> 4)
    return (0x84 - t) if u & 0x80 else (t - 0x84)


def _alaw_linear(byte: int) -> int:
    a = byte ^ 0x55
    t = (a & 0x0F) << 4
    seg = (a & 0x70) >> 4
    if seg == 0:
        t += 8
    elif seg == 1:
        t += 0x108
    else:
        t = (t + 0x108) << (seg - 1)
    return t if a & 0x80 else -t


def _table(fn: object, size: int, dtype: str) -> npt.NDArray[np.generic]:
    assert callable(fn)
    offset = 32768 if size == 65536 else 0
    return np.array([fn(i - offset) for i in range(size)], dtype=dtype)


_ULAW_ENC = _table(_ulaw_byte, 65536, "u1")
_ALAW_ENC = _table(_alaw_byte, 65536, "u1")
_ULAW_DEC = _table(_ulaw_linear, 256, "<i2")
_ALAW_DEC = _table(_alaw_linear, 256, "<i2")


def _samples(pcm: bytes) -> npt.NDArray[np.int32]:
    return np.frombuffer(pcm, dtype="<i2").astype(np.int32) + 32768


def ulaw_encode(pcm: bytes) -> bytes:
    """16-bit little-endian signed PCM → G.711 µ-law, one byte per sample."""
    return bytes(_ULAW_ENC[_samples(pcm)].tobytes())


def alaw_encode(pcm: bytes) -> bytes:
    """16-bit little-endian signed PCM → G.711 A-law, one byte per sample."""
    return bytes(_ALAW_ENC[_samples(pcm)].tobytes())


def ulaw_decode(data: bytes) -> bytes:
    """G.711 µ-law → 16-bit little-endian signed PCM."""
    return bytes(_ULAW_DEC[np.frombuffer(data, dtype="u1")].tobytes())


def alaw_decode(data: bytes) -> bytes:
    """G.711 A-law → 16-bit little-endian signed PCM."""
    return bytes(_ALAW_DEC[np.frombuffer(data, dtype="u1")].tobytes())


def encode(fmt: Format, pcm: bytes) -> bytes:
    """Little-endian PCM at ``fmt.rate`` → the RTP payload of ``fmt``."""
    if fmt.name == "ulaw":
        return ulaw_encode(pcm)
    if fmt.name == "alaw":
        return alaw_encode(pcm)
    return bytes(np.frombuffer(pcm, dtype="<i2").astype(">i2").tobytes())


def decode(fmt: Format, payload: bytes) -> bytes:
    """The RTP payload of ``fmt`` → little-endian PCM at ``fmt.rate``."""
    if fmt.name == "ulaw":
        return ulaw_decode(payload)
    if fmt.name == "alaw":
        return alaw_decode(payload)
    usable = len(payload) - len(payload) % 2
    return bytes(np.frombuffer(payload[:usable], dtype=">i2").astype("<i2").tobytes())


# -- WAV ------------------------------------------------------------------------------


def read_wav(path: Path, rate: int) -> bytes:
    """Mono 16-bit little-endian PCM at ``rate`` Hz from a 16-bit PCM WAV file.

    Stereo is averaged to mono; another sample rate is resampled linearly.

    Raises:
        RtpError: the file is missing, not a WAV file, or not 16-bit PCM.
    """
    try:
        with wave.open(str(path), "rb") as wav:
            width, channels, src_rate = wav.getsampwidth(), wav.getnchannels(), wav.getframerate()
            frames = wav.readframes(wav.getnframes())
    except (OSError, EOFError, wave.Error) as exc:
        raise RtpError(message="cannot read WAV file", path=str(path)) from exc
    if width != 2:
        raise RtpError(message="WAV file is not 16-bit PCM", path=str(path), sample_width=width)
    data = np.frombuffer(frames, dtype="<i2").astype(np.float64)
    if channels > 1:
        data = data[: len(data) - len(data) % channels].reshape(-1, channels).mean(axis=1)
    if src_rate != rate and len(data):
        n_out = round(len(data) * rate / src_rate)
        data = np.interp(np.arange(n_out) * (src_rate / rate), np.arange(len(data)), data)
    return bytes(np.clip(np.round(data), -32768, 32767).astype("<i2").tobytes())


# -- packets --------------------------------------------------------------------------


@dataclass(frozen=True)
class RtpPacket:
    """One RTP packet (no CSRC list, no extension: what chan_rtp sends)."""

    payload_type: int
    sequence: int
    timestamp: int
    ssrc: int
    payload: bytes
    marker: bool = False
    version: int = RTP_VERSION

    def encode(self) -> bytes:
        first = self.version << 6
        second = (0x80 if self.marker else 0) | (self.payload_type & 0x7F)
        head = struct.pack(
            "!BBHII", first, second, self.sequence & 0xFFFF, self.timestamp & 0xFFFFFFFF, self.ssrc
        )
        return head + self.payload

    @classmethod
    def parse(cls, data: bytes) -> RtpPacket:
        """Decode ``data`` (skips CSRCs, header extension and padding).

        Raises:
            RtpError: shorter than a header or not RTP version 2.
        """
        if len(data) < 12:
            raise RtpError(message="RTP packet too short", size=len(data))
        first, second, seq, ts, ssrc = struct.unpack("!BBHII", data[:12])
        if first >> 6 != RTP_VERSION:
            raise RtpError(message="not RTP version 2", first_byte=first)
        start = 12 + 4 * (first & 0x0F)
        if first & 0x10 and len(data) >= start + 4:
            start += 4 + 4 * struct.unpack("!H", data[start + 2 : start + 4])[0]
        end = len(data) - (data[-1] if first & 0x20 and data else 0)
        return cls(second & 0x7F, seq, ts, ssrc, data[start:end], bool(second & 0x80), first >> 6)


class _Receiver(asyncio.DatagramProtocol):
    def __init__(self, owner: RtpEndpoint) -> None:
        self.owner = owner

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        self.owner.on_datagram(data)


class RtpEndpoint:
    """The UnicastRTP side of one externalMedia channel.

    ``open()`` binds the local UDP port (the ``UNICASTRTP_LOCAL_PORT`` channel variable);
    ``start()`` streams ``audio`` (PCM at the format's rate; silence after it ends) to
    ``remote`` every 20 ms until ``stop()``/``aclose()``. Packets from anyone are kept in
    ``received`` (at most ``MAX_KEEP_PACKETS``).
    """

    def __init__(
        self,
        fmt: Format,
        remote: tuple[str, int],
        audio: bytes = b"",
        rng: random.Random | None = None,
    ) -> None:
        rnd = rng or random.Random()
        self.format = fmt
        self.remote = remote
        self.audio = audio
        self.audio_from = 0
        """The packet number ``audio`` starts at (``say``: audio that starts later)."""
        self.ssrc = rnd.getrandbits(32)
        self.first_sequence = rnd.getrandbits(16)
        self.first_timestamp = rnd.getrandbits(32)
        self.sent = 0
        self.received: list[RtpPacket] = []
        self.bad_packets = 0
        self._transport: asyncio.DatagramTransport | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def local_port(self) -> int:
        if self._transport is None:
            raise RtpError(message="RTP endpoint is not open")
        return int(self._transport.get_extra_info("sockname")[1])

    async def open(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Bind ``host:port`` (0: any free port) and return the port.

        Raises:
            RtpError: the port cannot be bound.
        """
        loop = asyncio.get_running_loop()
        try:
            transport, _ = await loop.create_datagram_endpoint(
                lambda: _Receiver(self), local_addr=(host, port)
            )
        except OSError as exc:
            raise RtpError(message="cannot bind RTP port", host=host, port=port) from exc
        self._transport = transport
        return self.local_port

    def on_datagram(self, data: bytes) -> None:
        try:
            packet = RtpPacket.parse(data)
        except RtpError:
            self.bad_packets += 1
            return
        self.received.append(packet)
        if len(self.received) > MAX_KEEP_PACKETS:
            del self.received[: len(self.received) - MAX_KEEP_PACKETS]

    def received_pcm(self) -> bytes:
        """The bot's audio received so far, decoded to little-endian PCM, in arrival order."""
        return b"".join(decode(self.format, p.payload) for p in self.received)

    def packet(self, n: int) -> RtpPacket:
        """The ``n``-th packet this endpoint sends (0-based): audio, then silence."""
        spp = self.format.samples_per_packet
        at = n - self.audio_from
        chunk = self.audio[at * spp * 2 : (at + 1) * spp * 2] if at >= 0 else b""
        chunk += bytes(spp * 2 - len(chunk))
        return RtpPacket(
            self.format.payload_type,
            (self.first_sequence + n) & 0xFFFF,
            (self.first_timestamp + n * spp) & 0xFFFFFFFF,
            self.ssrc,
            encode(self.format, chunk),
            marker=n == 0,
        )

    def say(self, pcm: bytes) -> None:
        """Send ``pcm`` from the next packet on (silence before it and after it)."""
        self.audio, self.audio_from = pcm, self.sent

    @property
    def running(self) -> bool:
        """True while the sender streams."""
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        """Start streaming (idempotent). Needs ``open()`` first."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._send_loop(), name="rtp-send")

    async def _send_loop(self) -> None:
        loop = asyncio.get_running_loop()
        t0, first = loop.time(), self.sent
        while self._transport is not None and not self._transport.is_closing():
            self._transport.sendto(self.packet(self.sent).encode(), self.remote)
            self.sent += 1
            await asyncio.sleep(max(0.0, t0 + (self.sent - first) * PTIME_S - loop.time()))

    async def stop(self) -> None:
        """Stop streaming; keep the port open (the bot may still send)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.wait([task])
            if not task.cancelled() and task.exception() is not None:
                log.error("RTP sender to %s failed", self.remote, exc_info=task.exception())

    async def aclose(self) -> None:
        """Stop streaming and close the port."""
        await self.stop()
        if self._transport is not None:
            self._transport.close()
