"""CallServer start-up and shutdown against the real PostgreSQL and Redis fixtures."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable

import pytest

from callserver.app import CallServer
from callserver.config import load_config
from callserver.plugin_api import Contribution, PluginDeps
from callserver.plugins import LoadedPlugin, load_plugins
from devtools.services import free_port


class _ClosingWatcher:
    """A plugin whose component calls ``on_close`` when the server stops it."""

    name = "closing-watcher"
    config_type = None
    migrations = None
    requires: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()
    provides: tuple[str, ...] = ()

    def __init__(self, on_close: Callable[[], None]) -> None:
        self.on_close = on_close

    def validate(self, config: None) -> None:
        return None

    def build(self, config: None, deps: PluginDeps) -> Contribution:
        return Contribution(components=[self])

    async def start(self) -> None:
        return None

    async def aclose(self) -> None:
        self.on_close()


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


async def test_shutdown_writes_buffered_calls_before_closing_the_other_components(
    fresh_pg_dsn: str, redis_url: str, redis_prefix: str
) -> None:
    """Bug: aclose() flushed the call writer last, after the CRM bridge, routing and the Redis
    publisher had each been given up to 15 s; a process manager's stop timeout (docker's
    default is 10 s) could kill the process first and the buffered calls were lost."""
    from tests.integration.store_support import lifecycle

    config = load_config(None, env={
        "CALLSERVER_AMI_ENABLED": "false",
        "CALLSERVER_ARI_ENABLED": "false",
        "CALLSERVER_AGI_ENABLED": "false",
        "CALLSERVER_DATABASE_DSN": fresh_pg_dsn,
        "CALLSERVER_DATABASE_FLUSH_INTERVAL": "60",
        "CALLSERVER_REDIS_URL": redis_url,
        "CALLSERVER_REDIS_PREFIX": redis_prefix,
        "CALLSERVER_HTTP_PORT": str(free_port()),
        "CALLSERVER_HTTP_API_TOKEN": "t",
    })  # fmt: skip
    unwritten_when_others_closed: list[int] = []
    watcher = _ClosingWatcher(
        lambda: unwritten_when_others_closed.append(server.writer.pending_calls)
    )
    plugins = [*load_plugins(config), LoadedPlugin(watcher, None)]
    server = await CallServer.create(config, plugins)
    await server.start()
    async with asyncio.timeout(30):
        await server.database.ready.wait()
    for event in lifecycle("shutdown-order-1"):
        server.bus.publish(event)
    await server.aclose()
    assert unwritten_when_others_closed == [0]
