"""The bot's RTP endpoint: packet parsing (CSRC, extension, padding, garbage), a stray source
or payload type rejected, and espeak-ng speech sent over real UDP with reordering and loss
reaching the recogniser stream through the jitter buffer and the VAD (µ-law, A-law, slin16)."""

from __future__ import annotations

import asyncio
import random
import socket
import struct

import numpy as np
import pytest

from ivr.media import CallMedia, Heard, MediaEvent
from ivr.rtp import PortPool, build_rtp, parse_rtp
from recognition.audio import alaw_encode, resample, slin_encode, ulaw_encode
from recognition.pipeline import SpeechStarted
from recognition.vad import VadSettings
from tests.fixtures.speech.synth import speak
from tests.unit.test_ivr_session import FakeStream


def test_parse_rtp_headers() -> None:
    pkt = parse_rtp(build_rtp(0, 7, 160, 0xABC, b"\xff" * 160))
    assert pkt is not None and (pkt.payload_type, pkt.seq, pkt.ssrc) == (0, 7, 0xABC)
    assert len(pkt.payload) == 160
    # one CSRC, a header extension of one word, 3 bytes of padding
    head = struct.pack("!BBHII", 0x80 | 0x20 | 0x10 | 1, 8, 9, 0, 1) + b"\0\0\0\1"
    ext = b"\xbe\xde\x00\x01" + b"\x11\x22\x33\x44"
    pkt = parse_rtp(head + ext + b"\xd5" * 160 + b"\0\0\x03")
    assert pkt is not None and pkt.payload == b"\xd5" * 160 and pkt.payload_type == 8
    assert parse_rtp(b"") is None
    assert parse_rtp(b"\x40" + b"\0" * 20) is None  # version 1
    assert parse_rtp(struct.pack("!BBHII", 0x90, 0, 1, 0, 1) + b"\0\0\0\xff") is None
    assert parse_rtp(b"\x80" * 5000) is None


def test_port_pool_round_robin() -> None:
    pool = PortPool(100, 102)
    assert pool.candidates() == [100, 101, 102]
    assert pool.candidates() == [101, 102, 100]
    assert pool.candidates() == [102, 100, 101]
    assert pool.candidates() == [100, 101, 102]


def _payloads(codec: str, samples: np.ndarray) -> list[bytes]:
    if codec == "slin16":
        up = resample(samples, 8000, 16000)
        return [slin_encode(up[i:i + 320]) for i in range(0, len(up) - 319, 320)]
    enc = ulaw_encode if codec == "ulaw" else alaw_encode
    return [enc(samples[i:i + 160]) for i in range(0, len(samples) - 159, 160)]


@pytest.mark.parametrize("codec,pt", [("ulaw", 0), ("alaw", 8), ("slin16", 118)])
async def test_speech_over_udp_with_reordering_and_loss_reaches_the_recogniser(
    codec: str, pt: int
) -> None:
    events: list[MediaEvent] = []
    stream = FakeStream("book an appointment")
    rate = 16000 if codec == "slin16" else 8000
    media = CallMedia(codec, stream, lang="en", vad=VadSettings(sample_rate=rate),
                      emit=events.append)  # fmt: skip
    port = await media.open("127.0.0.1", list(range(47000, 47100)))
    media.listen("main_menu")
    speech = speak("i want to book an appointment", pad_s=(0.4, 1.0))
    payloads = _payloads(codec, speech)
    rng = random.Random(5)
    order = list(range(len(payloads)))
    for i in range(0, len(order) - 1, 7):  # swap neighbours: reordering
        order[i], order[i + 1] = order[i + 1], order[i]
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    other = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sent = 3  # the garbage and the two strays
    try:
        sock.sendto(b"not rtp at all", ("127.0.0.1", port))
        for n, i in enumerate(order):
            if rng.random() < 0.03:
                continue  # lost
            sock.sendto(build_rtp(pt, 1000 + i, i * 160, 0x1234, payloads[i]), ("127.0.0.1", port))
            sent += 1
            if n == 5:  # a stray stream from the same address, and the right SSRC from another
                sock.sendto(build_rtp(pt, 5, 0, 0x9999, payloads[0]), ("127.0.0.1", port))
                other.sendto(build_rtp(pt, 1001, 0, 0x1234, payloads[0]), ("127.0.0.1", port))
            if n % 10 == 0:
                await asyncio.sleep(0.005)
        for _ in range(200):
            heard_it = any(isinstance(e, Heard) for e in events)
            if heard_it and media.receiver.stats.datagrams >= sent:
                break
            await asyncio.sleep(0.01)
    finally:
        sock.close()
        other.close()
        stats, jitter = media.receiver.stats, media.receiver.jitter
        await media.aclose()
    assert isinstance(events[0], SpeechStarted)
    heard = [e for e in events if isinstance(e, Heard)]
    assert len(heard) == 1
    assert heard[0].result.intent.intent == "book"
    assert stream.started == 1
    voiced_s = stream.audio / 2 / stream.sample_rate
    assert 1.0 < voiced_s < len(speech) / 8000  # the utterance, not the whole stream
    assert stats.rejected == 3  # garbage, a stray SSRC, a stray address
    lost = len(payloads) - (stats.datagrams - 3)
    assert lost > 0 and jitter.concealed >= 1  # lost frames were filled in
    assert stats.frames >= len(payloads) - 3 - 5  # all but the last few held back (depth)
    assert jitter.late <= 2  # swapped neighbours mostly fit in the buffer's depth
