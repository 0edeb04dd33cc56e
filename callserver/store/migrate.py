"""Plain-SQL migrations, applied in order and recorded in ``schema_migrations``.

Each package that owns tables keeps ``NNNN_name.sql`` files in its own ``migrations/`` folder
(``callserver/store/migrations``, ``crm_bridge/migrations`` …). A migration is identified by
``<namespace>/<file name>``; each runs in its own transaction, once. Concurrent starters are
serialised with an advisory lock, so two instances starting together apply nothing twice.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from callserver.errors import CallserverError

log = logging.getLogger(__name__)

_LOCK_KEY = 0x63616C6C  # "call"


class MigrationError(CallserverError):
    error_id = "migration-failed"


@dataclass(frozen=True)
class MigrationSource:
    namespace: str
    directory: Path

    def files(self) -> list[Path]:
        return sorted(p for p in self.directory.glob("*.sql") if p.name[:4].isdigit())


def core_sources() -> list[MigrationSource]:
    """The core's own tables (calls, timelines); plugins add theirs (``callserver.plugins``)."""
    return [MigrationSource("callserver", Path(__file__).parent / "migrations")]


async def apply_migrations(
    conn: asyncpg.Connection | PoolConnectionProxy, sources: Sequence[MigrationSource]
) -> list[str]:
    """Apply every migration not yet recorded; returns the names applied now.

    Raises MigrationError naming the file when one fails (its transaction is rolled back).
    """
    applied_now: list[str] = []
    await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_KEY)
    try:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {r["name"] for r in await conn.fetch("SELECT name FROM schema_migrations")}
        for source in sources:
            for path in source.files():
                name = f"{source.namespace}/{path.name}"
                if name in done:
                    continue
                sql = path.read_text(encoding="utf-8")
                try:
                    async with conn.transaction():
                        await conn.execute(sql)
                        await conn.execute("INSERT INTO schema_migrations(name) VALUES ($1)", name)
                except asyncpg.PostgresError as exc:
                    raise MigrationError(
                        message=f"migration {name} failed: {exc}", name=name
                    ) from exc
                log.info("applied migration %s", name)
                applied_now.append(name)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_KEY)
    return applied_now
