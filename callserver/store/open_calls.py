"""Calls PostgreSQL holds as still open: the facts a restarted callserver resumes from.

``PgOpenCalls.open_calls()`` is the ``callserver.asterisk.resync.OpenCallsStore`` port: after
every AMI (re)connect resync restores the listed calls the live model does not know from these
snapshots (caller, DID, source, queue, routing variables, agent turns) and closes, once, those
Asterisk no longer has (see ``callserver.core.model.resyncer``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from typing import Any

import asyncpg

from callserver.core.events import AgentTurn, CallSnapshot, CallState, Direction
from callserver.core.model import StoredCall
from callserver.store.postgres import store_errors

DEFAULT_LIMIT = 10_000
"""Open calls read per resync (oldest first): far more than a node carries at once."""

_OPEN_SQL = (
    "SELECT id, direction, state, caller, caller_name, did, ad_source, queue, agent, agent_name,"
    " started_at, queued_at, answered_at, wait_seconds, talk_seconds, hold_seconds,"
    " abandon_position, hangup_by, hangup_cause, variables::text AS variables,"
    " agents::text AS agents, updated_at"
    " FROM calls WHERE ended_at IS NULL ORDER BY started_at LIMIT $1"
)
_TURN_FIELDS = frozenset(AgentTurn.__dataclass_fields__)


def _ts(value: dt.datetime | None) -> float | None:
    return None if value is None else value.timestamp()


def _turns(text: str) -> tuple[AgentTurn, ...]:
    items = json.loads(text or "[]")
    return tuple(
        AgentTurn(**{k: v for k, v in item.items() if k in _TURN_FIELDS})
        for item in items
        if isinstance(item, dict)
    )


def _variables(text: str) -> tuple[tuple[str, str], ...]:
    values = json.loads(text or "{}")
    return tuple(sorted((str(k), str(v)) for k, v in values.items()))


def stored_call(row: asyncpg.Record | dict[str, Any]) -> StoredCall:
    """One ``calls`` row (as selected by ``_OPEN_SQL``) → its snapshot and last event time."""
    started_at = _ts(row["started_at"]) or 0.0
    state: CallState = row["state"]
    direction: Direction = row["direction"]
    snap = CallSnapshot(
        id=row["id"], linkedid=row["id"], direction=direction, state=state,
        caller=row["caller"], caller_name=row["caller_name"], did=row["did"],
        ad_source=row["ad_source"], queue=row["queue"], agent=row["agent"],
        agent_name=row["agent_name"], started_at=started_at, queued_at=_ts(row["queued_at"]),
        answered_at=_ts(row["answered_at"]), wait_seconds=row["wait_seconds"],
        talk_seconds=row["talk_seconds"], hold_seconds=row["hold_seconds"],
        abandon_position=row["abandon_position"], hangup_by=row["hangup_by"],
        hangup_cause=row["hangup_cause"], variables=_variables(row["variables"]),
        agents=_turns(row["agents"]),
    )  # fmt: skip
    return StoredCall(snap, _ts(row["updated_at"]) or started_at)


class PgOpenCalls:
    """Reads open calls through an asyncpg pool (not owned).

    ``open_calls`` is bounded by ``timeout`` seconds and raises ``StoreUnavailable`` /
    ``StoreTimeout`` / ``StoreQueryError`` (``callserver.store.errors``) on failure.
    """

    def __init__(
        self, pool: asyncpg.Pool, *, timeout: float = 5.0, limit: int = DEFAULT_LIMIT
    ) -> None:
        self._pool = pool
        self._timeout = timeout
        self._limit = limit

    async def open_calls(self) -> list[StoredCall]:
        """Calls without an end, oldest first (at most ``limit``)."""
        with store_errors("open calls"):
            async with asyncio.timeout(self._timeout):
                rows = await self._pool.fetch(_OPEN_SQL, self._limit)
        return [stored_call(row) for row in rows]
