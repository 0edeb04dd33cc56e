"""Read-only views of the live model (queue snapshots). Pure: standard library only."""

from __future__ import annotations

from callserver.core.model.agents import AgentBook
from callserver.core.model.records import Call, QueueEntry, QueueSnapshot, WaitingCaller


def queue_snapshots(
    queues: dict[str, dict[str, QueueEntry]],
    calls: dict[str, Call],
    agents: AgentBook,
    now: float,
) -> dict[str, QueueSnapshot]:
    """Every queue seen (members, or callers now or before); waits are measured at ``now``
    (POSIX seconds) and never negative."""
    names = agents.queue_names() | set(queues)
    out: dict[str, QueueSnapshot] = {}
    for name in sorted(names):
        waiting = []
        for entry in sorted(queues.get(name, {}).values(), key=lambda e: e.position):
            call = calls.get(entry.call_id)
            waiting.append(
                WaitingCaller(
                    call_id=entry.call_id,
                    uniqueid=entry.uniqueid,
                    caller=call.caller if call is not None else "",
                    position=entry.position,
                    joined_at=entry.joined_at,
                    wait_seconds=max(0.0, now - entry.joined_at),
                )
            )
        out[name] = QueueSnapshot(
            name=name,
            waiting=tuple(waiting),
            members=agents.members_of(name),
            longest_wait=max((w.wait_seconds for w in waiting), default=0.0),
            free_agents=agents.free(name),
            logged_in_agents=agents.logged_in(name),
        )
    return out
