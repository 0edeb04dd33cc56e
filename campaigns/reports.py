"""Results of a campaign: dialled, reached, confirmed, cancelled, rescheduled, no answer, opted
out; the show rate (came / (came + no-show)) per doctor and per reminder schedule; CSV export."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg

_SHOW = (
    "SELECT {col} AS key, count(DISTINCT a.id) FILTER (WHERE a.status = 'came') AS came, "
    "count(DISTINCT a.id) FILTER (WHERE a.status = 'no_show') AS no_show FROM campaign_targets t "
    "JOIN crm_appointments a ON a.id = t.appointment_id WHERE t.campaign_id = $1 "
    "GROUP BY {col} ORDER BY {col}"
)


async def campaign_stats(pool: asyncpg.Pool, cid: int, *, with_crm: bool = True) -> dict[str, Any]:
    """Counts of one campaign; ``show_rate`` lists need the embedded CRM's appointments."""
    dials = await pool.fetchrow(
        "SELECT count(*) AS dialled, count(*) FILTER (WHERE result = 'answered') AS reached, "
        "count(*) FILTER (WHERE result = 'no_answer') AS no_answer, "
        "count(*) FILTER (WHERE result = 'busy') AS busy, "
        "count(*) FILTER (WHERE result IN ('failed', 'unknown')) AS failed, "
        "count(*) FILTER (WHERE result = 'dialing') AS in_progress "
        "FROM campaign_dials WHERE campaign_id = $1", cid,
    )  # fmt: skip
    rows = await pool.fetch(
        "SELECT CASE WHEN state = 'done' THEN outcome ELSE state END AS k, count(*) AS n "
        "FROM campaign_targets WHERE campaign_id = $1 GROUP BY 1", cid,
    )  # fmt: skip
    by_outcome = {r["k"] or "pending": r["n"] for r in rows}
    stats: dict[str, Any] = {
        **dict(dials or {}),
        "targets": sum(by_outcome.values()),
        "confirmed": by_outcome.get("confirmed", 0),
        "cancelled": by_outcome.get("cancelled", 0),
        "rescheduled": by_outcome.get("reschedule", 0),
        "opted_out": by_outcome.get("opt_out", 0) + by_outcome.get("do_not_call", 0),
        "unreached": by_outcome.get("unreached", 0),
        "outcomes": by_outcome,
    }
    if with_crm:
        stats["show_rate_by_doctor"] = await _show(pool, cid, "t.doctor")
        stats["show_rate_by_rule"] = await _show(pool, cid, "t.rule")
    return stats


async def _show(pool: asyncpg.Pool, cid: int, col: str) -> list[dict[str, Any]]:
    rows = await pool.fetch(_SHOW.format(col=col), cid)
    return [
        {"key": r["key"], "came": r["came"], "no_show": r["no_show"],
         "show_rate": round(r["came"] / (r["came"] + r["no_show"]), 3)
         if r["came"] + r["no_show"] else None}
        for r in rows
    ]  # fmt: skip


_CSV_COLS = ["phone", "full_name", "doctor", "starts_at", "rule", "attempts", "last_result",
             "outcome", "state"]  # fmt: skip


def _cell(value: object, zone: ZoneInfo) -> str:
    if isinstance(value, datetime):
        return value.astimezone(zone).strftime("%Y-%m-%d %H:%M")
    text = "" if value is None else str(value)
    # a spreadsheet must not run a cell as a formula (CSV injection)
    return "'" + text if text[:1] in ("=", "+", "-", "@") and not text[1:].isdigit() else text


async def export_csv(pool: asyncpg.Pool, cid: int, tz: str) -> str:
    """Every target of the campaign with its result, clinic-local times."""
    rows = await pool.fetch(
        f"SELECT {', '.join(_CSV_COLS)} FROM campaign_targets WHERE campaign_id = $1 ORDER BY id",
        cid,
    )
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(_CSV_COLS)
    zone = ZoneInfo(tz)
    for r in rows:
        writer.writerow([_cell(r[c], zone) for c in _CSV_COLS])
    return out.getvalue()
