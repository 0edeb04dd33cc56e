"""Virtual hold that keeps the caller's true place (pure; no I/O, no clock).

A caller waiting in a queue who accepts "hang up, we will call you back" becomes a *virtual*
entry that keeps its join order (``seq``). It advances exactly like the live caller would have:
each live or virtual entry ahead of it that is answered, abandons, or is itself called back
moves it up. It is *due* when nothing that joined before it is still waiting: that is the
moment its live self would have reached the head of the queue. Callers who joined later stay
behind it (it does not fall back), and it is not due before callers who joined earlier were
served (it does not jump ahead).

The dialplan side (``callbacks/README.md``): at accept time callserver queues a placeholder
channel at the entry's ``position`` (``vhold_slot.py``), so Asterisk keeps the place; a due
virtual entry (only when no placeholder could be placed) becomes a top-priority callback job.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Kind = Literal["live", "virtual"]


@dataclass
class Entry:
    id: str
    seq: int
    kind: Kind = "live"
    phone: str = ""


@dataclass
class VirtualQueue:
    """One queue's waiting entries in join order."""

    name: str
    entries: dict[str, Entry] = field(default_factory=dict)
    _seq: int = 0

    def join(self, entry_id: str, *, seq: int | None = None, position: int | None = None
             ) -> Entry:  # fmt: skip
        """A live caller joined (``seq``: the model's join order; default: after everyone;
        ``position``: app_queue put it at this 1-based place, the ones from there move back)."""
        if entry_id in self.entries:
            return self.entries[entry_id]
        if position is not None and seq is None and position <= len(self.entries):
            order = sorted(self.entries.values(), key=lambda e: e.seq)
            entry = Entry(entry_id, 0)
            order.insert(max(position - 1, 0), entry)
            for n, e in enumerate(order, start=1):
                e.seq = n
            self._seq = len(order)
            self.entries[entry_id] = entry
            return entry
        self._seq = max(self._seq + 1, seq if seq is not None else 0)
        entry = Entry(entry_id, seq if seq is not None else self._seq)
        self.entries[entry_id] = entry
        return entry

    def leave(self, entry_id: str) -> None:
        """A live caller left (answered or abandoned); entries behind it move up. A virtual
        entry is not removed by its caller's channel leaving (that is how it became virtual)."""
        entry = self.entries.get(entry_id)
        if entry is not None and entry.kind == "live":
            del self.entries[entry_id]

    def go_virtual(self, entry_id: str, phone: str) -> bool:
        """The caller accepted a callback: the entry keeps its place. False if unknown."""
        entry = self.entries.get(entry_id)
        if entry is None or entry.kind == "virtual":
            return False
        entry.kind, entry.phone = "virtual", phone
        return True

    def served(self, entry_id: str) -> None:
        """The callback of a virtual entry was placed (or given up): it leaves the queue."""
        self.entries.pop(entry_id, None)

    def position(self, entry_id: str) -> int | None:
        """1-based place among everyone waiting (live and virtual), None if not here."""
        entry = self.entries.get(entry_id)
        if entry is None:
            return None
        return 1 + sum(1 for e in self.entries.values() if e.seq < entry.seq)

    def due(self) -> list[Entry]:
        """Virtual entries whose turn it is: the leading run of virtual entries (in order).
        A live entry ahead of them stops the run."""
        result: list[Entry] = []
        for entry in sorted(self.entries.values(), key=lambda e: e.seq):
            if entry.kind == "live":
                break
            result.append(entry)
        return result

    def live_ahead(self, entry_id: str) -> int:
        entry = self.entries.get(entry_id)
        if entry is None:
            return 0
        return sum(1 for e in self.entries.values() if e.seq < entry.seq and e.kind == "live")


def should_offer(estimated_wait_s: float, threshold_s: float, position: int) -> bool:
    """Offer the callback when the caller's estimated wait exceeds the threshold (and the caller
    is not already next)."""
    return position > 1 and estimated_wait_s > threshold_s


def estimated_wait(position: int, mean_handle_s: float, free_agents: int, agents: int) -> float:
    """A simple Erlang-free estimate: callers ahead × mean handle time / serving operators."""
    if position <= free_agents:
        return 0.0
    return (position - free_agents) * mean_handle_s / max(agents, 1)
