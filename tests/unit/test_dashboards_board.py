"""The board's state driven by the real live model (``LiveModel`` + ``EventBus``) through the
known clinic day of ``dashboards.sample_data``; every figure is worked out by hand there."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from callserver.core.bus import EventBus
from callserver.core.events import CallEnded, CallSnapshot
from callserver.core.model.live import LiveModel
from callserver.core.model.records import MemberInfo
from dashboards.board import BoardSettings, LiveBoard
from dashboards.config import DashboardsConfig
from dashboards.overload import OverloadDetector, OverloadThresholds
from dashboards.sample_data import DAY, QUEUE, at, call_rows

NAMES = {"PJSIP/op101": "Анна Смирнова", "PJSIP/op102": "Иван Котов"}


def build(cfg: DashboardsConfig | None = None,
          thresholds: OverloadThresholds | None = None) -> tuple[LiveModel, LiveBoard, EventBus]:
    bus = EventBus()
    model = LiveModel(bus)
    cfg = cfg or DashboardsConfig()
    t = thresholds or cfg.thresholds()
    board = LiveBoard(model, BoardSettings.from_config(cfg, lambda i: NAMES.get(i, "")),
                      lambda q: OverloadDetector(q, t))  # fmt: skip
    bus.subscribe(board.on_event)
    return model, board, bus


def members(model: LiveModel, when: float) -> None:
    for op, status, paused, reason in (("PJSIP/op101", "not_inuse", False, ""),
                                       ("PJSIP/op102", "not_inuse", False, ""),
                                       ("PJSIP/op103", "not_inuse", True, "обед"),
                                       ("PJSIP/op104", "unavailable", False, "")):  # fmt: skip
        model.member_status(MemberInfo(QUEUE, op, f"Оператор {op[-3:]}", status, paused, reason),
                            at=when)  # fmt: skip


def play_day(model: LiveModel, bus: EventBus) -> None:
    """The sample day's calls through the model, in time order."""
    steps: list[tuple[float, Callable[..., None], tuple[Any, ...], dict[str, Any]]] = []

    def step(when: float, fn: Callable[..., None], *args: Any, **kw: Any) -> None:
        steps.append((when, fn, args, {**kw, "at": when}))

    for r in call_rows(DAY):
        if r["direction"] != "inbound":
            continue
        u = r["id"]
        ts = {k: r[k].timestamp() for k in ("started_at", "queued_at", "answered_at", "ended_at")
              if r[k]}  # fmt: skip
        step(ts["started_at"], model.channel_created, u, u, f"PJSIP/trunk-{u}",
             caller=r["caller"], context="from-trunk")  # fmt: skip
        if "queued_at" in ts:
            step(ts["queued_at"], model.caller_joined_queue, u, u, QUEUE, 1)
        if u == "c2":
            step(ts["queued_at"] + 1, model.agent_called, u, QUEUE, "PJSIP/op101")
            step(ts["queued_at"] + 11, model.agent_ring_no_answer, u, QUEUE, "PJSIP/op101")
        if "answered_at" in ts:
            step(ts["answered_at"], model.agent_connected, u, QUEUE, r["agent"],
                 wait_seconds=r["wait_seconds"])  # fmt: skip
            step(ts["ended_at"], model.agent_completed, u, QUEUE, r["agent"],
                 talk_seconds=r["talk_seconds"])  # fmt: skip
        elif "queued_at" in ts:
            step(ts["ended_at"], model.caller_abandoned, u, QUEUE, position=1)
        step(ts["ended_at"] + 0.001, model.channel_hungup, u)
    for _, fn, args, kw in sorted(steps, key=lambda s: s[0]):
        fn(*args, **kw)
    # op101 calls c3's number back at 10:30 and reaches the patient (an outbound call)
    cb = at("10:30").timestamp()
    out = CallSnapshot(id="co1", linkedid="co1", direction="outbound", state="ended",
                       caller="101", caller_name="", did="+79160000003", ad_source="",
                       queue="", agent="PJSIP/op101", agent_name="", started_at=cb,
                       answered_at=cb + 8, ended_at=cb + 68, talk_seconds=60.0)  # fmt: skip
    bus.publish(CallEnded(at=cb + 68, call=out))


@pytest.fixture
def day() -> tuple[LiveModel, LiveBoard, EventBus]:
    model, board, bus = build()
    members(model, at("08:00").timestamp())
    play_day(model, bus)
    return model, board, bus


def queue_row(snapshot: dict[str, Any]) -> dict[str, Any]:
    return next(q for q in snapshot["queues"] if q["name"] == QUEUE)


def test_today_figures_match_the_hand_worked_day(
    day: tuple[LiveModel, LiveBoard, EventBus],
) -> None:
    _, board, _ = day
    snapshot, _ = board.tick(at("13:00").timestamp())
    today = queue_row(snapshot)["today"]
    # answered waits 10, 30, 5, 15 (three within 20 s); abandons 40 s and 3 s (short, excluded)
    assert today == {"offered": 5, "answered": 4, "abandoned": 1, "short_abandoned": 1,
                     "service_level": 0.6, "abandon_rate": 0.2, "asa": 15.0, "aht": 117.5}
    assert queue_row(snapshot)["last15"]["offered"] == 0
    assert queue_row(snapshot)["last15"]["service_level"] is None


def test_last_15_minutes_window(day: tuple[LiveModel, LiveBoard, EventBus]) -> None:
    _, board, _ = day
    snapshot, _ = board.tick(at("12:10").timestamp())
    # only c6 (answered 12:00:17 after 15 s, talked 90 s) is in the window
    assert queue_row(snapshot)["last15"] == {
        "offered": 1, "answered": 1, "abandoned": 0, "short_abandoned": 0,
        "service_level": 1.0, "abandon_rate": 0.0, "asa": 15.0, "aht": 90.0}


def test_short_abandons_included_when_the_clinic_chooses() -> None:
    model, board, bus = build(DashboardsConfig(exclude_short_abandons=False))
    members(model, at("08:00").timestamp())
    play_day(model, bus)
    today = queue_row(board.tick(at("13:00").timestamp())[0])["today"]
    assert (today["offered"], today["service_level"], today["abandon_rate"]) == (6, 0.5, 0.3333)


def test_operator_grid(day: tuple[LiveModel, LiveBoard, EventBus]) -> None:
    _, board, _ = day
    ops = {o["interface"]: o for o in board.tick(at("13:00").timestamp())[0]["operators"]}
    assert ops["PJSIP/op101"]["name"] == "Анна Смирнова"  # from the operator directory
    assert ops["PJSIP/op103"]["name"] == "Оператор 103"  # Asterisk's member name otherwise
    assert (ops["PJSIP/op101"]["calls_today"], ops["PJSIP/op102"]["calls_today"]) == (2, 2)
    assert ops["PJSIP/op101"]["missed_in_row"] == 0  # missed c2, then answered c5
    assert [ops[i]["state"] for i in sorted(ops)] == ["free", "free", "paused", "offline"]
    assert ops["PJSIP/op103"]["reason"] == "обед"


def test_wrapup_and_talking_states(day: tuple[LiveModel, LiveBoard, EventBus]) -> None:
    model, board, _ = day
    t0 = at("14:00").timestamp()
    model.channel_created("n1", "n1", "PJSIP/trunk-n1", caller="+79161112233",
                          context="from-trunk", at=t0)  # fmt: skip
    model.caller_joined_queue("n1", "n1", QUEUE, 1, at=t0 + 1)
    model.agent_connected("n1", QUEUE, "PJSIP/op102", at=t0 + 4)
    ops = {o["interface"]: o for o in board.tick(t0 + 30)[0]["operators"]}
    assert ops["PJSIP/op102"]["state"] == "talking"
    assert (ops["PJSIP/op102"]["caller"], ops["PJSIP/op102"]["talk"]) == ("+79161112233", 26.0)
    model.agent_completed("n1", QUEUE, "PJSIP/op102", at=t0 + 60)
    model.channel_hungup("n1", at=t0 + 60)
    ops = {o["interface"]: o for o in board.tick(t0 + 65)[0]["operators"]}
    assert ops["PJSIP/op102"]["state"] == "wrapup"  # within wrapup_seconds (10 s)
    ops = {o["interface"]: o for o in board.tick(t0 + 75)[0]["operators"]}
    assert ops["PJSIP/op102"]["state"] == "free"


def test_missed_calls_leave_the_list_when_the_patient_is_reached(
    day: tuple[LiveModel, LiveBoard, EventBus],
) -> None:
    _, board, _ = day
    now = at("13:00").timestamp()
    snapshot, _ = board.tick(now)
    # c3 was called back (outbound, answered), c4's caller called again and got through (c5)
    assert [m["call_id"] for m in snapshot["missed"]] == ["c7"]
    c7_end = at("00:30") + timedelta(seconds=20)
    assert snapshot["missed"][0]["age"] == pytest.approx(now - c7_end.timestamp())
    assert board.called_back == 2
    kinds = {a["kind"] for a in snapshot["alarms"]}
    assert kinds == {"callbacks_late", "low_service_level"}


def test_missed_in_a_row_alarm_and_waiting_callers() -> None:
    model, board, _ = build()
    t0 = at("09:00").timestamp()
    members(model, t0)
    for i in range(3):
        uid = f"w{i}"
        model.channel_created(uid, uid, f"PJSIP/trunk-{uid}", caller=f"+7916000100{i}",
                              context="from-trunk", at=t0 + i)  # fmt: skip
        model.caller_joined_queue(uid, uid, QUEUE, i + 1, at=t0 + i)
        model.agent_called(uid, QUEUE, "PJSIP/op101", at=t0 + 5 + i)
        model.agent_ring_no_answer(uid, QUEUE, "PJSIP/op101", at=t0 + 20 + i)
    snapshot, _ = board.tick(t0 + 90)
    assert {"kind": "missed_in_row", "operator": "Анна Смирнова", "value": 3} in snapshot["alarms"]
    assert [w["caller"] for w in snapshot["waiting"]] == ["+79160001000", "+79160001001",
                                                          "+79160001002"]  # fmt: skip
    assert snapshot["waiting"][0]["wait"] == 90.0
    q = queue_row(snapshot)
    assert (q["waiting"], q["longest_wait"]) == (3, 90.0)
    assert {"kind": "long_wait", "queue": QUEUE, "value": 90.0} in snapshot["alarms"]


def test_overload_raised_on_the_board_and_cleared() -> None:
    fast = OverloadThresholds(wait_raise=60, wait_clear=30, abandon_raise=0.5,
                              abandon_clear=0.25, raise_after=5, clear_after=5)  # fmt: skip
    model, board, _ = build(thresholds=fast)
    t0 = at("09:00").timestamp()
    members(model, t0)
    model.channel_created("o1", "o1", "PJSIP/trunk-o1", caller="+79160002000",
                          context="from-trunk", at=t0)  # fmt: skip
    model.caller_joined_queue("o1", "o1", QUEUE, 1, at=t0)
    changes = [t for now in range(61, 70) for t in board.tick(t0 + now)[1]]
    assert [(c.queue, c.state, c.at - t0) for c in changes] == [(QUEUE, "overloaded", 66)]
    snapshot, _ = board.tick(t0 + 70)
    assert queue_row(snapshot)["overload"] == "overloaded"
    assert any(a["kind"] == "overload" for a in snapshot["alarms"])
    model.agent_connected("o1", QUEUE, "PJSIP/op101", at=t0 + 71)
    changes = [t for now in range(72, 80) for t in board.tick(t0 + now)[1]]
    assert [(c.state, c.at - t0) for c in changes] == [("normal", 77)]


def test_odd_events_never_break_the_board() -> None:
    _, board, bus = build()
    weird = CallSnapshot(id="x", linkedid="x", direction="inbound", state="ended",
                         caller="<script>", caller_name="", did="", ad_source="", queue="",
                         agent="", agent_name="", started_at=0.0)  # fmt: skip
    bus.publish(CallEnded(at=1.0, call=weird))
    bus.publish(CallEnded(at=2.0, call=replace(weird, id="y", caller="")))
    snapshot, _ = board.tick(3.0)
    assert [m["caller"] for m in snapshot["missed"]] == ["<script>"]
