"""LiveModel through its transport-neutral API (no AMI here)."""

from __future__ import annotations

import gc
import tracemalloc

import pytest

from callserver.core.bus import EventBus
from callserver.core.events import (
    AgentRingNoAnswer,
    AgentStatusChanged,
    CallAbandoned,
    CallAnswered,
    CallEnded,
    CallStarted,
    CallUpdated,
    DomainEvent,
)
from callserver.core.model import LiveModel, MemberInfo

T0 = 1_800_000_000.0


class Recorder:
    def __init__(self) -> None:
        self.bus = EventBus()
        self.events: list[DomainEvent] = []
        self.bus.subscribe(self.events.append)
        self.model = LiveModel(self.bus)

    def types(self) -> list[str]:
        return [e.type for e in self.events]

    def of(self, cls: type[DomainEvent]) -> list[DomainEvent]:
        return [e for e in self.events if isinstance(e, cls)]


def inbound(m: LiveModel, uid: str = "1.1", at: float = T0, caller: str = "79161234567") -> None:
    m.channel_created(uid, uid, f"PJSIP/trunk-{uid}", caller=caller, context="from-trunk", at=at)


def member(queue: str, interface: str, status: str = "not_inuse") -> MemberInfo:
    return MemberInfo(queue=queue, interface=interface, name=interface[-5:], status=status)


@pytest.fixture
def r() -> Recorder:
    return Recorder()


def test_direction_rules(r: Recorder) -> None:
    m = r.model
    inbound(m, "1.1")
    m.channel_created("2.1", "2.1", "Local/100@lab-local-0001;1", at=T0)
    m.channel_created("3.1", "3.1", "PJSIP/op101-0003", context="operators", at=T0)
    m.channel_created("4.1", "4.1", "PJSIP/op102-0004", context="operators", at=T0)
    m.variable_set("4.1", "DID", "74951234567", at=T0 + 1)
    got = {c.id: c.direction for c in m.calls()}
    assert got == {"1.1": "inbound", "2.1": "outbound", "3.1": "internal", "4.1": "inbound"}
    update = r.of(CallUpdated)[-1]
    assert isinstance(update, CallUpdated) and update.changed == ("did", "direction")


def test_legs_of_one_linkedid_are_one_call_and_media_channels_are_ignored(r: Recorder) -> None:
    m = r.model
    inbound(m, "1.1")
    m.channel_created("1.2", "1.1", "PJSIP/op101-0002", context="operators", at=T0 + 1)
    m.channel_created("1.3", "1.1", "UnicastRTP/127.0.0.1:40000-0x1", at=T0 + 2)
    assert len(m) == 1 and r.types() == ["CallStarted"]
    m.channel_hungup("1.2", at=T0 + 3)
    assert len(m) == 1
    m.channel_hungup("1.1", cause="Normal Clearing", at=T0 + 4)
    assert len(m) == 0 and r.types() == ["CallStarted", "CallEnded"]
    m.channel_hungup("1.1", at=T0 + 5)  # a duplicate Hangup never ends the call twice
    assert r.types().count("CallEnded") == 1


def test_ring_no_answer_then_answer_by_another_agent(r: Recorder) -> None:
    m = r.model
    inbound(m)
    m.caller_joined_queue("1.1", "1.1", "reception", 1, at=T0 + 2)
    m.agent_called("1.1", "reception", "PJSIP/op101", member_name="Op 101", at=T0 + 3)
    m.agent_ring_no_answer("1.1", "reception", "PJSIP/op101", at=T0 + 18)
    rna = r.of(AgentRingNoAnswer)[0]
    assert isinstance(rna, AgentRingNoAnswer) and rna.ring_seconds == 15.0
    assert m.calls()[0].state == "queued"
    m.agent_called("1.1", "reception", "PJSIP/op102", at=T0 + 20)
    m.agent_connected("1.1", "reception", "PJSIP/op102", agent_uniqueid="", at=T0 + 24)
    ans = r.of(CallAnswered)[0]
    assert isinstance(ans, CallAnswered)
    assert (ans.agent, ans.wait_seconds, ans.ring_seconds) == ("PJSIP/op102", 22.0, 4.0)
    assert m.queues()["reception"].waiting == ()
    m.agent_completed("1.1", "reception", "PJSIP/op102", reason="agent", at=T0 + 84)
    m.channel_hungup("1.1", at=T0 + 85)
    end = r.of(CallEnded)[0]
    assert isinstance(end, CallEnded)
    assert (end.talk_seconds, end.hangup_by, end.call.state) == (60.0, "agent", "ended")


def test_hangup_by_is_inferred_without_agent_complete(r: Recorder) -> None:
    m = r.model
    inbound(m)
    m.channel_created("1.2", "1.1", "PJSIP/op101-0002", at=T0)
    m.caller_joined_queue("1.1", "1.1", "q", 1, at=T0 + 1)
    m.agent_called("1.1", "q", "PJSIP/op101", agent_uniqueid="1.2", at=T0 + 1)
    m.agent_connected("1.1", "q", "PJSIP/op101", agent_uniqueid="1.2", at=T0 + 2)
    m.channel_hungup("1.2", at=T0 + 10)
    m.channel_hungup("1.1", at=T0 + 10)
    end = r.of(CallEnded)[0]
    assert isinstance(end, CallEnded) and end.hangup_by == "agent" and end.talk_seconds == 8.0


def test_abandon_computes_hold_time_when_asterisk_gives_none(r: Recorder) -> None:
    m = r.model
    inbound(m)
    m.caller_joined_queue("1.1", "1.1", "q", 2, at=T0 + 1)
    m.caller_abandoned("1.1", "q", position=2, at=T0 + 31)
    ab = r.of(CallAbandoned)[0]
    assert isinstance(ab, CallAbandoned) and (ab.wait_seconds, ab.position) == (30.0, 2)
    assert m.counts_by_state()["abandoned"] == 1


def test_queue_snapshot_waits_and_counts(r: Recorder) -> None:
    m = r.model
    for i, at in enumerate((T0, T0 + 10, T0 + 20), start=1):
        inbound(m, f"{i}.1", at=at)
        m.caller_joined_queue(f"{i}.1", f"{i}.1", "reception", i, at=at)
    q = m.queues(now=T0 + 60)["reception"]
    assert [w.position for w in q.waiting] == [1, 2, 3]
    assert q.longest_wait == 60.0
    assert q.waiting[0].caller == "79161234567"
    counts = m.counts_by_state()
    assert counts["queued"] == 3 and counts["answered"] == 0
    assert m.to_dict(now=T0 + 60)["queues"]["reception"]["longest_wait"] == 60.0
    assert m.longest_waits(now=T0 + 60) == {"reception": 60.0}  # what routing reads
    m.caller_left_queue("1.1", "reception", at=T0 + 61)
    assert m.longest_waits(now=T0 + 70) == {"reception": 60.0} == {
        n: q.longest_wait for n, q in m.queues(now=T0 + 70).items()
    }


def test_free_and_logged_in_agents(r: Recorder) -> None:
    m = r.model
    m.member_status(member("reception", "PJSIP/op101"), at=T0)
    m.member_status(member("reception", "PJSIP/op102"), at=T0)
    m.member_status(member("reception", "PJSIP/op103", "unavailable"), at=T0)
    m.member_status(member("doctors", "PJSIP/op102"), at=T0)
    assert (m.free_agents("reception"), m.logged_in_agents("reception")) == (2, 2)
    m.member_paused("reception", "PJSIP/op101", True, reason="lunch", at=T0 + 1)
    assert m.free_agents("reception") == 1
    agent = next(a for a in m.agents() if a.interface == "PJSIP/op101")
    assert agent.paused and agent.paused_reason == "lunch"
    inbound(m)
    m.caller_joined_queue("1.1", "1.1", "doctors", 1, at=T0 + 2)
    m.agent_connected("1.1", "doctors", "PJSIP/op102", at=T0 + 3)
    assert m.free_agents("reception") == 0 and m.free_agents("doctors") == 0
    op102 = next(a for a in m.agents() if a.interface == "PJSIP/op102")
    assert op102.in_call and op102.queues == ("doctors", "reception")
    m.channel_hungup("1.1", at=T0 + 9)
    assert m.free_agents("doctors") == 1
    m.member_removed("doctors", "PJSIP/op102", at=T0 + 10)
    assert m.queues()["doctors"].members == ()
    changed = r.of(AgentStatusChanged)
    assert all(isinstance(e, AgentStatusChanged) for e in changed) and len(changed) >= 6


def test_member_status_without_change_publishes_nothing(r: Recorder) -> None:
    r.model.member_status(member("q", "PJSIP/a"), at=T0)
    r.model.member_status(member("q", "PJSIP/a"), at=T0 + 1)
    assert r.types() == ["AgentStatusChanged"]


def test_caller_id_and_routing_variables(r: Recorder) -> None:
    m = r.model
    m.channel_created("1.1", "1.1", "Local/400@lab-local-01;1", at=T0)
    m.channel_created("1.2", "1.1", "Local/400@lab-local-01;2", at=T0)
    m.caller_id_changed("1.2", "79161234567", "", at=T0 + 1)
    m.caller_id_changed("1.2", "79161234567", "Лаб Пациент", at=T0 + 1)
    m.variable_set("1.2", "ROUTE_QUEUE", "labq", at=T0 + 2)
    m.variable_set("1.2", "ROUTE_QUEUE", "labq", at=T0 + 3)
    call = m.call("1.1")
    assert call is not None
    assert (call.caller, call.caller_name) == ("79161234567", "Лаб Пациент")
    assert dict(call.variables) == {"ROUTE_QUEUE": "labq"}
    assert r.types().count("CallUpdated") == 2  # the caller ID twice; ROUTE_QUEUE quietly


def test_events_carry_snapshots_that_do_not_change_later(r: Recorder) -> None:
    m = r.model
    inbound(m)
    started = r.of(CallStarted)[0]
    assert isinstance(started, CallStarted)
    m.caller_joined_queue("1.1", "1.1", "q", 1, at=T0 + 1)
    assert started.call.state == "ringing" and started.call.queue == ""


def test_thousand_live_calls_fit_the_memory_budget() -> None:
    """DESIGN budget: ≤ 200 MB RSS with 1,000 live calls; the model itself must be a sliver."""
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        bus = EventBus()
        m = LiveModel(bus)
        for i in range(1000):
            uid = f"{T0 + i:.0f}.{i}"
            inbound(m, uid, at=T0 + i)
            m.channel_created(f"{uid}b", uid, f"PJSIP/op{i}-x", at=T0 + i)
            for name, value in (("DID", "74951234567"), ("AD_SOURCE", "source-a"),
                                ("ROUTE_QUEUE", "reception"), ("ROUTE_MODE", "queue")):  # fmt: skip
                m.variable_set(uid, name, value, at=T0 + i)
            m.caller_joined_queue(uid, uid, "reception", i + 1, at=T0 + i)
            if i % 2:
                m.agent_connected(
                    uid, "reception", f"PJSIP/op{i}", agent_uniqueid=f"{uid}b", at=T0 + i
                )
        used = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
    assert len(m) == 1000
    assert used < 10 * 1024 * 1024, f"live model uses {used / 1e6:.1f} MB for 1,000 calls"


def test_agent_complete_finds_the_call_from_the_agent_when_no_leg_names_it(r: Recorder) -> None:
    """AgentComplete naming neither the caller's leg nor the agent's: the one call the agent
    talks on is the one (its TalkTime still counts)."""
    m = r.model
    inbound(m, "1.1")
    m.caller_joined_queue("1.1", "1.1", "q", 1, at=T0 + 1)
    m.channel_created("1.2", "1.1", "PJSIP/op101-0002", at=T0 + 1)
    m.agent_connected("1.1", "q", "PJSIP/op101", agent_uniqueid="1.2", at=T0 + 2)
    m.agent_completed("", "q", "PJSIP/op101", talk_seconds=7.0, reason="agent", at=T0 + 9)
    m.channel_hungup("1.2", at=T0 + 10)
    m.channel_hungup("1.1", at=T0 + 10)
    [end] = r.of(CallEnded)
    assert isinstance(end, CallEnded)
    assert (end.talk_seconds, end.hangup_by) == (7.0, "agent")
    assert [(t.agent, t.end) for t in end.call.agents] == [("PJSIP/op101", "agent")]
