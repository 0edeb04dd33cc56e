"""A feedback comment's recording (``ivr.recording`` through ``ivr.media.CallMedia``): ulaw
frames of espeak-ng speech in → a 16 kHz mono WAV out, from the start of speech to the VAD's
end, ``#`` or the maximum length; transcribed by the stream when it can dictate."""

from __future__ import annotations

import asyncio
import wave
from pathlib import Path

import numpy as np
import pytest

from ivr.media import CallMedia, CommentLimits, Heard, MediaEvent
from ivr.recording import CommentRecorder, safe_name
from recognition.audio import ulaw_encode
from recognition.backends import Grammar, Result
from recognition.jitter import Frame
from recognition.vad import VadEvent, VadSettings
from tests.fixtures.speech.synth import speak

SPEECH = speak("the doctor was very good thank you", pad_s=(0.4, 2.0))


class DictatingStream:
    """An ``AsyncStream`` that records what it was asked and 'hears' ``text``."""

    sample_rate = 16000

    def __init__(self, text: str = "the doctor was very good") -> None:
        self.text, self.grammars, self.audio = text, [], 0
        self.grammars: list[Grammar | None]

    async def start(self, grammar: Grammar | None) -> None:
        self.grammars.append(grammar)

    async def accept(self, pcm: bytes) -> Result | None:
        self.audio += len(pcm)
        return None

    async def finish(self) -> Result:
        return Result(self.text, 0.9, True)

    async def aclose(self) -> None:
        return None


def frames(samples: np.ndarray) -> list[Frame]:
    return [Frame(n, ulaw_encode(samples[i:i + 160]))
            for n, i in enumerate(range(0, len(samples) - 159, 160))]  # fmt: skip


LIMITS = CommentLimits(pause_ms=800, max_s=60.0)


async def comment_of(tmp: Path, samples: np.ndarray, *, dictation: bool = True,
                     limits: CommentLimits = LIMITS, hash_after_s: float | None = None
                     ) -> tuple[Heard, DictatingStream]:  # fmt: skip
    events: list[MediaEvent] = []
    got = asyncio.Event()

    def emit(ev: MediaEvent) -> None:
        events.append(ev)
        if isinstance(ev, Heard):
            got.set()

    stream = DictatingStream()
    media = CallMedia("ulaw", stream, lang="en", vad=VadSettings(), emit=emit,
                      dictation=dictation)  # fmt: skip
    await media.open("127.0.0.1", list(range(47400, 47500)))
    try:
        media.listen("campaign_score")
        media.listen_comment(CommentRecorder(tmp / "dial-7.wav", rate=16000,
                                             max_s=limits.max_s), limits)  # fmt: skip
        for n, frame in enumerate(frames(samples)):
            if hash_after_s is not None and n * 0.02 >= hash_after_s:
                assert media.end_comment()  # "#" while speaking
                break
            media._on_frame(frame)
        async with asyncio.timeout(5):
            await got.wait()
        await asyncio.sleep(0.2)  # nothing else follows the comment
    finally:
        await media.aclose()
    heard = [e for e in events if isinstance(e, Heard)]
    assert len(heard) == 1 and heard[0].comment is not None
    return heard[0], stream


def wav_seconds(path: str) -> float:
    with wave.open(path, "rb") as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, 16000)
        return w.getnframes() / w.getframerate()


async def test_a_spoken_comment_is_recorded_from_speech_start_to_its_end_and_transcribed(
        tmp_path: Path) -> None:  # fmt: skip
    heard, stream = await comment_of(tmp_path, SPEECH)
    taken = heard.comment
    assert taken is not None and taken.recording == str(tmp_path / "dial-7.wav")
    spoken_s = len(SPEECH) / 8000 - 0.4 - 2.0  # the sentence without its padding
    seconds = wav_seconds(taken.recording)
    assert spoken_s <= seconds <= spoken_s + 0.3 + 0.8 + 0.3  # pre-roll, pause, a frame or so
    assert taken.duration_s == pytest.approx(seconds, abs=0.01)
    assert stream.grammars == [None]  # free-form: no grammar
    assert heard.result.text == "the doctor was very good" and taken.status == "transcribed"
    assert heard.result.intent.intent == "unknown"


async def test_hash_ends_the_recording_at_once(tmp_path: Path) -> None:
    heard, _ = await comment_of(tmp_path, SPEECH, hash_after_s=1.2)
    assert heard.comment is not None and heard.result.reason == "key"
    assert 0.5 < wav_seconds(heard.comment.recording) <= 1.2


async def test_the_recording_stops_at_its_maximum_length(tmp_path: Path) -> None:
    heard, _ = await comment_of(tmp_path, SPEECH, limits=CommentLimits(pause_ms=800, max_s=1.0))
    assert heard.comment is not None and heard.result.reason == "max_length"
    assert wav_seconds(heard.comment.recording) == pytest.approx(1.0, abs=0.021)


async def test_without_a_dictation_model_the_comment_is_recorded_not_transcribed(
        tmp_path: Path) -> None:  # fmt: skip
    heard, stream = await comment_of(tmp_path, SPEECH, dictation=False)
    assert heard.comment is not None and heard.result.text == ""
    assert heard.comment.status == "not transcribed: no model"
    assert stream.grammars == [] and stream.audio == 0  # the recogniser never ran
    assert wav_seconds(heard.comment.recording) > 1.5


async def test_an_unwritable_directory_keeps_the_comment_without_its_file(
        tmp_path: Path) -> None:  # fmt: skip
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    rec = CommentRecorder(blocker / "dial-1.wav", rate=16000, max_s=5)
    rec.on_vad(VadEvent("start", 0, b"\x01\x00" * 1600))
    rec.on_vad(VadEvent("end", 100, reason="pause"))
    assert rec.finished and await rec.save() == ""


def test_file_names_come_from_our_ids_only() -> None:
    assert safe_name("dial-42") == "dial-42"
    assert safe_name("../../etc/passwd") == "etc_passwd"
    assert safe_name("\n") == "comment"
