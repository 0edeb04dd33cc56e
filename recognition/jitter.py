"""A small RTP jitter buffer: puts 20 ms frames back in order and conceals lost ones.

Sans-IO: ``push(seq, payload)`` returns the frames now ready, in sequence order. Sequence
numbers are 16-bit and wrap (65535 → 0); they are extended to a running 32-bit+ counter.

Policy (bounded delay): a frame is released as soon as it is the next expected one. When the
next expected frame is missing, the buffer waits until ``depth`` frames beyond the gap have
arrived (``depth × frame`` of added delay, 60 ms at the default 3 × 20 ms), then declares the
missing frame lost and fills it with the previous frame (once; "repeat") or with silence.
The stream starts at the first packet received. A packet older than the next expected one
is late and dropped; a duplicate is dropped. A jump of
more than ``max_jump`` frames either way (a new stream, a clock reset) resets the buffer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Conceal = Literal["silence", "repeat"]


@dataclass(frozen=True, slots=True)
class Frame:
    """One released frame: the extended sequence number, payload bytes, and whether it was made up
    by concealment (``concealed``) rather than received."""

    seq: int
    payload: bytes
    concealed: bool = False


@dataclass(slots=True)
class JitterStats:
    """Counters since the buffer was made: frames received, released, concealed (lost), dropped
    as late or duplicate, and resets."""

    received: int = 0
    released: int = 0
    concealed: int = 0
    late: int = 0
    duplicate: int = 0
    resets: int = 0


class JitterBuffer:
    """Reorder and conceal RTP frames of one stream (see the module doc for the policy).

    ``silence`` is one frame of digital silence in the stream's codec (e.g. 160 × 0xFF for 20 ms
    of µ-law); ``depth`` is in frames (≥ 1); ``conceal`` chooses the fill of a lost frame."""

    def __init__(
        self, *, silence: bytes, depth: int = 3, conceal: Conceal = "repeat", max_jump: int = 500
    ) -> None:
        if depth < 1:
            raise ValueError("depth must be >= 1 frame")
        self.silence, self.depth, self.conceal, self.max_jump = silence, depth, conceal, max_jump
        self.stats = JitterStats()
        self._pending: dict[int, bytes] = {}
        self._next: int | None = None
        self._last_ext = 0
        self._prev: bytes | None = None
        self._prev_concealed = False

    def _extend(self, seq: int) -> int:
        """The 16-bit ``seq`` as the extended number nearest to the last one seen."""
        delta = (seq - self._last_ext) & 0xFFFF
        if delta >= 0x8000:
            delta -= 0x10000
        return self._last_ext + delta

    def push(self, seq: int, payload: bytes) -> list[Frame]:
        """Take one received packet; return the frames now ready, oldest first."""
        seq &= 0xFFFF
        self.stats.received += 1
        if self._next is None:
            self._last_ext, self._next = seq, seq
        ext = self._extend(seq)
        if abs(ext - self._next) > self.max_jump:
            self.stats.resets += 1
            self._pending.clear()
            self._next = ext
        self._last_ext = max(self._last_ext, ext)
        if ext < self._next:
            self.stats.late += 1
            return []
        if ext in self._pending:
            self.stats.duplicate += 1
            return []
        self._pending[ext] = payload
        return self._drain(force=False)

    def flush(self) -> list[Frame]:
        """Release everything held (end of stream), concealing the gaps between held frames."""
        return self._drain(force=True)

    def _drain(self, *, force: bool) -> list[Frame]:
        out: list[Frame] = []
        while self._pending and self._next is not None:
            payload = self._pending.pop(self._next, None)
            if payload is None:
                newest = max(self._pending)
                if not force and newest - self._next < self.depth:
                    break
                out.append(self._fill(self._next))
            else:
                out.append(Frame(self._next, payload))
                self._prev, self._prev_concealed = payload, False
            self._next += 1
        self.stats.released += len(out)
        return out

    def _fill(self, seq: int) -> Frame:
        self.stats.concealed += 1
        if self.conceal == "repeat" and self._prev is not None and not self._prev_concealed:
            self._prev_concealed = True
            return Frame(seq, self._prev, concealed=True)
        return Frame(seq, self.silence, concealed=True)
