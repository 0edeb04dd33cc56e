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
from recognition.backends import BackendName, RecognitionConfig, load_backend
from recognition.errors import BackendUnavailable, RecognitionError
from recognition.executor import AsyncStream, RecognitionPool
from recognition.workers import ProcessPool

log = logging.getLogger(__name__)


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
        self.available = False
        self.reason = "not started"
        self.stream_errors = 0

    async def start(self) -> None:
        """Load the backend (seconds for a vosk model); never raises for a missing model."""
        try:
            if self._config.backend == "pocketsphinx":
                procs = ProcessPool(self._config, workers=self._config.workers)
                await procs.start()
                self._open, self._close = procs.open_stream, procs.aclose
            else:
                backend = await asyncio.to_thread(load_backend, self._config)
                threads = RecognitionPool(backend, workers=self._config.workers)
                self._open, self._close = threads.open_stream, threads.aclose
        except BackendUnavailable as exc:
            self.reason = exc.message[:200]
            log.warning("ivr: speech recognition unavailable (%s: %s): keypad-only menu",
                        self._config.backend, self.reason)
            return
        self.available, self.reason = True, ""
        log.info("ivr: speech recognition %s (%s) ready", self._config.backend, self.language)

    async def open_stream(self) -> AsyncStream | None:
        """A recogniser stream for one call, or None (keypad-only for that call)."""
        if self._open is None:
            return None
        try:
            return await self._open()
        except RecognitionError as exc:
            self.stream_errors += 1
            log.warning("ivr: no recogniser stream (%s): keypad-only for this call",
                        exc.message[:200])
            return None

    async def aclose(self) -> None:
        self.available = False
        if self._close is not None:
            close, self._close, self._open = self._close, None, None
            await close()


def _backend(name: str) -> BackendName:
    if name == "vosk":
        return "vosk"
    return "pocketsphinx" if name == "pocketsphinx" else "none"
