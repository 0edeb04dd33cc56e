"""Marketer reports, operator KPIs and staffing, read from PostgreSQL.

Dates are the clinic's calendar days (``[dashboards] timezone``), both ends included. Every
query runs in a read-only transaction with a statement timeout (``timeout`` seconds) and a
larger ``work_mem`` for the hash aggregates.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg

from dashboards import report_sql as q
from dashboards.errors import InvalidReportRequest
from dashboards.staffing import Traffic, staffing_table

MAX_DAYS = 366
FILTERS = ("clinic", "source", "campaign", "did")


@dataclass(frozen=True)
class ReportFilters:
    date_from: date
    date_to: date
    clinic: str = ""
    source: str = ""
    campaign: str = ""
    did: str = ""

    @classmethod
    def parse(cls, query: Mapping[str, str], today: date) -> ReportFilters:
        """From query parameters ``from``/``to`` (YYYY-MM-DD, default: the last 7 days) and the
        filters. Raises InvalidReportRequest naming the field."""
        d_to = _date(query.get("to"), "to", today)
        d_from = _date(query.get("from"), "from", d_to - timedelta(days=6))
        if d_from > d_to:
            raise InvalidReportRequest(message="'from' is after 'to'", field="from")
        if (d_to - d_from).days >= MAX_DAYS:
            raise InvalidReportRequest(message=f"at most {MAX_DAYS} days", field="to")
        values = {k: query.get(k, "").strip()[:100] for k in FILTERS}
        return cls(d_from, d_to, **values)

    def bounds(self, tz: ZoneInfo) -> tuple[datetime, datetime]:
        start = datetime(self.date_from.year, self.date_from.month, self.date_from.day, tzinfo=tz)
        end_day = self.date_to + timedelta(days=1)
        return start, datetime(end_day.year, end_day.month, end_day.day, tzinfo=tz)

    def args(self, tz: ZoneInfo) -> list[Any]:
        start, end = self.bounds(tz)
        return [start, end, self.clinic, self.source, self.campaign, self.did]

    def to_dict(self) -> dict[str, str]:
        return {"from": self.date_from.isoformat(), "to": self.date_to.isoformat(),
                **{k: getattr(self, k) for k in FILTERS}}  # fmt: skip


def _date(raw: str | None, field: str, default: date) -> date:
    if not raw:
        return default
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise InvalidReportRequest(message=f"{field}: expected YYYY-MM-DD", field=field) from None


@dataclass(frozen=True)
class ReportSettings:
    tz: ZoneInfo
    booking_window_hours: float
    callback_window_hours: float
    callback_due_minutes: float
    sl_seconds: float
    sl_target: float
    wrapup_seconds: float
    staffing_weeks: int
    timeout: float = 30.0


class Reports:
    """The report queries over a pool. Raise asyncpg errors / TimeoutError to the caller."""

    def __init__(self, pool: asyncpg.Pool, settings: ReportSettings) -> None:
        self._pool = pool
        self.s = settings

    async def _fetch(
        self, sql: str, *args: Any, settings: tuple[str, ...] = ()
    ) -> list[asyncpg.Record]:
        limit = int(self.s.timeout * 1000)
        async with (asyncio.timeout(self.s.timeout), self._pool.acquire() as conn,
                    conn.transaction(readonly=True)):  # fmt: skip
            await conn.execute("SET LOCAL work_mem = '128MB'")
            await conn.execute("SET LOCAL jit = off")
            await conn.execute(f"SET LOCAL statement_timeout = {limit}")
            for statement in settings:
                await conn.execute(statement)
            rows: list[asyncpg.Record] = await conn.fetch(sql, *args)
            return rows

    async def tables(self) -> tuple[bool, bool]:
        """(routing's decisions exist, the embedded CRM's tables exist)."""
        row = await self._pool.fetchrow(
            "SELECT to_regclass('route_decisions') IS NOT NULL AS d,"
            " to_regclass('crm_appointments') IS NOT NULL AS c"
        )
        assert row is not None
        return bool(row["d"]), bool(row["c"])

    async def marketer(self, f: ReportFilters, by: str) -> dict[str, Any]:
        """Rows per ``by`` (source, campaign, did, clinic) and a total; see the README."""
        if by not in q.DIMENSIONS:
            raise InvalidReportRequest(message=f"by: one of {', '.join(q.DIMENSIONS)}", field="by")
        has_decisions, has_crm = await self.tables()
        rows = await self._fetch(
            q.summary_sql(by), *f.args(self.s.tz), settings=q.SUMMARY_SETTINGS
        )
        out = [_marketer_row(r) for r in rows]
        total = next((r for r in out if r["key"] is None), _marketer_row(None))
        return {"filters": f.to_dict(), "by": by, "rows": [r for r in out if r["key"] is not None],
                "total": total, "crm": has_crm, "tracking": has_decisions}  # fmt: skip

    async def heatmap(self, f: ReportFilters) -> dict[str, Any]:
        rows = await self._fetch(q.HEATMAP_SQL, *f.args(self.s.tz))
        cells = [{"dow": r["dow"], "hour": r["hour"], "calls": r["calls"], "missed": r["missed"]}
                 for r in rows]  # fmt: skip
        return {"filters": f.to_dict(), "cells": cells}

    async def operators(self, f: ReportFilters) -> dict[str, Any]:
        """Per-operator KPIs and the team's total over the date range (filters other than
        dates do not apply: operators answer every source)."""
        _, has_crm = await self.tables()
        start, end = f.bounds(self.s.tz)
        rows = await self._fetch(q.OPERATORS_SQL, start, end, self.s.callback_due_minutes)
        ops = [_operator_row(dict(r)) for r in rows]
        return {"filters": f.to_dict(), "operators": ops, "team": _team(ops), "crm": has_crm}

    async def staffing(self, today: date, queue: str = "", weeks: int | None = None
                       ) -> dict[str, Any]:  # fmt: skip
        """The last ``weeks`` full weeks before ``today`` (clinic days), per hour of the week."""
        weeks = weeks or self.s.staffing_weeks
        end = datetime(today.year, today.month, today.day, tzinfo=self.s.tz)
        start = end - timedelta(weeks=weeks)
        tz = self.s.tz.key
        traffic = await self._fetch(q.STAFFING_SQL, start, end, queue)
        samples = await self._fetch(q.SAMPLES_SQL, start, end, tz, queue)
        rows = staffing_table(
            [Traffic(r["dow"], r["hour"], r["calls"], r["aht"]) for r in traffic], weeks,
            {(r["dow"], r["hour"]): float(r["logged_in"]) / 1.0 for r in samples},
            sl_seconds=self.s.sl_seconds, sl_target=self.s.sl_target,
            wrapup_seconds=self.s.wrapup_seconds,
        )  # fmt: skip
        last = (end - timedelta(days=1)).date()
        return {"from": start.date().isoformat(), "to": last.isoformat(),
                "weeks": weeks, "queue": queue, "rows": rows,
                "sl_seconds": self.s.sl_seconds, "sl_target": self.s.sl_target}  # fmt: skip


def _ratio(a: int, b: int) -> float | None:
    return round(a / b, 4) if b else None


def _marketer_row(r: asyncpg.Record | None) -> dict[str, Any]:
    keys = ("calls", "unique_callers", "new_callers", "returning_callers", "answered", "missed",
            "called_back", "reached", "booked", "came", "visit_known")  # fmt: skip
    d: dict[str, Any] = {k: int(r[k]) if r is not None else 0 for k in keys}
    d["key"] = r["key"] if r is not None else None
    d["conversion"] = _ratio(d["booked"], d["unique_callers"])
    d["show_rate"] = _ratio(d["came"], d["visit_known"])
    d["answer_rate"] = _ratio(d["answered"], d["calls"])
    return d


def _operator_row(r: dict[str, Any]) -> dict[str, Any]:
    for k in ("asa", "aht"):
        r[k] = None if r[k] is None else round(float(r[k]), 1)
    r["conversion"] = _ratio(r["booked"], r["callers"])
    r["on_time_rate"] = _ratio(r["callbacks_on_time"], r["callbacks"])
    return r


def _team(ops: list[dict[str, Any]]) -> dict[str, Any]:
    n = sum(o["handled"] for o in ops)
    team: dict[str, Any] = {k: sum(o[k] for o in ops) for k in
                            ("handled", "callers", "booked", "missed", "callbacks",
                             "callbacks_on_time")}  # fmt: skip
    for k in ("asa", "aht"):
        weighted = sum((o[k] or 0) * o["handled"] for o in ops if o[k] is not None)
        team[k] = round(weighted / n, 1) if n else None
    team["conversion"] = _ratio(team["booked"], team["callers"])
    team["on_time_rate"] = _ratio(team["callbacks_on_time"], team["callbacks"])
    return team
