"""Recognition off the event loop: a bounded thread pool shared by all call legs.

``RecognitionPool`` owns one ``ThreadPoolExecutor`` (``workers`` threads; the decoders release
the GIL inside their C code, so 2 threads use 2 cores). ``AsyncRecognizer`` wraps one blocking
``Recognizer`` stream: each call is awaited in the pool, and a per-stream lock keeps one stream's
calls in order even if a caller forgets to await the previous one. Nothing here blocks the loop.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol, TypeVar

from recognition.backends import Backend, Grammar, Recognizer, Result

T = TypeVar("T")


class AsyncStream(Protocol):
    """What the event loop holds for one call leg: ``AsyncRecognizer`` (thread pool) or
    ``workers.ProcessStream`` (process pool)."""

    sample_rate: int

    async def start(self, grammar: Grammar | None) -> None:
        """Begin an utterance restricted to ``grammar``."""

    async def accept(self, pcm: bytes) -> Result | None:
        """Feed pcm16 at ``sample_rate``."""

    async def finish(self) -> Result:
        """The utterance's final result."""

    async def aclose(self) -> None:
        """Release the stream."""


class RecognitionPool:
    """The executor recognition runs in (start-up: ``RecognitionPool(backend, workers=2)``;
    shutdown: ``await pool.aclose()``)."""

    def __init__(self, backend: Backend, *, workers: int = 2) -> None:
        self.backend = backend
        self.dictation = backend.dictation
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="asr")

    async def run(self, fn: Callable[..., T], *args: object) -> T:
        """Run blocking ``fn(*args)`` in the pool and await its result."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args))

    async def open_stream(self) -> AsyncRecognizer:
        """A new ``AsyncRecognizer`` (the backend's ``new_stream`` runs in the pool too: a
        pocketsphinx decoder may have to be created, ~0.15 s)."""
        stream = await self.run(self.backend.new_stream)
        return AsyncRecognizer(stream, self)

    async def aclose(self) -> None:
        """Stop the executor after the calls already queued (waits without blocking the loop)."""
        await asyncio.to_thread(self._executor.shutdown, True)


class AsyncRecognizer:
    """Async face of one ``Recognizer`` stream; every method runs in the pool."""

    def __init__(self, stream: Recognizer, pool: RecognitionPool) -> None:
        self.stream, self._pool = stream, pool
        self.sample_rate = stream.sample_rate
        self._lock = asyncio.Lock()

    async def _call(self, fn: Callable[..., T], *args: object) -> T:
        async with self._lock:
            return await self._pool.run(fn, *args)

    async def start(self, grammar: Grammar | None) -> None:
        """Begin an utterance restricted to ``grammar``."""
        await self._call(self.stream.start, grammar)

    async def accept(self, pcm: bytes) -> Result | None:
        """Feed pcm16 at ``sample_rate``; a partial result when it changed."""
        return await self._call(self.stream.accept, pcm)

    async def finish(self) -> Result:
        """The utterance's final result. Raises ``RecognitionFailed``."""
        return await self._call(self.stream.finish)

    async def aclose(self) -> None:
        """Release the stream."""
        await self._call(self.stream.close)
