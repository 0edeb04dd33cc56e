"""Operators taking breaks by themselves: QueuePause with reason ``break`` on every queue.

A break starts only when the operator is idle (not ringing, not talking); it lasts
``AgentProfile.break_s`` scenario seconds. Draws come from the agent's own RNG.
"""

from __future__ import annotations

import time

from pbxsim import ami_events as ev
from pbxsim.agents import Agent
from pbxsim.engine import Engine

IDLE_POLL_S = 5.0


def _set_paused(eng: Engine, agent: Agent, paused: bool) -> None:
    for q in eng.queues.values():
        m = q.member(agent.interface)
        if m is None:
            continue
        m.paused, m.paused_reason = paused, "break" if paused else ""
        if paused:
            m.last_pause = int(time.time())
        eng.emit(ev.queue_member("QueueMemberPause", m.block(q.name)))
        q.notify()


async def take_breaks(eng: Engine, agent: Agent) -> None:
    """Run forever (cancel to stop): wait, pause when idle, resume after the break."""
    p = agent.profile
    if p.break_every_s <= 0:
        return
    while True:
        await eng.clock.sleep(agent.rng.expovariate(1.0 / p.break_every_s))
        while agent.state != "idle":
            await eng.clock.sleep(IDLE_POLL_S)
        _set_paused(eng, agent, True)
        try:
            await eng.clock.sleep(agent.rng.uniform(*p.break_s))
        finally:
            _set_paused(eng, agent, False)
