"""Read side of the ``calls`` table: recent calls and one call with its timeline.

Rows come back as JSON-ready dicts: times as ISO 8601 strings (UTC, ``…+00:00``) or ``None``,
durations as float seconds or ``None``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from typing import Any

import asyncpg

from callserver.core.text import text_problem
from callserver.store.postgres import store_errors

MAX_ID = 200
"""Longer than any Asterisk linkedid; a longer id is not looked up."""

RECENT_FIELDS = (
    "id",
    "linkedid",
    "direction",
    "caller",
    "caller_e164",
    "did",
    "ad_source",
    "queue",
    "agent",
    "state",
    "started_at",
    "answered_at",
    "ended_at",
    "wait_seconds",
    "talk_seconds",
    "hold_seconds",
)

_RECENT_SQL = (
    "SELECT id, id AS linkedid, direction, caller, caller_e164, did, ad_source, queue, agent,"
    " state, started_at, answered_at, ended_at, wait_seconds, talk_seconds, hold_seconds"
    " FROM calls ORDER BY started_at DESC, id DESC LIMIT $1"
)
_GET_SQL = "SELECT *, id AS linkedid FROM calls WHERE id = $1"
_EVENTS_SQL = (
    "SELECT type, at, payload::text AS payload FROM call_events WHERE call_id = $1 ORDER BY at, id"
)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    return value


def _row_dict(row: asyncpg.Record) -> dict[str, Any]:
    out = {key: _jsonable(value) for key, value in row.items()}
    for key in _JSON_COLUMNS:
        if isinstance(out.get(key), str):
            out[key] = json.loads(out[key])
    return out


_JSON_COLUMNS = ("variables", "agents", "payload")


class CallRepository:
    """Queries over ``calls`` / ``call_events`` through an asyncpg pool (not owned).

    Every method is bounded by ``timeout`` seconds and raises ``StoreUnavailable`` /
    ``StoreTimeout`` / ``StoreQueryError`` (``callserver.store.errors``) on failure.
    """

    def __init__(self, pool: asyncpg.Pool, *, timeout: float = 5.0) -> None:
        self._pool = pool
        self._timeout = timeout

    async def recent(self, limit: int) -> list[dict[str, Any]]:
        """The ``limit`` most recently started calls, newest first, with ``RECENT_FIELDS``.

        Raises ValueError when ``limit`` < 1.
        """
        if limit < 1:
            raise ValueError(f"limit must be >= 1, got {limit}")
        with store_errors("recent calls"):
            async with asyncio.timeout(self._timeout):
                rows = await self._pool.fetch(_RECENT_SQL, limit)
        return [_row_dict(row) for row in rows]

    async def get(self, call_id: str) -> dict[str, Any] | None:
        """Every column of one call plus ``linkedid`` and ``events``: its timeline, oldest first,
        each ``{"type", "at", "payload"}``; ``agents`` lists each agent's turn (talk and hold
        seconds per agent). ``None`` when there is no such call (also for an id no stored call
        can have: NUL, a lone surrogate, more than ``MAX_ID`` characters)."""
        if len(call_id) > MAX_ID or text_problem(call_id) is not None:
            return None
        with store_errors("get call"):
            async with asyncio.timeout(self._timeout), self._pool.acquire() as conn:
                row = await conn.fetchrow(_GET_SQL, call_id)
                if row is None:
                    return None
                events = await conn.fetch(_EVENTS_SQL, call_id)
        call = _row_dict(row)
        call["events"] = [_row_dict(e) for e in events]
        return call
