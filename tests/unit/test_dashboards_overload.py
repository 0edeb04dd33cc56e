"""The overload signal: raise after N minutes above, clear after M minutes below the lower
thresholds (hysteresis), with a clock the test sets; the webhook body."""

from __future__ import annotations

from dashboards.overload import OverloadDetector, OverloadThresholds, estimated_wait
from dashboards.webhook import payload

T = OverloadThresholds(wait_raise=120, wait_clear=60, abandon_raise=0.2, abandon_clear=0.1,
                       raise_after=180, clear_after=300)  # fmt: skip


def feed(d: OverloadDetector, start: float, end: float, wait: float, rate: float,
         step: float = 1.0) -> list[tuple[float, str]]:  # fmt: skip
    out: list[tuple[float, str]] = []
    now = start
    while now <= end:
        t = d.observe(now, wait, rate)
        if t is not None:
            out.append((now, t.state))
        now += step
    return out


def test_raises_only_after_the_condition_held_for_the_whole_period() -> None:
    d = OverloadDetector("reception", T)
    assert feed(d, 0, 179, 150, 0.0) == []
    assert str(d.state) == "normal"
    assert feed(d, 180, 180, 150, 0.0) == [(180, "overloaded")]


def test_a_dip_restarts_the_count() -> None:
    d = OverloadDetector("reception", T)
    feed(d, 0, 100, 150, 0.0)
    assert d.observe(101, 100, 0.0) is None  # below the raise threshold: run broken
    assert feed(d, 102, 281, 150, 0.0) == []
    assert feed(d, 282, 282, 150, 0.0) == [(282, "overloaded")]


def test_abandon_rate_alone_raises() -> None:
    d = OverloadDetector("reception", T)
    assert feed(d, 0, 200, 10, 0.35) == [(180, "overloaded")]


def test_hysteresis_between_thresholds_keeps_the_alarm() -> None:
    d = OverloadDetector("reception", T)
    feed(d, 0, 180, 150, 0.0)
    # 90 s wait is under the raise threshold but above the clear one: still overloaded
    assert feed(d, 181, 2000, 90, 0.05) == []
    assert str(d.state) == "overloaded"
    # below both clear thresholds for 300 s → back to normal, once
    assert feed(d, 2001, 2400, 30, 0.05) == [(2301, "normal")]
    assert str(d.state) == "normal"


def test_back_to_normal_needs_both_readings_low() -> None:
    d = OverloadDetector("reception", T)
    feed(d, 0, 180, 150, 0.0)
    assert feed(d, 181, 1000, 30, 0.15) == []  # wait fine, abandons still above clear


def test_webhook_payload_for_both_transitions() -> None:
    d = OverloadDetector("reception", T)
    up = [d.observe(float(t), 150, 0.25) for t in range(0, 181)][-1]
    assert up is not None
    body = payload(up)
    assert body["event"] == "overload" and body["message"] == "reduce advertising"
    assert (body["queue"], body["since"], body["at"]) == ("reception", 0.0, 180.0)
    down = [d.observe(float(t), 10, 0.0) for t in range(181, 482)][-1]
    assert down is not None and payload(down)["event"] == "normal"
    assert payload(down)["message"] == "back to normal"


def test_estimated_wait() -> None:
    assert estimated_wait(0.0, 0, 180, 3) == 0.0
    assert estimated_wait(10.0, 6, 180, 3) == 360.0  # 6 callers × 180 s / 3 operators
    assert estimated_wait(500.0, 1, 180, 3) == 500.0
    assert estimated_wait(5.0, 2, 180, 0) == float("inf")
