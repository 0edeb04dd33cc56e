"""Parts the bot session stands on: the per-utterance recogniser stream (decoders held only
while the caller speaks, a failed utterance asked again, keypad-only after three), the [ivr]
config validation and the prompt set built with espeak-ng and sox."""

from __future__ import annotations

import wave
from dataclasses import replace
from pathlib import Path

import pytest

from callserver.errors import ConfigError
from ivr.asr import MAX_FAILURES, SharedRecognizer, UtteranceStream
from ivr.config import IvrConfig, validate_ivr
from ivr.prompt_sounds import build, prompt_path
from ivr.prompts import PROMPTS
from recognition.backends import Grammar, Result
from recognition.errors import RecognitionFailed


class Inner:
    def __init__(self, log: list[str], fail: str = "") -> None:
        self.log, self.fail, self.sample_rate = log, fail, 16000

    async def start(self, grammar: Grammar | None) -> None:
        self._maybe("start")

    async def accept(self, pcm: bytes) -> Result | None:
        self._maybe("accept")
        return None

    async def finish(self) -> Result:
        self._maybe("finish")
        return Result("yes", 1.0, True)

    async def aclose(self) -> None:
        self.log.append("close")

    def _maybe(self, op: str) -> None:
        self.log.append(op)
        if op == self.fail:
            raise RecognitionFailed(message="worker timed out", backend="worker")


async def test_utterance_stream_holds_a_decoder_only_while_the_caller_speaks() -> None:
    log: list[str] = []
    counted: list[int] = []

    async def open_stream() -> Inner:
        log.append("open")
        return Inner(log)

    s = UtteranceStream(open_stream, 16000, counted.append)
    for _ in range(2):
        await s.start(None)
        await s.accept(b"\0" * 3200)
        assert (await s.finish()).text == "yes"
    assert log == ["open", "start", "accept", "finish", "close"] * 2
    assert counted == [3200, 3200] and s.opened == 2
    await s.aclose()  # nothing held
    assert log[-1] == "close" and len(log) == 10


async def test_a_failed_utterance_is_empty_and_three_in_a_row_raise() -> None:
    log: list[str] = []

    async def open_stream() -> Inner:
        return Inner(log, fail="finish")

    s = UtteranceStream(open_stream, 16000)
    for _ in range(MAX_FAILURES - 1):
        await s.start(None)
        assert (await s.finish()).text == ""
    await s.start(None)
    with pytest.raises(RecognitionFailed):
        await s.finish()
    assert log.count("close") == MAX_FAILURES  # every failed stream released


async def test_a_good_utterance_resets_the_failure_count() -> None:
    fails = iter(["start", "", "start", "", "start"])

    async def open_stream() -> Inner:
        return Inner([], fail=next(fails))

    s = UtteranceStream(open_stream, 16000)
    for _ in range(5):
        await s.start(None)
        await s.accept(b"\0\0")
        await s.finish()
    assert s.failures == 1


@pytest.mark.parametrize("change,key", [
    ({"backend": "whisper"}, "ivr.backend"), ({"language": "de"}, "ivr.language"),
    ({"codec": "opus"}, "ivr.codec"), ({"prompts": "../etc"}, "ivr.prompts"),
    ({"silence_s": 0.1}, "ivr.silence_s"), ({"rtp_port_min": 80}, "ivr.rtp_port_min"),
    ({"rtp_port_min": 40000, "rtp_port_max": 40010}, "ivr.rtp_port_max"),
    ({"max_calls": 0}, "ivr.max_calls"), ({"workers": 0}, "ivr.workers"),
    ({"recordings_dir": "/x/../etc"}, "ivr.recordings_dir"),
    ({"comment_max_s": 0.5}, "ivr.comment_max_s"),
    ({"comment_pause_ms": 50}, "ivr.comment_pause_ms"),
])  # fmt: skip
def test_config_errors_name_the_key(change: dict[str, object], key: str) -> None:
    validate_ivr(IvrConfig())
    with pytest.raises(ConfigError) as err:
        validate_ivr(replace(IvrConfig(), **change))  # type: ignore[arg-type]
    assert err.value.details["key"] == key


def test_prompt_set_is_built_in_asterisk_layout(tmp_path: Path) -> None:
    made = build(tmp_path, prefix="callserver", langs=("en",))
    assert len(made) == len(PROMPTS)
    greeting = prompt_path(tmp_path, "en", "callserver", "greeting")
    assert greeting == tmp_path / "en" / "callserver" / "greeting.wav"
    with wave.open(str(greeting)) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (8000, 1, 2)
        assert w.getnframes() > 8000  # more than a second of speech
    greeting.write_bytes(b"studio recording")
    assert build(tmp_path, langs=("en",)) == []  # a clinic's own files are kept
    assert greeting.read_bytes() == b"studio recording"


@pytest.mark.parametrize("change,reason", [
    ({"backend": "none"}, "switched off"),
    ({"backend": "pocketsphinx", "language": "ru"}, "English only"),
    ({"backend": "vosk", "model_path": "/nonexistent/model"}, ""),
])  # fmt: skip
async def test_no_recogniser_means_keypad_only_with_a_reason(
    change: dict[str, object], reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    rec = SharedRecognizer(replace(IvrConfig(), **change))  # type: ignore[arg-type]
    await rec.start()
    assert await rec.ensure() is False  # loads with the first bot call: keypad-only then
    assert rec.available is False
    assert reason in rec.reason and rec.reason
    assert await rec.open_stream() is None
    assert "keypad-only menu" in caplog.text
    await rec.aclose()
