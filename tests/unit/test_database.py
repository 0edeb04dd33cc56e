"""callserver.database.Database: the background migration loop."""

from __future__ import annotations

import asyncio
import logging

import pytest

from callserver.config import DatabaseConfig
from callserver.database import Database


async def test_a_dsn_asyncpg_refuses_is_reported_not_lost_with_the_task(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Bug: asyncpg raised OverflowError for the DSN (port out of range), the migration task died
    silently, /healthz said "connecting" forever with no error and no log line."""
    database = Database(DatabaseConfig(dsn="postgresql://postgres@127.0.0.1:99999/x"), [])
    await database.start()
    try:
        await asyncio.sleep(0.3)  # the first attempt fails at once, before any socket
        assert "port" in database.last_error
        assert database._task is not None and not database._task.done()  # still retrying
        assert any(
            r.levelno >= logging.WARNING and "port" in r.getMessage() for r in caplog.records
        )
    finally:
        await database.aclose()
