"""pbxsim pieces without sockets: framing, AGI tokenising, queue strategies, traffic, scenarios."""

from __future__ import annotations

from pathlib import Path

import pytest

from pbxsim import ami_events as ev
from pbxsim.agents import AgentProfile, make_agents
from pbxsim.agi_client import split_args
from pbxsim.dialplan import Dialplan
from pbxsim.model import Channel
from pbxsim.queues import Entry, Member, Queue
from pbxsim.scenario import SCENARIO_DIR, ScenarioError, load
from pbxsim.traffic import CLINIC_DAY, Traffic, TrafficConfig, load_patients
from pbxsim.wire import ActionReader, AmiProtocolError, every, first, message
from tests.contract.golden import blocks
from tests.transcripts import from_asterisk


def test_action_reader_splits_actions_across_reads_and_keeps_utf8() -> None:
    data = "Action: Setvar\r\nVariable: NAME\r\nValue: Лаб Пациент\r\n\r\n".encode()
    data += b"Action: Ping\r\n\r\n"
    r = ActionReader()
    got = []
    for i in range(len(data)):  # one byte at a time: a Cyrillic letter is split too
        got += r.feed(data[i : i + 1])
    assert [first(a, "Action") for a in got] == ["Setvar", "Ping"]
    assert first(got[0], "value") == "Лаб Пациент"


def test_action_reader_keeps_repeated_headers_and_rejects_huge_messages() -> None:
    (a,) = ActionReader().feed(b"Action: Originate\r\nVariable: A=1\r\nVariable: B=2\r\n\r\n")
    assert every(a, "Variable") == ["A=1", "B=2"]
    with pytest.raises(AmiProtocolError):
        ActionReader().feed(b"X: " + b"y" * 70000)


def test_message_values_cannot_inject_headers() -> None:
    out = message([("Response", "Success"), ("Value", "x\r\nEvent: Fake")])
    assert out == b"Response: Success\r\nValue: x  Event: Fake\r\n\r\n"


def test_agi_split_args_like_asterisk() -> None:
    assert split_args('SET VARIABLE ROUTE_QUEUE "doctors desk"') == [
        "SET",
        "VARIABLE",
        "ROUTE_QUEUE",
        "doctors desk",
    ]
    assert split_args('VERBOSE "a \\"quoted\\" word" 1') == ["VERBOSE", 'a "quoted" word', "1"]
    assert split_args('SET VARIABLE X ""') == ["SET", "VARIABLE", "X", ""]


def _channel() -> Channel:
    return Channel(
        "PJSIP/trunk-00000004",
        "1795413075.4",
        "1795413075.4",
        "from-trunk",
        "74951234567",
        "79161234567",
        "79161234567",
        state=4,
    )


def test_event_builders_have_the_golden_field_order() -> None:
    golden = {
        b[0][1]: [k for k, _ in b]
        for b in blocks(from_asterisk("ami-queue-answered-call.txt"))
        if b[0][0] == "Event"
    }
    ch = _channel()
    built = {
        "Newchannel": ev.newchannel(ch),
        "VarSet": ev.varset(ch, "A", "b"),
        "Newexten": ev.newexten(ch, "Set", "x"),
        "Hangup": ev.hangup(ch, 16),
        "SoftHangupRequest": ev.soft_hangup_request(ch, 16),
        "Cdr": ev.cdr(ch, "", "ANSWERED", 0.0),
        "DeviceStateChange": ev.device_state("PJSIP/trunk", "INUSE"),
        "QueueCallerJoin": ev.queue_caller(
            "QueueCallerJoin", ch, ("Queue", "q"), ("Position", 1), ("Count", 1)
        ),
    }
    for name, data in built.items():
        (b,) = blocks(data)
        assert [k for k, _ in b] == golden[name], name


def test_snapshot_cache_follows_state_changes() -> None:
    ch = _channel()
    assert "ChannelStateDesc: Ring" in ch.block()
    ch.set_state(6)
    assert "ChannelStateDesc: Up" in ch.block() and ch.answered > 0
    assert "DestChannelState: 6\r\n" in ch.block("Dest")


def _queue(strategy: str, n: int = 3) -> Queue:
    agents = make_agents(n, AgentProfile(), seed=1)
    return Queue("q", strategy, members=[Member(a) for a in agents])


def test_strategies_pick_members() -> None:
    entry = Entry(_channel(), 0.0, 1)
    assert len(_queue("ringall").pick(entry)) == 3
    rr = _queue("rrmemory")
    assert [rr.pick(entry)[0].agent.ext for _ in range(4)] == ["101", "102", "103", "101"]
    lr = _queue("leastrecent")
    lr.members[0].last_call, lr.members[1].last_call, lr.members[2].last_call = 30, 10, 20
    assert lr.pick(entry)[0].agent.ext == "102"
    lr.members[1].paused = True
    assert lr.pick(entry)[0].agent.ext == "103"


def test_preferred_member_rings_alone_and_busy_members_are_skipped() -> None:
    q = _queue("ringall")
    entry = Entry(_channel(), 0.0, 1, preferred="PJSIP/op102")
    assert [m.agent.ext for m in q.pick(entry)] == ["102"]
    q.members[1].agent.state = "busy"
    assert [m.agent.ext for m in q.pick(entry)] == ["101", "103"]


def test_is_turn_lets_as_many_callers_ring_as_members_are_ready() -> None:
    q = _queue("ringall", n=1)
    e1, e2 = Entry(_channel(), 0.0, 1), Entry(_channel(), 0.0, 2)
    q.entries += [e1, e2]
    assert q.is_turn(e1) and not q.is_turn(e2)


def test_traffic_is_deterministic_for_a_seed_and_follows_the_profile() -> None:
    dp = Dialplan({"74951234567": "source-a", "74957654321": "source-b"})
    cfg = TrafficConfig(calls_per_hour=120, profile=CLINIC_DAY, start_hour=8.0, duration_s=4 * 3600)

    def run(seed: int) -> list[tuple[float, str, str]]:
        tr, t, out = Traffic(cfg, dp, seed), 0.0, []
        while (nxt := tr.next_arrival(t)) is not None:
            t = nxt
            call = tr.draw_call()
            out.append((round(t, 6), call.caller, call.did))
        return out

    a, b, c = run(7), run(7), run(8)
    assert a == b and a != c
    by_hour = [sum(1 for t, _, _ in a if h * 3600 <= t < (h + 1) * 3600) for h in range(4)]
    assert by_hour[1] > by_hour[0] * 1.5  # 09:00-10:00 is the morning peak (2.2x vs 0.3x..1x)
    known = {n for n, _ in load_patients()}
    assert any(n in known for _, n, _ in a) and any(n not in known for _, n, _ in a)


def test_patients_csv_is_e164() -> None:
    lines = (
        (Path(SCENARIO_DIR).parent / "data" / "patients.csv")
        .read_text(encoding="utf-8")
        .splitlines()
    )
    assert lines[0] == "phone,name,clinic"
    for line in lines[1:]:
        phone, name, clinic = line.split(",")
        assert (
            phone.startswith("+7")
            and len(phone) == 12
            and name
            and clinic in ("north", "center", "south")
        )


@pytest.mark.parametrize("path", sorted(SCENARIO_DIR.glob("*.toml")), ids=lambda p: p.stem)
def test_every_shipped_scenario_loads(path: Path) -> None:
    sc = load(path.stem)
    assert sc.name == path.stem and sc.queues


def test_bad_scenario_names_the_problem(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[agents]\nring_s = "soon"\n')
    with pytest.raises(ScenarioError, match="bad scenario"):
        load(str(bad))
    with pytest.raises(ScenarioError, match="cannot read"):
        load("no-such-scenario")


def test_agent_draws_are_per_agent() -> None:
    a1 = make_agents(2, AgentProfile(), seed=3)
    a2 = make_agents(2, AgentProfile(), seed=3)
    a2[0].draw_ring()  # consuming op101's numbers must not change op102's
    assert a1[1].draw_ring() == a2[1].draw_ring()


def test_higher_priority_callers_wait_ahead() -> None:
    q = _queue("ringall", n=1)
    low1, low2, high = (Entry(_channel(), 0.0, 0) for _ in range(3))
    high.prio = 5
    assert [q.insert(low1), q.insert(low2), q.insert(high)] == [1, 2, 1]
    assert q.entries == [high, low1, low2]


def test_queue_position_argument_inserts_like_join_queue() -> None:
    """app_queue's join_queue: a higher priority goes first; else the requested position
    unless higher-priority callers hold it; else the end."""
    q = _queue("ringall")

    def join(name: str, prio: int = 0, position: int = 0) -> int:
        entry = Entry(_channel(), 0.0, 0)
        entry.channel.cid_num, entry.prio = name, prio
        return q.insert(entry, position)

    assert [join("a"), join("b"), join("c")] == [1, 2, 3]
    assert join("slot", position=2) == 2
    assert join("late", position=9) == 5  # beyond the end: the end
    assert join("vip", prio=5) == 1
    assert join("slot2", position=1) == 2  # place 1 is held by a higher priority
    assert [e.channel.cid_num for e in q.entries] == [
        "vip", "slot2", "a", "slot", "b", "c", "late"]
