"""Target lists built from the embedded CRM's tables with SQL (real PostgreSQL): visits N days
ago (feedback), the last visit ≥ 6 months ago with nothing booked (recall), the early-morning
rule on a seeded day, and CSV lists."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import asyncpg
import pytest

from campaigns.models import parse_settings
from campaigns.targets import csv_targets, feedback_targets, recall_targets, reminder_targets
from tests.integration.campaigns_support import migrate, seed_day

pytestmark = pytest.mark.integration
MSK = ZoneInfo("Europe/Moscow")
NOW = datetime(2026, 12, 2, 12, 0, tzinfo=MSK)


@pytest.fixture
async def pool(fresh_pg_dsn: str) -> AsyncIterator[asyncpg.Pool]:
    p = await asyncpg.create_pool(fresh_pg_dsn, min_size=1, max_size=4)
    await migrate(p)
    yield p
    await p.close()


async def test_feedback_and_recall_lists(pool: asyncpg.Pool) -> None:
    ids = await seed_day(pool, datetime(2026, 12, 1, 0, 0, tzinfo=MSK), [
        ("+79990000301", "Вчерашний Визит", 11 * 60),
        ("+79990000302", "Давний Пациент", 12 * 60),
        ("+79990000303", "Давний Но Записан", 13 * 60),
    ])  # fmt: skip
    await pool.execute("UPDATE crm_appointments SET status = 'came' WHERE id = $1",
                       ids["+79990000301"])  # fmt: skip
    # 302 and 303: their visit was 7 months ago; 303 has booked again
    await pool.execute(
        "UPDATE crm_appointments SET status = 'came', starts_at = starts_at - interval '7 months' "
        "WHERE id = ANY($1::bigint[])", [ids["+79990000302"], ids["+79990000303"]])  # fmt: skip
    await pool.execute(
        "INSERT INTO crm_appointments (patient_id, starts_at) SELECT patient_id, $2 "
        "FROM crm_appointments WHERE id = $1",
        ids["+79990000303"], NOW + timedelta(days=10),
    )  # fmt: skip
    settings = parse_settings({})
    feedback = await feedback_targets(pool, settings, days_ago=1, now=NOW)
    assert [t.phone for t in feedback] == ["+79990000301"]
    assert feedback[0].appointment_id == ids["+79990000301"] and feedback[0].doctor
    recall = await recall_targets(pool, settings, months=6, now=NOW)
    assert [t.phone for t in recall] == ["+79990000302"]
    assert recall[0].next_attempt_at == NOW  # inside the window already


async def test_the_early_morning_visit_is_reminded_the_evening_before(pool: asyncpg.Pool) -> None:
    await seed_day(pool, datetime(2026, 12, 3, 0, 0, tzinfo=MSK), [
        ("+79990000401", "Ранний", 8 * 60), ("+79990000402", "Дневной", 14 * 60)])  # fmt: skip
    settings = parse_settings({"rules": ["morning"], "window": "09:00-20:00"})
    targets = await reminder_targets(pool, settings, date_from=NOW.date(),
                                     date_to=NOW.date() + timedelta(days=3), now=NOW)  # fmt: skip
    when = {t.phone: (t.rule, t.next_attempt_at.astimezone(MSK)) for t in targets}
    assert when == {
        "+79990000401": ("evening_before", datetime(2026, 12, 2, 19, 0, tzinfo=MSK)),
        "+79990000402": ("morning_of", datetime(2026, 12, 3, 9, 0, tzinfo=MSK)),
    }


def test_csv_lists_report_bad_rows_and_normalise_phones() -> None:
    text = ("phone,name,lang,starts_at\n8 916 123-45-67,Анна,ru,2026-12-03 10:00\n"
            "abc,Bad,ru,\n+79161234568,Bob,de,\n")  # fmt: skip
    targets, errors = csv_targets(text, parse_settings({}), now=NOW)
    assert [(t.phone, t.patient_key) for t in targets] == [("+79161234567", "tel:+79161234567")]
    assert targets[0].starts_at == datetime(2026, 12, 3, 10, 0, tzinfo=MSK)
    assert [e["line"] for e in errors] == [3, 4]


async def test_results_show_rate_per_doctor_and_rule_and_csv_export(pool: asyncpg.Pool) -> None:
    from campaigns.reports import campaign_stats, export_csv
    from campaigns.store import CampaignStore

    ids = await seed_day(pool, datetime(2026, 12, 3, 0, 0, tzinfo=MSK), [
        ("+79990000501", "=HYPERLINK(1)", 10 * 60), ("+79990000502", "Б", 11 * 60),
        ("+79990000503", "В", 12 * 60), ("+79990000504", "Г", 13 * 60)])  # fmt: skip
    settings = parse_settings({"rules": ["3d", "24h"]})
    targets = await reminder_targets(pool, settings, date_from=NOW.date() - timedelta(days=1),
                                     date_to=NOW.date() + timedelta(days=3),
                                     now=datetime(2026, 11, 25, 12, 0, tzinfo=MSK))  # fmt: skip
    store = CampaignStore(pool)
    cid = await store.create("show rate", "reminder", settings, "test")
    assert await store.add_targets(cid, targets) == 8  # two reminders per appointment
    # 501 (doctor 1) and 502 (doctor 2) came; 503 (doctor 1) did not
    for phone, status in (("+79990000501", "came"), ("+79990000502", "came"),
                          ("+79990000503", "no_show")):  # fmt: skip
        await pool.execute(
            "UPDATE crm_appointments SET status = $2 WHERE id = $1", ids[phone], status
        )
    stats = await campaign_stats(pool, cid)
    by_doctor = {
        r["key"]: (r["came"], r["no_show"], r["show_rate"]) for r in stats["show_rate_by_doctor"]
    }
    assert by_doctor == {"Иванова Анна Петровна": (1, 1, 0.5), "Петров Олег Ильич": (1, 0, 1.0)}
    by_rule = {r["key"]: r["show_rate"] for r in stats["show_rate_by_rule"]}
    assert by_rule == {"days_before:3": round(2 / 3, 3), "hours_before:24": round(2 / 3, 3)}
    assert stats["targets"] == 8 and stats["outcomes"] == {"pending": 8}
    text = await export_csv(pool, cid, "Europe/Moscow")
    assert "'=HYPERLINK(1)" in text  # a spreadsheet will not run it
    assert "2026-12-03 10:00" in text
