"""CallServer start-up and shutdown against the real PostgreSQL and Redis fixtures."""

from __future__ import annotations

import asyncio
import socket

import pytest

from callserver.app import CallServer
from callserver.config import load_config
from devtools.services import free_port

OWNED_TASKS = {"database-migrate", "call-writer", "redis-live-state"}


async def test_a_failed_start_releases_what_it_had_started(
    fresh_pg_dsn: str, redis_url: str, redis_prefix: str
) -> None:
    """Bug: when start() failed half-way (here the HTTP port is taken) the FastAGI listener,
    the migration loop, the call writer and the Redis publisher kept running with nobody to
    stop them (run_server only called aclose() after a successful start)."""
    agi_port = free_port()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        config = load_config(None, env={
            "CALLSERVER_AMI_ENABLED": "false",
            "CALLSERVER_ARI_ENABLED": "false",
            "CALLSERVER_AGI_PORT": str(agi_port),
            "CALLSERVER_DATABASE_DSN": fresh_pg_dsn,
            "CALLSERVER_REDIS_URL": redis_url,
            "CALLSERVER_REDIS_PREFIX": redis_prefix,
            "CALLSERVER_HTTP_PORT": str(taken.getsockname()[1]),
            "CALLSERVER_HTTP_API_TOKEN": "t",
        })  # fmt: skip
        server = await CallServer.create(config)
        with pytest.raises(OSError):
            await server.start()
    with pytest.raises(OSError):
        _, writer = await asyncio.open_connection("127.0.0.1", agi_port)
        writer.close()
    running = {t.get_name() for t in asyncio.all_tasks() if not t.done()}
    assert not running & OWNED_TASKS
