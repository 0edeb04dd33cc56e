"""Results of a campaign: dialled, reached, confirmed, cancelled, rescheduled, no answer, opted
out; the show rate (came / (came + no-show)) per doctor and per reminder schedule; a feedback
campaign's scores and comments (transcript, recording, length, transcription status); CSV
export."""

from __future__ import annotations

import csv
import io
import json
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
FEEDBACK_COLS = ["score", "comment", "comment_recording", "comment_duration_s",
                 "comment_status"]  # fmt: skip
"""A feedback campaign's extra columns: the ``data`` keys its answered dial recorded."""
MAX_FEEDBACK = 500


async def feedback_results(pool: asyncpg.Pool, cid: int,
                           limit: int = MAX_FEEDBACK) -> list[dict[str, Any]]:  # fmt: skip
    """The newest ``limit`` scored dials of a campaign: score, comment transcript, the
    comment's recording (path on the server), its length and transcription status."""
    rows = await pool.fetch(
        "SELECT id, phone, attempt, ended_at, outcome, data FROM campaign_dials "
        "WHERE campaign_id = $1 AND data ? 'score' ORDER BY id DESC LIMIT $2", cid, limit,
    )  # fmt: skip
    out = []
    for r in rows:
        data = json.loads(r["data"])
        out.append({"dial_id": r["id"], "phone": r["phone"], "attempt": r["attempt"],
                    "ended_at": r["ended_at"].timestamp() if r["ended_at"] else None,
                    "outcome": r["outcome"], **{k: str(data.get(k, "")) for k in FEEDBACK_COLS}})
    return out


def _cell(value: object, zone: ZoneInfo) -> str:
    if isinstance(value, datetime):
        return value.astimezone(zone).strftime("%Y-%m-%d %H:%M")
    text = "" if value is None else str(value)
    # a spreadsheet must not run a cell as a formula (CSV injection)
    return "'" + text if text[:1] in ("=", "+", "-", "@") and not text[1:].isdigit() else text


async def export_csv(pool: asyncpg.Pool, cid: int, tz: str, *, feedback: bool = False) -> str:
    """Every target of the campaign with its result, clinic-local times; ``feedback``: with
    the score and comment of its last scored dial (``FEEDBACK_COLS``)."""
    cols = ", ".join(f"t.{c}" for c in _CSV_COLS)
    extra = ""
    if feedback:
        cols += ", f.data"
        extra = ("LEFT JOIN LATERAL (SELECT data FROM campaign_dials d WHERE d.target_id = t.id "
                 "AND d.data ? 'score' ORDER BY d.id DESC LIMIT 1) f ON true ")
    rows = await pool.fetch(
        f"SELECT {cols} FROM campaign_targets t {extra}WHERE t.campaign_id = $1 ORDER BY t.id",
        cid,
    )  # fmt: skip
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(_CSV_COLS + (FEEDBACK_COLS if feedback else []))
    zone = ZoneInfo(tz)
    for r in rows:
        cells = [_cell(r[c], zone) for c in _CSV_COLS]
        if feedback:
            data = json.loads(r["data"]) if r["data"] else {}
            cells += [_cell(data.get(k, ""), zone) for k in FEEDBACK_COLS]
        writer.writerow(cells)
    return out.getvalue()
