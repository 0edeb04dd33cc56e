"""The recogniser the bot's calls share: loaded once at start-up, off the event loop.

pocketsphinx holds the GIL while decoding, so it runs in ``recognition.workers.ProcessPool``
(``workers`` processes, one per core); vosk releases it and runs in a
``recognition.executor.RecognitionPool`` (threads). ``backend = "none"``, a missing model or a
backend that fails to load leaves ``available`` False with one WARNING log line; the bot then
offers the keypad-only menu. Nothing here is ever downloaded.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from ivr.config import IvrConfig
from recognition.backends import BackendName, Grammar, RecognitionConfig, Result, load_backend
from recognition.errors import BackendUnavailable, RecognitionError, RecognitionFailed
from recognition.executor import AsyncStream, RecognitionPool
from recognition.workers import ProcessPool

log = logging.getLogger(__name__)
MAX_FAILURES = 3
"""Utterances failing in a row (worker timed out or gone) before the call goes keypad-only."""


class SharedRecognizer:
    """Start-up: ``await start()``; per call: ``await open_stream()`` (None when unavailable or
    the pool fails; logged); shutdown: ``await aclose()``."""

    def __init__(self, config: IvrConfig) -> None:
        self.language = config.language
        self._config = RecognitionConfig(backend=_backend(config.backend),
                                         model_path=config.model_path,
                                         language=config.language, workers=config.workers)
        self._open: Callable[[], Awaitable[AsyncStream]] | None = None
        self._close: Callable[[], Awaitable[None]] | None = None
        self._rate: int | None = None
        self.dictation = False
        """Whether the loaded backend transcribes free speech (feedback comments)."""
        self._prewarm = config.prewarm
        self._load_at_start = config.load_at_start
        self._lock = asyncio.Lock()
        self._tried = False
        self.audio_bytes = 0
        self.available = False
        self.reason = "not started"

    async def start(self) -> None:
        """Load the backend now with ``load_at_start``, else at the first ``ensure()``."""
        if self._load_at_start:
            await self.ensure()
        else:
            self.reason = "loads with the first bot call"

    async def ensure(self) -> bool:
        """Load the backend once (concurrent callers wait for the one load); True when
        recognition is available. Never raises for a missing model (logged, keypad-only)."""
        async with self._lock:
            if not self._tried:
                self._tried = True
                await self._load()
        return self.available

    async def _load(self) -> None:
        """Load the backend (seconds for a vosk model); never raises for a missing model."""
        if (self._config.backend == "pocketsphinx" and not self._config.model_path
                and self.language != "en"):  # fmt: skip
            self.reason = "the pocketsphinx model in the wheel is English only"
            log.warning("ivr: speech recognition unavailable (%s; [ivr] language = %s: use vosk "
                        "with a model of that language): keypad-only menu", self.reason,
                        self.language)  # fmt: skip
            return
        try:
            if self._config.backend == "pocketsphinx":
                procs = ProcessPool(self._config, workers=self._config.workers,
                                    prewarm=self._prewarm)
                await procs.start()
                self._open, self._close = procs.open_stream, procs.aclose
                self._rate, self.dictation = procs.sample_rate, procs.dictation
            else:
                backend = await asyncio.to_thread(load_backend, self._config)
                threads = RecognitionPool(backend, workers=self._config.workers)
                self._open, self._close = threads.open_stream, threads.aclose
                self._rate, self.dictation = backend.sample_rate, backend.dictation
        except BackendUnavailable as exc:
            self.reason = exc.message[:200]
            log.warning("ivr: speech recognition unavailable (%s: %s): keypad-only menu",
                        self._config.backend, self.reason)
            return
        self.available, self.reason = True, ""
        log.info("ivr: speech recognition %s (%s) ready", self._config.backend, self.language)

    async def open_stream(self) -> AsyncStream | None:
        """A recogniser stream for one call (``UtteranceStream``), or None when recognition is
        unavailable (keypad-only for that call)."""
        if self._open is None or self._rate is None:
            return None
        return UtteranceStream(self._open, self._rate, self._count)

    def _count(self, nbytes: int) -> None:
        self.audio_bytes += nbytes

    @property
    def audio_seconds(self) -> float:
        """Seconds of caller audio handed to the recogniser so far (speech only)."""
        return self.audio_bytes / 2 / (self._rate or 16000)

    async def aclose(self) -> None:
        self.available = False
        if self._close is not None:
            close, self._close, self._open = self._close, None, None
            await close()


def _backend(name: str) -> BackendName:
    if name == "vosk":
        return "vosk"
    return "pocketsphinx" if name == "pocketsphinx" else "none"


class UtteranceStream:
    """An ``AsyncStream`` holding a decoder only while the caller speaks.

    ``start`` (the VAD heard speech) takes a stream from the pool, ``finish`` returns it: the
    decoders in use are the utterances in progress, not the calls (a pocketsphinx decoder is
    ~28 MB and 0.17 s to make; 40 calls speak far less than 40 at a time). Each utterance
    starts from the backend's initial cepstral mean, as a fresh call does. Raises
    ``RecognitionError`` from the pool (the call then continues keypad-only)."""

    def __init__(self, open_stream: Callable[[], Awaitable[AsyncStream]], sample_rate: int,
                 count: Callable[[int], None] = lambda _n: None) -> None:
        self._open, self._count = open_stream, count
        self.sample_rate = sample_rate
        self._inner: AsyncStream | None = None
        self.opened = self.failures = 0

    async def start(self, grammar: Grammar | None) -> None:
        try:
            if self._inner is None:
                self._inner = await self._open()
                self.opened += 1
            await self._inner.start(grammar)
        except RecognitionError:
            await self._failed()

    async def accept(self, pcm: bytes) -> Result | None:
        if self._inner is None:
            return None
        self._count(len(pcm))
        try:
            return await self._inner.accept(pcm)
        except RecognitionError:
            await self._failed()
            return None

    async def finish(self) -> Result:
        """The utterance's result; ``''`` when it failed (the caller is asked again). Raises
        ``RecognitionError`` after ``MAX_FAILURES`` failed utterances in a row."""
        if self._inner is None:
            return Result("", 0.0, True)
        inner, self._inner = self._inner, None
        try:
            result = await inner.finish()
        except RecognitionError:
            self._inner = inner
            await self._failed()
            return Result("", 0.0, True)
        self.failures = 0
        await _quiet_close(inner)
        return result

    async def _failed(self) -> None:
        """Drop this utterance's stream; raise once failures keep coming."""
        self.failures += 1
        inner, self._inner = self._inner, None
        if inner is not None:
            await _quiet_close(inner)
        if self.failures >= MAX_FAILURES:
            raise RecognitionFailed(message=f"{self.failures} utterances failed in a row",
                                    backend="pool")

    async def aclose(self) -> None:
        if self._inner is not None:
            inner, self._inner = self._inner, None
            await inner.aclose()


async def _quiet_close(stream: AsyncStream) -> None:
    try:
        await stream.aclose()
    except RecognitionError as exc:
        log.info("ivr: recogniser stream not released: %s", exc.message[:200])
