"""vosk (Kaldi) backend: streaming ``KaldiRecognizer`` restricted to a per-state phrase list.

Grammar: vosk takes a JSON list of phrases; words missing from the model's vocabulary are
dropped by vosk with a warning, so phrases are filtered here first (``supports``) and ``[unk]``
is appended when the model has it (so out-of-grammar speech comes back as ``[unk]`` instead of
being forced onto the nearest phrase). ``[unk]`` is removed from returned text. The JSON is
written with ``ensure_ascii=False``: vosk's parser does not decode ``\\uXXXX`` escapes, so an
escaped Cyrillic or Hangul phrase would silently match nothing.

Confidence: the mean of vosk's per-word ``conf`` (word posterior from the lattice); 0 for an
empty result.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from recognition.backends import Grammar, Result
from recognition.errors import BackendUnavailable, ModelNotFound, RecognitionFailed

UNK = "[unk]"


class VoskBackend:
    """A loaded vosk model (shared by all streams; vosk models are thread-safe)."""

    name = "vosk"
    dictation = True
    """A ``KaldiRecognizer`` without a grammar decodes with the model's own graph."""

    def __init__(self, model: Any, vosk: Any, *, language: str, sample_rate: int = 16000) -> None:
        self._model, self._vosk = model, vosk
        self.language, self.sample_rate = language, sample_rate
        self.has_unk = model.vosk_model_find_word(UNK) >= 0
        self._grammars: dict[Grammar, str] = {}
        self._lock = threading.Lock()

    @classmethod
    def load(cls, path: Path, *, language: str, sample_rate: int = 16000) -> VoskBackend:
        """Load the model directory ``path`` (blocking, ~2 s for a small model).

        Raises ``ModelNotFound`` when ``path`` has no ``am/final.mdl`` and ``conf/``,
        ``BackendUnavailable`` when vosk is missing or rejects the model."""
        if not (path / "am" / "final.mdl").is_file() or not (path / "conf").is_dir():
            raise ModelNotFound(message=f"no vosk model at {str(path)[:200]}", path=str(path),
                                backend="vosk")
        try:
            import vosk
        except ImportError as exc:
            raise BackendUnavailable(message="vosk is not installed", backend="vosk") from exc
        vosk.SetLogLevel(-1)
        try:
            model = vosk.Model(str(path))
        except Exception as exc:  # vosk raises a bare Exception("Failed to create a model")
            raise BackendUnavailable(message="vosk could not load the model", backend="vosk",
                                     path=str(path)) from exc
        return cls(model, vosk, language=language, sample_rate=sample_rate)

    def supports(self, phrase: str) -> bool:
        """Whether every word of ``phrase`` is in the model's vocabulary."""
        return all(self._model.vosk_model_find_word(w) >= 0 for w in phrase.split())

    def grammar_json(self, grammar: Grammar) -> str:
        """The vosk grammar JSON for ``grammar`` (cached): supported phrases, then ``[unk]``.

        Raises ``RecognitionFailed`` when no phrase of the grammar is in the vocabulary."""
        with self._lock:
            cached = self._grammars.get(grammar)
        if cached is not None:
            return cached
        phrases = [p for p in grammar.phrases if self.supports(p)]
        if not phrases:
            raise RecognitionFailed(message=f"no phrase of grammar {grammar.name} is in the "
                                    "vosk vocabulary", backend="vosk", grammar=grammar.name)
        text = json.dumps([*phrases, UNK] if self.has_unk else phrases, ensure_ascii=False)
        with self._lock:
            self._grammars[grammar] = text
        return text

    def new_stream(self) -> VoskStream:
        """A new recogniser stream on this model."""
        return VoskStream(self)

    def make_kaldi(self, grammar: Grammar | None) -> Any:
        """A ``KaldiRecognizer`` for ``grammar`` (``None``: free vocabulary)."""
        if grammar is None:
            rec = self._vosk.KaldiRecognizer(self._model, self.sample_rate)
        else:
            rec = self._vosk.KaldiRecognizer(self._model, self.sample_rate,
                                             self.grammar_json(grammar))
        rec.SetWords(True)
        return rec


def _parse(raw: str, *, final: bool) -> Result:
    data = json.loads(raw)
    words = [w for w in data.get("result", []) if w.get("word") != UNK]
    text = " ".join(t for t in str(data.get("text", data.get("partial", ""))).split() if t != UNK)
    conf = sum(float(w.get("conf", 0.0)) for w in words) / len(words) if words else 0.0
    return Result(text=text, confidence=conf if text else 0.0, final=final)


class VoskStream:
    """One call leg's vosk stream. The ``KaldiRecognizer`` is rebuilt only when the grammar
    changes (a grammar compile costs a few ms); otherwise it is reset between utterances."""

    def __init__(self, backend: VoskBackend) -> None:
        self._backend = backend
        self.sample_rate = backend.sample_rate
        self._rec: Any = None
        self._grammar: Grammar | None = None
        self._done: list[Result] = []
        self._partial = ""

    def start(self, grammar: Grammar | None) -> None:
        """Begin an utterance restricted to ``grammar``."""
        if self._rec is None or grammar != self._grammar:
            self._rec = self._backend.make_kaldi(grammar)
            self._grammar = grammar
        else:
            self._rec.Reset()
        self._done, self._partial = [], ""

    def accept(self, pcm: bytes) -> Result | None:
        """Feed pcm16; a partial result when the hypothesis changed, else ``None``."""
        if self._rec is None:
            raise RecognitionFailed(message="accept() before start()", backend="vosk")
        if self._rec.AcceptWaveform(pcm):  # vosk's own endpoint inside our utterance
            self._done.append(_parse(self._rec.Result(), final=True))
            return None
        partial = _parse(self._rec.PartialResult(), final=False)
        if not partial.text or partial.text == self._partial:
            return None
        self._partial = partial.text
        return partial

    def finish(self) -> Result:
        """End the utterance; the final result joins any segments vosk endpointed itself."""
        if self._rec is None:
            raise RecognitionFailed(message="finish() before start()", backend="vosk")
        parts = [*self._done, _parse(self._rec.FinalResult(), final=True)]
        parts = [p for p in parts if p.text]
        self._done = []
        if not parts:
            return Result(text="", confidence=0.0, final=True)
        conf = min(p.confidence for p in parts)
        return Result(text=" ".join(p.text for p in parts), confidence=conf, final=True)

    def close(self) -> None:
        """Drop the recogniser."""
        self._rec = None
