"""A feedback comment's recording: the caller's audio from the start of speech to the end of
the utterance (VAD pause), ``#`` or ``max_s``, written as a mono 16-bit WAV.

``CommentRecorder.on_vad`` is the listener's tap (``recognition.pipeline.AsyncListener.tap``):
it sees the VAD's events with their audio at the recogniser's rate (16 kHz, the pre-roll
included), keeps them in memory (a minute is ~1.9 MB) and stops at the utterance's ``end``, or
when ``max_s`` of audio is in. ``save()`` writes the file in a worker thread (never on the loop).
The file's name comes from our own ids (``safe_name``), never from anything the caller or the
PBX said.
"""

from __future__ import annotations

import asyncio
import logging
import re
import wave
from pathlib import Path

from recognition.vad import VadEvent

log = logging.getLogger(__name__)
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


def safe_name(name: str) -> str:
    """``name`` reduced to letters, digits, ``_`` and ``-`` (at most 80), never empty."""
    return _UNSAFE.sub("_", name)[:80].strip("_") or "comment"


class CommentRecorder:
    """One comment (see the module doc). ``path`` None: transcribe only, keep no file."""

    def __init__(self, path: Path | None, *, rate: int, max_s: float) -> None:
        self.path, self.rate = path, rate
        self._max_bytes = int(max_s * rate) * 2
        self._pcm = bytearray()
        self.started = False
        self.finished = False
        self.reason = ""
        """Why it stopped: ``pause``, ``max_length``, ``key``."""

    @property
    def duration_s(self) -> float:
        return len(self._pcm) / 2 / self.rate

    def on_vad(self, ev: VadEvent) -> None:
        """Take one VAD event: ``start`` begins the recording (one utterance only)."""
        if self.finished or (not self.started and ev.kind != "start"):
            return
        self.started = True
        if ev.audio:
            self._pcm += ev.audio[: self._max_bytes - len(self._pcm)]
            if len(self._pcm) >= self._max_bytes:
                self.stop("max_length")
        if ev.kind == "end":
            self.stop(ev.reason)

    def stop(self, reason: str) -> None:
        """No more audio is taken (``reason`` is kept for the first stop)."""
        if not self.finished:
            self.finished, self.reason = True, reason

    async def save(self) -> str:
        """Write the WAV (in a thread); its path, or ``""`` when there is nothing to write, no
        directory, or the write failed (logged once: the comment is kept without its file)."""
        if self.path is None or not self._pcm:
            return ""
        try:
            await asyncio.to_thread(write_wav, self.path, bytes(self._pcm), self.rate)
        except OSError as exc:
            log.warning("ivr: comment recording %s not written: %s", self.path.name,
                        exc.strerror or type(exc).__name__)
            return ""
        return str(self.path)


def write_wav(path: Path, pcm: bytes, rate: int) -> None:
    """Mono 16-bit WAV at ``rate``; the directory is made if missing (mode 0700: it holds
    patients' voices). Written to a temporary name first, so a reader never sees half a file.
    Raises ``OSError``."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_suffix(".part")
    with wave.open(str(tmp), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(pcm)
    tmp.replace(path)
