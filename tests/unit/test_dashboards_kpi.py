"""Queue figures from per-minute counts: service level with short abandons in or out."""

from __future__ import annotations

import pytest

from dashboards.kpi import Bucket, SlPolicy, figures, record_abandon, record_answer, record_talk


def _day(policy: SlPolicy) -> Bucket:
    b = Bucket()
    for wait in (10, 30, 5, 15):  # answered; 30 s is outside 20 s
        record_answer(b, wait, policy)
    for wait in (40, 3):  # abandoned; 3 s is a short abandon
        record_abandon(b, wait, policy)
    for talk in (120, 200, 60, 90):
        record_talk(b, talk)
    return b


def test_short_abandons_excluded() -> None:
    policy = SlPolicy(sl_seconds=20, short_abandon_seconds=5, exclude_short_abandons=True)
    f = figures(_day(policy), policy)
    assert (f.offered, f.answered, f.abandoned, f.short_abandoned) == (5, 4, 1, 1)
    assert f.service_level == pytest.approx(3 / 5)
    assert f.abandon_rate == pytest.approx(1 / 5)
    assert f.asa == pytest.approx(15.0)
    assert f.aht == pytest.approx(117.5)


def test_short_abandons_included() -> None:
    policy = SlPolicy(sl_seconds=20, short_abandon_seconds=5, exclude_short_abandons=False)
    f = figures(_day(policy), policy)
    assert (f.offered, f.abandoned) == (6, 2)
    assert f.service_level == pytest.approx(3 / 6)
    assert f.abandon_rate == pytest.approx(2 / 6)


def test_empty_window_has_no_figures() -> None:
    f = figures(Bucket(), SlPolicy())
    assert (f.service_level, f.abandon_rate, f.asa, f.aht) == (None, None, None, None)
    assert f.to_dict()["offered"] == 0


def test_answer_exactly_at_the_threshold_counts_inside() -> None:
    policy = SlPolicy(sl_seconds=20)
    b = Bucket()
    record_answer(b, 20.0, policy)
    assert figures(b, policy).service_level == 1.0
