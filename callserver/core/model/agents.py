"""Agents (queue members) of the live model.

An agent is one member interface (``PJSIP/op101``, ``Local/op-bot@lab-local/n``) that may belong
to several queues. Asterisk reports membership state per queue; the device status is the same in
every queue, so the agent's status is the latest one reported. The aggregate ``paused`` is true
when the agent is paused in *any* of its queues (supervisors pause people, not memberships);
``free_agents(queue)`` looks at that queue's membership only.

"Logged in" means a member whose device is reachable (status other than ``unavailable`` and
``invalid``): static members are always members, their phone being registered is what counts.
Pure: standard library only.
"""

from __future__ import annotations

from dataclasses import replace

from callserver.core.events import AgentSnapshot
from callserver.core.model.records import MemberInfo

OFFLINE = frozenset({"unavailable", "invalid"})
FREE = "not_inuse"


class AgentBook:
    """Memberships by interface and queue, plus which calls each agent is talking on."""

    def __init__(self) -> None:
        self._members: dict[str, dict[str, MemberInfo]] = {}
        self._active: dict[str, set[str]] = {}
        self._status: dict[str, str] = {}
        self._snaps: dict[str, AgentSnapshot] = {}
        """Every agent's current snapshot, kept by ``_changed`` after each update: reading all
        agents (routing asks on every call, 1,000+ members) builds nothing."""
        self._sorted: list[AgentSnapshot] | None = None

    # ---- updates: each returns the agent's new snapshot when it changed, else None ----

    def update(self, info: MemberInfo) -> AgentSnapshot | None:
        """Add or refresh one membership (QueueMemberStatus, QueueMemberAdded, QueueMember)."""
        before = self._snaps.get(info.interface)
        self._members.setdefault(info.interface, {})[info.queue] = info
        self._status[info.interface] = info.status
        return self._changed(info.interface, before)

    def remove(self, queue: str, interface: str) -> AgentSnapshot | None:
        before = self._snaps.get(interface)
        queues = self._members.get(interface)
        if queues is None or queue not in queues:
            return None
        del queues[queue]
        if not queues:
            del self._members[interface]
            self._status.pop(interface, None)
            self._snaps.pop(interface, None)
            self._sorted = None
            return replace(before, queues=(), status="unknown") if before else None
        return self._changed(interface, before)

    def set_paused(
        self, queue: str, interface: str, paused: bool, reason: str
    ) -> AgentSnapshot | None:
        """Pause/unpause in ``queue``, or in every queue of the agent when ``queue`` is empty."""
        queues = self._members.get(interface)
        if not queues:
            return None
        before = self._snaps.get(interface)
        for name, info in list(queues.items()):
            if not queue or name == queue:
                queues[name] = replace(info, paused=paused, paused_reason=reason)
        return self._changed(interface, before)

    def call_started(self, interface: str, call_id: str) -> AgentSnapshot | None:
        before = self._snaps.get(interface)
        self._active.setdefault(interface, set()).add(call_id)
        return self._changed(interface, before)

    def call_finished(self, interface: str, call_id: str) -> AgentSnapshot | None:
        active = self._active.get(interface)
        if not active or call_id not in active:
            return None
        before = self._snaps.get(interface)
        active.discard(call_id)
        if not active:
            del self._active[interface]
        return self._changed(interface, before)

    def replace_all(
        self, infos: list[MemberInfo], keep: set[str] | frozenset[str] = frozenset()
    ) -> list[AgentSnapshot]:
        """Make the memberships exactly ``infos`` (resync), leaving the interfaces in ``keep``
        as they are; return the agents that changed."""
        wanted = {(i.interface, i.queue) for i in infos}
        changed: list[AgentSnapshot] = []
        for interface, queues in list(self._members.items()):
            if interface in keep:
                continue
            for queue in list(queues):
                if (interface, queue) not in wanted:
                    snap = self.remove(queue, interface)
                    if snap is not None:
                        changed.append(snap)
        for info in infos:
            snap = self.update(info)
            if snap is not None:
                changed.append(snap)
        return changed

    def _changed(self, interface: str, before: AgentSnapshot | None) -> AgentSnapshot | None:
        after = self.snapshot(interface)
        if after is None:
            self._snaps.pop(interface, None)
        else:
            self._snaps[interface] = after
        if after != before:
            self._sorted = None
        return after if after is not None and after != before else None

    # ---- queries ----

    def snapshot(self, interface: str) -> AgentSnapshot | None:
        queues = self._members.get(interface)
        if not queues:
            return None
        infos = list(queues.values())
        reasons = [i.paused_reason for i in infos if i.paused and i.paused_reason]
        return AgentSnapshot(
            interface=interface,
            name=next((i.name for i in infos if i.name), ""),
            queues=tuple(sorted(queues)),
            status=self._status.get(interface, "unknown"),
            paused=any(i.paused for i in infos),
            paused_reason=reasons[0] if reasons else "",
            in_call=bool(self._active.get(interface)) or any(i.in_call for i in infos),
            calls_taken=sum(i.calls_taken for i in infos),
            last_call=max(i.last_call for i in infos),
        )

    def snapshots(self) -> list[AgentSnapshot]:
        """Every agent's snapshot, by interface (kept up to date, not rebuilt here)."""
        if self._sorted is None:
            self._sorted = [self._snaps[i] for i in sorted(self._snaps)]
        return list(self._sorted)

    def name_of(self, interface: str) -> str:
        for info in self._members.get(interface, {}).values():
            if info.name:
                return info.name
        return ""

    def calls_of(self, interface: str) -> frozenset[str]:
        """Ids of the calls ``interface`` talks on (as far as this model knows)."""
        return frozenset(self._active.get(interface, ()))

    def interfaces(self) -> list[str]:
        return list(self._members)

    def queue_names(self) -> set[str]:
        return {q for queues in self._members.values() for q in queues}

    def members_of(self, queue: str) -> tuple[str, ...]:
        return tuple(sorted(i for i, queues in self._members.items() if queue in queues))

    def free(self, queue: str) -> int:
        """Members of ``queue`` not paused there, device not in use, not on a call we track."""
        count = 0
        for interface, queues in self._members.items():
            info = queues.get(queue)
            if (
                info is not None
                and not info.paused
                and self._status.get(interface) == FREE
                and not self._active.get(interface)
            ):
                count += 1
        return count

    def logged_in(self, queue: str) -> int:
        return sum(
            1
            for interface, queues in self._members.items()
            if queue in queues and self._status.get(interface, "unknown") not in OFFLINE
        )
