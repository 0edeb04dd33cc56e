"""The dashboards' own PostgreSQL writes and the board's start-up seed.

Tables (``dashboards/migrations``): ``dashboards_spy_audit`` (who listened to whom),
``dashboards_agent_samples`` (logged-in operators per minute, for staffing),
``dashboards_overload_log`` (alarm transitions). Every call has a deadline (``timeout`` s).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

import asyncpg

from callserver.core.events import CallSnapshot
from callserver.plugin_api import LiveView
from dashboards.board import LiveBoard
from dashboards.kpi import record_abandon, record_answer, record_talk
from dashboards.overload import Transition

log = logging.getLogger(__name__)
TIMEOUT = 10.0

SEED_SQL = """
SELECT id, direction, caller, did, queue, agent, ad_source, state,
       extract(epoch FROM started_at) AS started, extract(epoch FROM queued_at) AS queued,
       extract(epoch FROM answered_at) AS answered, extract(epoch FROM ended_at) AS ended,
       COALESCE(wait_seconds, extract(epoch FROM answered_at - queued_at)) AS wait,
       talk_seconds
FROM calls
WHERE started_at >= $1 AND started_at < $2
ORDER BY started_at
"""


def _ts(at: float) -> datetime:
    return datetime.fromtimestamp(at, UTC)


async def seed_board(pool: asyncpg.Pool, board: LiveBoard, now: float) -> int:
    """Count today's calls already in PostgreSQL into ``board`` (so a restart keeps the day's
    figures) and make the board ignore events older than ``now``. Returns the rows read."""
    start = board.midnight(now)
    board.ignore_before = now
    async with asyncio.timeout(TIMEOUT):
        rows = await pool.fetch(SEED_SQL, _ts(start - 86400), _ts(now))
    for r in rows:
        _seed_row(board, r, start, now)
    return len(rows)


def _seed_row(board: LiveBoard, r: asyncpg.Record, start: float, now: float) -> None:
    policy = board.s.policy
    queued, answered, ended = r["queued"], r["answered"], r["ended"]
    if r["queue"] and queued is not None and answered is not None and answered < now:
        record_answer(board.seed_bucket(r["queue"], float(answered)), float(r["wait"] or 0),
                      policy)  # fmt: skip
        if r["agent"] and answered >= start:
            board.seed_agent(r["agent"], float(answered)).calls_today += 1
    if ended is None or ended >= now:
        return
    if answered is not None and r["queue"]:
        record_talk(board.seed_bucket(r["queue"], float(ended)), float(r["talk_seconds"] or 0))
    elif answered is None and r["queue"] and queued is not None and r["state"] == "abandoned":
        record_abandon(board.seed_bucket(r["queue"], float(ended)), float(ended - queued), policy)
    if answered is None and r["direction"] == "inbound" and r["caller"]:
        board.add_missed(_snapshot(r), float(ended))
    elif answered is not None:
        board.reached(_snapshot(r))


def _snapshot(r: asyncpg.Record) -> CallSnapshot:
    return CallSnapshot(
        id=r["id"], linkedid=r["id"], direction=r["direction"], state=r["state"],
        caller=r["caller"], caller_name="", did=r["did"], ad_source=r["ad_source"],
        queue=r["queue"],
        agent=r["agent"], agent_name="", started_at=float(r["started"]),
    )  # fmt: skip


class DashboardsStore:
    """Writes of the dashboards' own tables."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def audit_spy(self, row: dict[str, Any]) -> int:
        async with asyncio.timeout(TIMEOUT):
            value = await self._pool.fetchval(
                "INSERT INTO dashboards_spy_audit (at, actor, supervisor, agent, mode, call_id,"
                " result, reason) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
                _ts(row["at"]), row["actor"], row["supervisor"], row["agent"], row["mode"],
                row["call_id"], row["result"], row["reason"],
            )  # fmt: skip
        return int(value)

    async def spy_audit(self, limit: int) -> list[dict[str, Any]]:
        async with asyncio.timeout(TIMEOUT):
            rows = await self._pool.fetch(
                "SELECT id, at, actor, supervisor, agent, mode, call_id, result, reason"
                " FROM dashboards_spy_audit ORDER BY at DESC, id DESC LIMIT $1", limit,
            )  # fmt: skip
        return [dict(r) for r in rows]

    async def log_transition(self, t: Transition) -> None:
        async with asyncio.timeout(TIMEOUT):
            await self._pool.execute(
                "INSERT INTO dashboards_overload_log (at, queue, state, since, estimated_wait,"
                " abandon_rate) VALUES ($1, $2, $3, $4, $5, $6)",
                _ts(t.at), t.queue, t.state, _ts(t.since),
                None if t.estimated_wait == float("inf") else t.estimated_wait, t.abandon_rate,
            )  # fmt: skip

    async def sample_agents(self, live: LiveView, at: float) -> None:
        """Record how many operators are logged in (not offline) per queue now."""
        counts = {name: q.logged_in_agents for name, q in live.queues(at).items()}
        async with asyncio.timeout(TIMEOUT):
            await self._pool.executemany(
                "INSERT INTO dashboards_agent_samples (at, queue, logged_in) VALUES ($1, $2, $3)",
                [(_ts(at), q, n) for q, n in counts.items()],
            )
