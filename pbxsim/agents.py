"""Operators as softphones: registration, ring time, answer probability, talk and wrap-up.

All durations are scenario seconds. Each agent draws from its own ``random.Random`` seeded
from the scenario seed and its endpoint, so one agent's behaviour does not depend on the
order in which other calls happen to consume random numbers.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field


@dataclass(frozen=True)
class AgentProfile:
    """How an operator behaves when a call rings (scenario seconds)."""

    ring_s: tuple[float, float] = (2.0, 6.0)
    """Uniform range of ring time before the operator picks up."""
    answer_prob: float = 0.95
    """Probability of picking up at all during one ring attempt."""
    talk_s: tuple[float, float] = (60.0, 240.0)
    """Uniform range of conversation length when the operator ends the call."""
    wrapup_s: float = 10.0
    """After-call work during which the operator takes no queue calls."""
    agent_hangs_up: float = 0.3
    """Probability that the operator (not the caller) ends the conversation."""
    break_every_s: float = 0.0
    """Mean time between breaks (exponential); 0 = never pauses by itself."""
    break_s: tuple[float, float] = (300.0, 900.0)
    """Uniform range of one break (the member is paused with reason ``break``)."""


@dataclass(eq=False)
class Agent:
    """One PJSIP endpoint ``opNNN`` (``PJSIP/op101``, extension ``101``)."""

    endpoint: str
    ext: str
    name: str
    profile: AgentProfile
    rng: random.Random
    registered: bool = True
    state: str = "idle"
    """``idle`` | ``ringing`` | ``busy`` | ``wrapup``."""
    login_time: int = field(default_factory=lambda: int(time.time()) - 3600)
    calls_taken: int = 0
    last_call: int = 0
    forced_ring_s: float | None = None
    """Scenario override: always answer after exactly this many seconds (None = draw)."""
    never_answers: bool = False
    local: str = ""
    """``exten@context`` for a Local-channel member (``Local/op-bot@lab-local/n``)."""

    @property
    def interface(self) -> str:
        return f"Local/{self.local}/n" if self.local else f"PJSIP/{self.endpoint}"

    def available(self) -> bool:
        return self.registered and self.state == "idle"

    def device_status(self) -> int:
        """Queue member Status: 1 not in use, 2 in use, 5 unavailable, 6 ringing."""
        if not self.registered:
            return 5
        return {"idle": 1, "wrapup": 1, "ringing": 6, "busy": 2}[self.state]

    def draw_ring(self) -> float | None:
        """Seconds until this agent answers the current ring, or None (won't answer)."""
        if self.never_answers:
            return None
        if self.forced_ring_s is not None:
            return self.forced_ring_s
        if self.rng.random() > self.profile.answer_prob:
            return None
        return self.rng.uniform(*self.profile.ring_s)

    def draw_talk(self) -> tuple[float, bool]:
        """(talk seconds, True if the agent ends the call)."""
        p = self.profile
        return self.rng.uniform(*p.talk_s), self.rng.random() < p.agent_hangs_up


def make_agents(count: int, profile: AgentProfile, seed: int, first: int = 101) -> list[Agent]:
    """``count`` operators op101, op102 … named ``Operator 101`` …"""
    agents = []
    for i in range(count):
        ext = str(first + i)
        rng = random.Random(f"{seed}:op{ext}")
        agents.append(Agent(f"op{ext}", ext, f"Operator {ext}", profile, rng))
    return agents
