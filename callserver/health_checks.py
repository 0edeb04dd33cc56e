"""One health check per component for ``GET /healthz``."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING

from redis.asyncio.connection import AbstractConnection

from callserver.web.health import ComponentHealth, HealthCheck

if TYPE_CHECKING:
    from callserver.app import CallServer


def build_health_checks(
    server: CallServer, plugin_checks: Mapping[str, HealthCheck]
) -> dict[str, HealthCheck]:
    config = server.config

    async def ami() -> ComponentHealth:
        if not config.ami.enabled:
            return ComponentHealth("disabled")
        state = server.ami.state
        if state == "connected":
            return ComponentHealth("ok", extra={"reconnects": server.ami.reconnects})
        return ComponentHealth("down", f"{state}: {server.ami.last_error or ''}".rstrip(": "))

    async def ari() -> ComponentHealth:
        if not config.ari.enabled:
            return ComponentHealth("disabled")
        if server.ari.connected:
            return ComponentHealth("ok", extra={"reconnects": server.ari.reconnects})
        return ComponentHealth("down", str(server.ari.last_error or "not connected"))

    async def agi() -> ComponentHealth:
        if not config.agi.enabled:
            return ComponentHealth("disabled")
        return ComponentHealth(
            "ok", extra={"port": server.agi.port, "sessions_active": server.agi.sessions_active}
        )

    async def database() -> ComponentHealth:
        if not server.database.ready.is_set():
            return ComponentHealth("down", server.database.last_error or "connecting")
        latency = await server.database.ping()
        writer = server.writer
        if not writer.connected and writer.buffered:
            return ComponentHealth("degraded", f"writer buffering {writer.buffered} events")
        return ComponentHealth(
            "ok", extra={"buffered": writer.buffered, "latency_ms": round(latency * 1000, 2)}
        )

    async def redis() -> ComponentHealth:
        pool = server.redis.connection_pool
        latency = await redis_ping(pool.connection_class(**pool.connection_kwargs))
        return ComponentHealth("ok", extra={"latency_ms": round(latency * 1000, 2)})

    return {
        "ami": ami,
        "ari": ari,
        "agi": agi,
        "database": database,
        "redis": redis,
        **plugin_checks,
    }


async def redis_ping(conn: AbstractConnection) -> float:
    """PING over ``conn``, a connection of its own (opened, then closed); returns the latency in
    seconds. Not through the workload's pool: redis-py's pool (100 connections by default)
    raises ``MaxConnectionsError`` — a ``ConnectionError`` — when a burst holds them all, and
    the check then reported a busy Redis as unreachable. The caller bounds the time (the
    connection's own ``socket_timeout`` too). Raises redis-py errors / OSError."""
    started = time.perf_counter()
    try:
        await conn.connect()  # type: ignore[no-untyped-call]
        await conn.send_command("PING")
        await conn.read_response()
    finally:
        await conn.disconnect()
    return time.perf_counter() - started
