"""The listening path (recognition.pipeline): barge-in never waits for the recogniser, failures
surface as typed errors, and the thread-pool path recognises real speech."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from recognition.backends import Grammar, RecognitionConfig, Result, load_backend
from recognition.errors import RecognitionFailed
from recognition.executor import RecognitionPool
from recognition.pipeline import AsyncListener, Listener, Recognised, SpeechStarted
from tests.fixtures.speech.synth import speak


class SlowStream:
    """An ``AsyncStream`` whose recogniser is stuck until released (or fails on finish)."""

    sample_rate = 16000

    def __init__(self, *, fail: bool = False) -> None:
        self.release = asyncio.Event()
        self.fail = fail
        self.calls: list[str] = []

    async def start(self, grammar: Grammar | None) -> None:
        self.calls.append(f"start {grammar.name if grammar else None}")
        await self.release.wait()

    async def accept(self, pcm: bytes) -> Result | None:
        self.calls.append("accept")
        return None

    async def finish(self) -> Result:
        self.calls.append("finish")
        if self.fail:
            raise RecognitionFailed(message="decoder crashed", backend="test")
        return Result("cancel", 0.9, True)

    async def aclose(self) -> None:
        self.calls.append("close")


@pytest.fixture(scope="module")
def yes_audio() -> np.ndarray:
    return speak("yes please", voice="en-us")


async def test_speech_start_is_reported_while_the_recogniser_is_still_busy(
        yes_audio: np.ndarray) -> None:
    stream = SlowStream()
    listener = AsyncListener(stream, in_rate=8000, lang="en")
    listener.listen("confirm")
    listener.start()
    starts: list[SpeechStarted] = []
    for i in range(0, len(yes_audio), 160):
        starts += listener.feed(yes_audio[i:i + 160])
        await asyncio.sleep(0)
    assert len(starts) == 1  # barge-in known although start() has not returned
    assert stream.calls == ["start en/confirm"]
    stream.release.set()
    result = await asyncio.wait_for(listener.next_result(), 5.0)
    assert result.text == "cancel" and result.intent.intent == "unknown"  # not a confirm intent
    assert stream.calls[-1] == "finish" and "accept" in stream.calls
    await listener.aclose()
    assert stream.calls[-1] == "close"


async def test_a_failing_recogniser_surfaces_as_recognition_failed(yes_audio: np.ndarray) -> None:
    stream = SlowStream(fail=True)
    stream.release.set()
    listener = AsyncListener(stream, in_rate=8000, lang="en")
    listener.start()
    for i in range(0, len(yes_audio), 160):
        listener.feed(yes_audio[i:i + 160])
    with pytest.raises(RecognitionFailed):
        await asyncio.wait_for(listener.next_result(), 5.0)
    await listener.aclose()


async def test_thread_pool_path_recognises_a_telephone_utterance(yes_audio: np.ndarray) -> None:
    backend = load_backend(RecognitionConfig(backend="pocketsphinx"))
    pool = RecognitionPool(backend, workers=2)
    try:
        listener = AsyncListener(await pool.open_stream(), in_rate=8000, lang="en")
        listener.listen("confirm")
        listener.start()
        for i in range(0, len(yes_audio), 160):
            listener.feed(yes_audio[i:i + 160])
        result = await asyncio.wait_for(listener.next_result(), 10.0)
        assert result.intent.intent == "yes" and result.reason == "pause"
        await listener.aclose()
    finally:
        await pool.aclose()


def test_blocking_listener_gives_the_same_answer(yes_audio: np.ndarray) -> None:
    backend = load_backend(RecognitionConfig(backend="pocketsphinx"))
    stream = backend.new_stream()
    listener = Listener(stream, in_rate=8000, lang="en")
    listener.listen("confirm")
    events = []
    for i in range(0, len(yes_audio), 160):
        events += listener.feed(yes_audio[i:i + 160])
    stream.close()
    finals = [e for e in events if isinstance(e, Recognised)]
    assert isinstance(events[0], SpeechStarted) and len(finals) == 1
    assert finals[0].intent.intent == "yes"


async def test_an_utterance_arriving_over_a_full_backlog_is_shed_not_delayed(
        yes_audio: np.ndarray) -> None:
    stream = SlowStream()  # stuck in start(): nothing drains
    listener = AsyncListener(stream, in_rate=8000, lang="en", max_backlog_ms=500)
    listener.start()
    for _ in range(2):  # two answers while the recogniser is stuck
        for i in range(0, len(yes_audio), 160):
            listener.feed(yes_audio[i:i + 160])
        await asyncio.sleep(0)
    assert stream.calls == ["start en/main_menu"]  # the second answer was never queued
    stream.release.set()
    first = await asyncio.wait_for(listener.next_result(), 5.0)
    second = await asyncio.wait_for(listener.next_result(), 5.0)
    assert first.reason == "pause" and first.text == "cancel"
    assert second.reason == "overload" and second.text == "" and second.intent.intent == "unknown"
    await listener.aclose()
