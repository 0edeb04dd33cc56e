"""Queue state and member selection (ringall / rrmemory / leastrecent / fewestcalls / random).

Pure bookkeeping: which members may ring for which caller, statistics for QueueStatus and
the ``QUEUE*`` channel variables. The events of a caller's journey are in ``queue_call``.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field

from pbxsim.agents import Agent
from pbxsim.model import Channel
from pbxsim.wire import clean

STRATEGIES = ("ringall", "rrmemory", "leastrecent", "fewestcalls", "random")
EXIT_EXTENSIONS = {"callbacks-vhold": frozenset({"1"})}
"""Queue exit contexts pbxsim's dialplan has, with their single-digit extensions."""


@dataclass(eq=False)
class Member:
    """An agent's membership in one queue."""

    agent: Agent
    penalty: int = 0
    membership: str = "static"
    paused: bool = False
    paused_reason: str = ""
    last_pause: int = 0
    calls_taken: int = 0
    last_call: int = 0
    in_call: bool = False
    ringinuse: bool = False
    """The queue's ``ringinuse`` (members inherit it, as in queues.conf)."""

    def block(self, queue: str) -> str:
        """QueueMemberStatus/Pause/Added/Removed field block (Asterisk 22 order)."""
        a = self.agent
        return (
            f"Queue: {queue}\r\nMemberName: {clean(a.name)}\r\nInterface: {a.interface}\r\n"
            f"StateInterface: {a.interface}\r\nMembership: {self.membership}\r\n"
            f"Penalty: {self.penalty}\r\nCallsTaken: {self.calls_taken}\r\n"
            f"LastCall: {self.last_call}\r\nLastPause: {self.last_pause}\r\n"
            f"LoginTime: {a.login_time}\r\nInCall: {int(self.in_call)}\r\n"
            f"Status: {a.device_status()}\r\nPaused: {int(self.paused)}\r\n"
            f"PausedReason: {clean(self.paused_reason)}\r\nRinginuse: {int(self.ringinuse)}\r\n"
            "Wrapuptime: 0\r\n"
        )

    def ready(self) -> bool:
        return not self.paused and self.agent.available()


@dataclass(eq=False)
class Entry:
    """A caller waiting in a queue."""

    channel: Channel
    joined: float
    original_position: int
    preferred: str = ""
    """Interface (``PJSIP/op101``) to try alone first (ROUTE_AGENT / sticky routing)."""
    ringing: bool = False
    prio: int = 0
    """Queue priority (ROUTE_PRIORITY / QUEUE_PRIO): higher waits ahead of lower."""


@dataclass(eq=False)
class Queue:
    """One app_queue queue; times in scenario seconds."""

    name: str
    strategy: str = "ringall"
    timeout: float = 15.0
    retry: float = 2.0
    wrapuptime: float = 0.0
    ringinuse: bool = False
    context: str = ""
    """queues.conf ``context``: a digit the waiting caller presses that is an extension there
    makes the caller leave the queue for it (``pbxsim.vhold_plan``)."""
    members: list[Member] = field(default_factory=list)
    entries: list[Entry] = field(default_factory=list)
    completed: int = 0
    abandoned: int = 0
    answered: int = 0
    holdtime: int = 0
    talktime: int = 0
    rr_next: int = 0
    rng: random.Random = field(default_factory=random.Random)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    def insert(self, entry: Entry, position: int = 0) -> int:
        """Add a caller like app_queue's ``join_queue``: before the first caller of a lower
        priority, else at ``position`` (``Queue()``'s 9th argument, 1-based; 0: none) unless a
        caller of a higher priority holds that place, else at the end. Returns its position."""
        at = len(self.entries)
        for i, cur in enumerate(self.entries):
            if entry.prio > cur.prio or (entry.prio >= cur.prio and 0 < position <= i + 1):
                at = i
                break
        self.entries.insert(at, entry)
        return at + 1

    def position(self, entry: Entry) -> int:
        return self.entries.index(entry) + 1

    def notify(self) -> None:
        """Wake every caller waiting for a member to become free."""
        self._changed.set()
        self._changed = asyncio.Event()

    @property
    def changed(self) -> asyncio.Event:
        return self._changed

    def member(self, interface: str) -> Member | None:
        return next((m for m in self.members if m.agent.interface == interface), None)

    def is_turn(self, entry: Entry) -> bool:
        """Asterisk's is_our_turn: position within the number of ready members."""
        waiting = [e for e in self.entries if not e.ringing]
        if entry not in waiting:
            return False
        ahead = waiting.index(entry)
        for m in self.members:  # stop counting as soon as enough members are ready
            if m.ready():
                ahead -= 1
                if ahead < 0:
                    return True
        return False

    def pick(self, entry: Entry) -> list[Member]:
        """Members to ring now for ``entry`` (empty if none is ready)."""
        ready = [m for m in self.members if m.ready()]
        if entry.preferred:
            pref = [m for m in ready if m.agent.interface == entry.preferred]
            if pref:
                return pref
        if not ready:
            return []
        best = min(m.penalty for m in ready)
        ready = [m for m in ready if m.penalty == best]
        if self.strategy == "ringall":
            return ready
        if self.strategy == "rrmemory":
            order = self.members[self.rr_next :] + self.members[: self.rr_next]
            chosen = next(m for m in order if m in ready)
            self.rr_next = (self.members.index(chosen) + 1) % len(self.members)
            return [chosen]
        if self.strategy == "leastrecent":
            return [min(ready, key=lambda m: m.last_call)]  # ties: first in member order
        if self.strategy == "fewestcalls":
            return [min(ready, key=lambda m: m.calls_taken)]
        return [self.rng.choice(ready)]

    def record_answer(self, hold: float) -> None:
        """Running mean of the hold time of answered calls (QUEUEHOLDTIME, Holdtime)."""
        self.answered += 1
        self.holdtime = int((self.holdtime * (self.answered - 1) + hold) / self.answered)

    def record_talk(self, talk: float) -> None:
        n = max(self.completed, 1)
        self.talktime = int((self.talktime * (n - 1) + talk) / n)

    def queue_vars(self) -> list[tuple[str, str]]:
        """The QUEUE* variables app_queue sets (setqueuevar=yes)."""
        return [
            ("QUEUENAME", self.name),
            ("QUEUEMAX", "0"),
            ("QUEUESTRATEGY", self.strategy),
            ("QUEUECALLS", str(len(self.entries))),
            ("QUEUEHOLDTIME", str(self.holdtime)),
            ("QUEUETALKTIME", str(self.talktime)),
            ("QUEUECOMPLETED", str(self.completed)),
            ("QUEUEABANDONED", str(self.abandoned)),
            ("QUEUESRVLEVEL", "0"),
            ("QUEUESRVLEVELPERF", "0.0"),
        ]

    def longest_hold(self, now: float) -> int:
        return int(max((now - e.joined for e in self.entries), default=0))

    def now_epoch(self) -> int:
        return int(time.time())
