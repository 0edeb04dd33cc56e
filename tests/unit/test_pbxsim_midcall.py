"""Hold/transfer knobs: scenario keys and the traffic model's per-call draws (issue 15)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from pbxsim.dialplan import Dialplan, InboundCall
from pbxsim.plan import MidCall
from pbxsim.scenario import ScenarioError, load
from pbxsim.traffic import Traffic, TrafficConfig

DP = Dialplan({"74951234567": "source-a", "74957654321": "source-b"})
BASE = TrafficConfig(calls_per_hour=600, duration_s=0)
MIXED = dataclasses.replace(
    BASE,
    hold_prob=0.3,
    blind_transfer_prob=0.2,
    attended_transfer_prob=0.1,
    transfer_to=("102", "103"),
)


def _calls(cfg: TrafficConfig, seed: int, n: int = 200) -> list[tuple[float, InboundCall]]:
    traffic, t, out = Traffic(cfg, DP, seed), 0.0, []
    for _ in range(n):
        nxt = traffic.next_arrival(t)
        assert nxt is not None
        t = nxt
        out.append((t, traffic.draw_call()))
    return out


def test_midcall_draws_never_shift_arrivals_or_callers() -> None:
    plain, mixed = _calls(BASE, 5), _calls(MIXED, 5)
    strip = [(t, dataclasses.replace(c, plan=MidCall())) for t, c in mixed]
    assert strip == plain
    assert all(c.plan == MidCall() for _, c in plain)


def test_midcall_draws_are_deterministic_per_seed_and_follow_the_shares() -> None:
    a, b, other = _calls(MIXED, 5, 2000), _calls(MIXED, 5, 2000), _calls(MIXED, 6, 2000)
    assert [c.plan for _, c in a] == [c.plan for _, c in b]
    assert [c.plan for _, c in a] != [c.plan for _, c in other]
    plans = [c.plan for _, c in a]
    share = {k: sum(p.transfer == k for p in plans) / len(plans) for k in ("blind", "attended")}
    assert share["blind"] == pytest.approx(0.2, abs=0.03)
    assert share["attended"] == pytest.approx(0.1, abs=0.03)
    assert sum(p.hold_after_s is not None for p in plans) / len(plans) == pytest.approx(
        0.3, abs=0.03
    )
    assert {p.transfer_to for p in plans if p.transfer} == {"102", "103"}


def test_transfer_without_targets_is_no_transfer() -> None:
    cfg = dataclasses.replace(MIXED, transfer_to=())
    assert all(c.plan.transfer == "" for _, c in _calls(cfg, 1))


def test_golden_mirroring_scenarios_carry_their_plans() -> None:
    blind = load("blind-transfer")
    plan = blind.calls[0][1].plan
    assert (plan.transfer, plan.transfer_to, plan.transfer_after_s) == ("blind", "102", 4.0)
    assert blind.queue_options == "rt" and blind.bridge_peer_rounds == 1
    assert blind.queues[0].paused == ("op102",)
    att = load("attended-transfer").calls[0][1].plan
    assert (att.transfer, att.transferer_hangup_s) == ("attended", 3.0)
    hold = load("hold").calls[0][1].plan
    assert (hold.hold_after_s, hold.hold_s, hold.transfer) == (3.0, 5.0, "")
    two = load("two-callers")
    assert [c.caller for _, c in two.calls] == ["79161234567", "79035550101"]
    old = load("single-answered")
    assert (old.queue_options, old.bridge_peer_rounds) == ("r", 3)


def test_unknown_transfer_kind_is_a_scenario_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[[calls]]\ndid = "1"\ncaller = "2"\ntransfer = "sideways"\n')
    with pytest.raises(ScenarioError):
        load(str(bad))
