"""A real ``CallServer`` (every installed plugin, real PostgreSQL and Redis) running on its own
event loop in a background thread, so synchronous hypothesis tests can throw requests at it over
real sockets. AMI, ARI and FastAGI are off unless a test turns them on."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import asyncpg
import redis.asyncio as aioredis

from callserver.app import CallServer
from callserver.config import load_config
from devtools.services import Services, free_port

T = TypeVar("T")
TOKEN = "fuzz-token"


class ThreadedServer:
    """``CallServer`` on a private loop in a daemon thread; ``call`` runs a coroutine there."""

    def __init__(self, env: dict[str, str]) -> None:
        self.config = load_config(None, env=env)
        self.port = self.config.http.port
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.server: CallServer | None = None

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def start(self) -> CallServer:
        self._thread.start()
        self.server = self.call(CallServer.create(self.config))
        self.call(self.server.start())
        self.call(asyncio.wait_for(self.server.database.ready.wait(), 30.0))
        return self.server

    def stop(self) -> None:
        if self.server is not None:
            self.call(self.server.aclose(), timeout=60.0)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10.0)
        self.loop.close()


def _admin_dsn_call(services: Services, sql: str) -> None:
    async def run() -> None:
        conn = await asyncpg.connect(services.pg_dsn, timeout=10)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run())


@contextmanager
def threaded_server(
    services: Services, name: str, **env: str
) -> Iterator[ThreadedServer]:
    """A fresh database ``name`` (dropped afterwards), a fresh Redis prefix, and the server."""
    _admin_dsn_call(services, f'CREATE DATABASE "{name}"')
    base = services.pg_dsn.rpartition("/")[0]
    live = ThreadedServer({
        "CALLSERVER_AMI_ENABLED": "false",
        "CALLSERVER_AGI_ENABLED": "false",
        "CALLSERVER_ARI_ENABLED": "false",
        "CALLSERVER_DATABASE_DSN": f"{base}/{name}",
        "CALLSERVER_REDIS_URL": services.redis_url,
        "CALLSERVER_REDIS_PREFIX": f"cstest:{name}:",
        "CALLSERVER_HTTP_PORT": str(free_port()),
        "CALLSERVER_HTTP_API_TOKEN": TOKEN,
        **env,
    })  # fmt: skip
    try:
        live.start()
        yield live
    finally:
        live.stop()
        _admin_dsn_call(services, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        asyncio.run(_drop_keys(services.redis_url, f"cstest:{name}:"))


async def _drop_keys(url: str, prefix: str) -> None:
    client = aioredis.from_url(url)
    try:
        keys = [k async for k in client.scan_iter(match=prefix + "*", count=1000)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()
