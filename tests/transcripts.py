"""Read the golden Asterisk transcripts in tests/fixtures/asterisk/ (see SOURCE.md there).

The capture tools marked each direction change with a line ``### HH:MM:SS <<< asterisk -> …``
or ``### … >>> client -> asterisk``; those marker lines never went over the wire.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures" / "asterisk"


@dataclass(frozen=True)
class Segment:
    marker: str
    """The ``### …`` line without the ``### `` prefix."""
    data: bytes

    @property
    def from_asterisk(self) -> bool:
        return "<<<" in self.marker or "asterisk ->" in self.marker


def segments(name: str) -> list[Segment]:
    """The transcript as (marker, bytes) pieces, bytes exactly as on the wire."""
    raw = (FIXTURES / name).read_bytes()
    out: list[Segment] = []
    marker = ""
    buf: list[bytes] = []
    for line in raw.splitlines(keepends=True):
        if line.startswith(b"### "):
            if buf or marker:
                out.append(Segment(marker, b"".join(buf)))
            marker = line[4:].decode().rstrip("\r\n")
            buf = []
        else:
            buf.append(line)
    if buf or marker:
        out.append(Segment(marker, b"".join(buf)))
    return out


def from_asterisk(name: str) -> bytes:
    """Every byte Asterisk sent, concatenated (the stream a client reads)."""
    return b"".join(s.data for s in segments(name) if s.from_asterisk)


def to_asterisk(name: str) -> bytes:
    """Every byte the client sent to Asterisk."""
    return b"".join(s.data for s in segments(name) if not s.from_asterisk and s.data)


def text(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")
