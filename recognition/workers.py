"""Recognition in worker processes: for decoders that hold the GIL (pocketsphinx does).

A ``ThreadPoolExecutor`` (``recognition.executor``) gives real parallelism only to decoders that
release the GIL (vosk's C API does). pocketsphinx 5 keeps the GIL inside ``process_raw``, so with
threads every call's decoding — and the event loop itself — share one core (measured: 40
real-time calls used 0.75 cores and the loop fell seconds behind). ``ProcessPool`` runs
``workers`` processes (one per core), each loading the backend once; a stream is pinned to one
worker for its life (its decoder state lives there).

Wire: one socketpair per worker; frames are a 4-byte big-endian length + a pickle of
``(req_id, stream_id, op, arg)`` → ``(req_id, ok, value)``. The loop side uses asyncio streams
(never blocks); the worker side is a plain blocking loop. Only our own processes are on the other
end of these sockets.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import multiprocessing
import pickle
import socket
import struct
from typing import Any

from recognition.backends import Grammar, RecognitionConfig, Recognizer, Result, load_backend
from recognition.errors import BackendUnavailable, RecognitionError, RecognitionFailed
from recognition.executor import RecognitionPool

_LEN = struct.Struct(">I")
START_TIMEOUT_S = 60.0
CALL_TIMEOUT_S = 10.0
DICTATION_TIMEOUT_S = 90.0
"""A dictated utterance (up to a minute of comment) is decoded in one ``finish``."""


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise EOFError
        buf += chunk
    return bytes(buf)


def _send(sock: socket.socket, obj: object) -> None:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    sock.sendall(_LEN.pack(len(data)) + data)


def _serve(sock: socket.socket, config: RecognitionConfig, prewarm: int) -> None:
    """Worker process body: load the backend, then answer requests until EOF."""
    try:
        backend = load_backend(config)
        if prewarm and hasattr(backend, "prewarm"):
            backend.prewarm(prewarm)
    except RecognitionError as exc:
        _send(sock, (0, False, (type(exc).__name__, exc.message)))
        return
    _send(sock, (0, True, (backend.sample_rate, backend.dictation)))
    streams: dict[int, Recognizer] = {}
    while True:
        try:
            size = _LEN.unpack(_recv_exact(sock, 4))[0]
            req_id, sid, op, arg = pickle.loads(_recv_exact(sock, size))
        except EOFError:
            return
        try:
            value = _apply(backend, streams, sid, op, arg)
            _send(sock, (req_id, True, value))
        except RecognitionError as exc:
            _send(sock, (req_id, False, (type(exc).__name__, exc.message)))


def _apply(backend: Any, streams: dict[int, Recognizer], sid: int, op: str, arg: Any) -> Any:
    if op == "open":
        streams[sid] = backend.new_stream()
        return None
    stream = streams[sid]
    if op == "start":
        stream.start(arg)
        return None
    if op == "accept":
        return stream.accept(arg)
    if op == "finish":
        return stream.finish()
    streams.pop(sid).close()
    return None


class _Worker:
    """The loop's side of one worker process."""

    def __init__(self, proc: Any, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter) -> None:
        self.proc, self.reader, self.writer = proc, reader, writer
        self.waiting: dict[int, asyncio.Future[Any]] = {}
        self.streams = 0
        self.task: asyncio.Task[None] | None = None

    async def read_replies(self) -> None:
        try:
            while True:
                size = _LEN.unpack(await self.reader.readexactly(4))[0]
                req_id, ok, value = pickle.loads(await self.reader.readexactly(size))
                fut = self.waiting.pop(req_id, None)
                if fut is not None and not fut.done():
                    if ok:
                        fut.set_result(value)
                    else:
                        fut.set_exception(RecognitionFailed(message=str(value[1]),
                                                            backend="worker", kind=value[0]))
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            for fut in self.waiting.values():
                if not fut.done():
                    fut.set_exception(RecognitionFailed(message="recognition worker exited",
                                                        backend="worker"))
            self.waiting.clear()


class ProcessPool:
    """``workers`` recognition processes; ``open_stream()`` pins a stream to the least busy one.

    Start-up: ``await pool.start()`` (each worker loads the model, and ``prewarm`` decoders when
    the backend pools them); raises ``BackendUnavailable`` when a worker cannot load it (the
    dialog then runs keypad-only) or does not report within ``START_TIMEOUT_S``.
    Shutdown: ``await pool.aclose()``."""

    def __init__(self, config: RecognitionConfig, *, workers: int = 2, prewarm: int = 0) -> None:
        self.config, self.n_workers, self.prewarm = config, workers, prewarm
        self.sample_rate = 16000
        self.dictation = False
        """Whether the workers' backend transcribes free speech (``start(None)``)."""
        self._workers: list[_Worker] = []
        self._ids = itertools.count(1)

    async def start(self) -> None:
        """Spawn the workers and wait until each has loaded the model."""
        ctx = multiprocessing.get_context("spawn")
        try:
            for _ in range(self.n_workers):
                self._workers.append(await self._spawn(ctx))
        except BaseException:
            await self.aclose()
            raise

    async def _spawn(self, ctx: Any) -> _Worker:
        mine, theirs = socket.socketpair()
        proc = ctx.Process(target=_serve, args=(theirs, self.config, self.prewarm), daemon=True,
                           name="asr-worker")
        await asyncio.to_thread(proc.start)
        theirs.close()
        reader, writer = await asyncio.open_connection(sock=mine)
        worker = _Worker(proc, reader, writer)
        try:
            async with asyncio.timeout(START_TIMEOUT_S):
                size = _LEN.unpack(await reader.readexactly(4))[0]
                _, ok, value = pickle.loads(await reader.readexactly(size))
        except (TimeoutError, asyncio.IncompleteReadError) as exc:
            self._workers.append(worker)
            raise BackendUnavailable(message="recognition worker did not start",
                                     backend=self.config.backend) from exc
        if not ok:
            self._workers.append(worker)
            raise BackendUnavailable(message=str(value[1]), backend=self.config.backend)
        self.sample_rate, self.dictation = int(value[0]), bool(value[1])
        worker.task = asyncio.create_task(worker.read_replies(), name="asr-worker-replies")
        return worker

    async def call(self, worker: _Worker, sid: int, op: str, arg: object, *,
                   timeout: float = CALL_TIMEOUT_S) -> Any:  # noqa: ASYNC109
        """One request to ``worker``; raises ``RecognitionFailed`` on a worker error, exit or
        no answer within ``timeout`` seconds."""
        req_id = next(self._ids)
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        worker.waiting[req_id] = fut
        data = pickle.dumps((req_id, sid, op, arg), protocol=pickle.HIGHEST_PROTOCOL)
        worker.writer.write(_LEN.pack(len(data)) + data)
        try:
            async with asyncio.timeout(timeout):
                await worker.writer.drain()
                return await fut
        except TimeoutError as exc:
            raise RecognitionFailed(message="recognition worker timed out",
                                    backend="worker") from exc
        finally:
            worker.waiting.pop(req_id, None)

    async def open_stream(self) -> ProcessStream:
        """A stream on the worker with the fewest open streams."""
        if not self._workers:
            raise BackendUnavailable(message="recognition pool not started", backend="worker")
        worker = min(self._workers, key=lambda w: w.streams)
        sid = next(self._ids)
        await self.call(worker, sid, "open", None)
        worker.streams += 1
        return ProcessStream(self, worker, sid)

    async def aclose(self) -> None:
        """Close the sockets (workers exit on EOF) and wait for the processes."""
        for worker in self._workers:
            worker.writer.close()
            with contextlib.suppress(ConnectionError):
                await worker.writer.wait_closed()
            if worker.task is not None:
                worker.task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await worker.task
            await asyncio.to_thread(worker.proc.join, 5.0)
            if worker.proc.is_alive():
                worker.proc.kill()
        self._workers.clear()


class ProcessStream:
    """One call leg's stream inside a worker process (same face as ``AsyncRecognizer``)."""

    def __init__(self, pool: ProcessPool, worker: _Worker, sid: int) -> None:
        self._pool, self._worker, self._sid = pool, worker, sid
        self.sample_rate = pool.sample_rate
        self._dictating = False

    async def start(self, grammar: Grammar | None) -> None:
        """Begin an utterance restricted to ``grammar`` (``None``: dictation)."""
        self._dictating = grammar is None
        await self._pool.call(self._worker, self._sid, "start", grammar)

    async def accept(self, pcm: bytes) -> Result | None:
        """Feed pcm16 at ``sample_rate``; a partial result when it changed."""
        result: Result | None = await self._pool.call(self._worker, self._sid, "accept", pcm)
        return result

    async def finish(self) -> Result:
        """The utterance's final result. Raises ``RecognitionFailed``."""
        timeout = DICTATION_TIMEOUT_S if self._dictating else CALL_TIMEOUT_S
        result: Result = await self._pool.call(self._worker, self._sid, "finish", None,
                                               timeout=timeout)
        return result

    async def aclose(self) -> None:
        """Release the stream in its worker."""
        self._worker.streams -= 1
        await self._pool.call(self._worker, self._sid, "close", None)


async def start_pool(config: RecognitionConfig, *, calls: int = 40
                     ) -> RecognitionPool | ProcessPool:
    """The recognition pool a server starts once, chosen by backend: worker processes for
    pocketsphinx (it holds the GIL; ``calls`` decoders are made ahead, spread over the
    workers), a thread pool for vosk (the model is loaded once, off the loop).

    Raises ``BackendUnavailable`` / ``ModelNotFound`` (log one line, run the bot keypad-only).
    Both pools have ``open_stream()`` → an ``AsyncStream`` and ``aclose()``."""
    if config.backend == "pocketsphinx":
        pool = ProcessPool(config, workers=config.workers,
                           prewarm=-(-calls // max(1, config.workers)))
        await pool.start()
        return pool
    backend = await asyncio.to_thread(load_backend, config)
    return RecognitionPool(backend, workers=config.workers)
