"""SQL helpers shared by export, erasure and retention: which tables exist, quoting, batches.

Other plugins' tables are reached by name, only when they exist (a clinic may not run every
plugin). Every table with a text ``phone`` column is treated as holding a patient's number."""

from __future__ import annotations

import json
from typing import Any

import asyncpg
from asyncpg.pool import PoolConnectionProxy

Conn = asyncpg.Connection | PoolConnectionProxy

def card_key_prefix(redis_prefix: str) -> str:
    """Where the CRM bridge caches patient cards in Redis: its plugin's ``crm:`` segment, then
    ``crm:card:<E.164>`` (``crm_bridge.cache``; the privacy tests check it against the real
    plugin)."""
    return f"{redis_prefix}crm:crm:card:"


SKIP_PHONE_TABLES = frozenset({"crm_patient_phones"})
"""Handled through the patient it belongs to (erasing the patient removes it)."""


def ident(name: str) -> str:
    """``name`` quoted as a PostgreSQL identifier (names come from the catalogue, but still)."""
    return '"' + name.replace('"', '""') + '"'


async def existing_tables(conn: Conn, names: list[str]) -> set[str]:
    rows = await conn.fetch(
        "SELECT table_name FROM information_schema.tables"
        " WHERE table_schema = current_schema() AND table_name = ANY($1::text[])",
        names,
    )
    return {r["table_name"] for r in rows}


async def phone_tables(conn: Conn) -> list[str]:
    """Tables of this schema with a text ``phone`` column (any plugin's), sorted."""
    rows = await conn.fetch(
        "SELECT table_name FROM information_schema.columns WHERE table_schema = current_schema()"
        " AND column_name = 'phone' AND data_type = 'text' ORDER BY table_name"
    )
    return [r["table_name"] for r in rows if r["table_name"] not in SKIP_PHONE_TABLES]


async def column_of(
    conn: Conn, table: str, candidates: tuple[str, ...]
) -> str | None:
    """The first of ``candidates`` that is a column of ``table``, else None."""
    rows = await conn.fetch(
        "SELECT column_name FROM information_schema.columns"
        " WHERE table_schema = current_schema() AND table_name = $1",
        table,
    )
    present = {r["column_name"] for r in rows}
    return next((c for c in candidates if c in present), None)


async def rows_json(conn: Conn, sql: str, *args: Any) -> list[dict[str, Any]]:
    """Rows of ``sql`` (which selects one ``to_jsonb(...)`` column) as dicts: every column
    type (timestamps, numerics, arrays, jsonb) rendered the way PostgreSQL writes JSON."""
    return [json.loads(r[0]) for r in await conn.fetch(sql, *args)]


async def delete_in_batches(
    pool: asyncpg.Pool, table: str, where: str, args: tuple[Any, ...], batch: int
) -> int:
    """``DELETE FROM table WHERE <where>`` at most ``batch`` rows per statement (each its own
    short transaction, so locks are brief). ``where`` uses $1…; ``$N+1`` is the batch size.
    Returns the rows deleted."""
    n = len(args) + 1
    sql = (f"DELETE FROM {ident(table)} WHERE ctid = ANY(ARRAY("
           f"SELECT ctid FROM {ident(table)} WHERE {where} LIMIT ${n}))")  # fmt: skip
    total = 0
    while True:
        async with pool.acquire() as conn:
            status = await conn.execute(sql, *args, batch)
        deleted = int(status.rsplit(" ", 1)[1])
        total += deleted
        if deleted < batch:
            return total
