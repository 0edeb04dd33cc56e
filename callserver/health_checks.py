"""One health check per component for ``GET /healthz``."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from redis.asyncio.connection import AbstractConnection

from callserver.web.health import ComponentHealth, HealthCheck

if TYPE_CHECKING:
    import redis.asyncio as aioredis

    from callserver.asterisk.agi_server import FastAgiServer
    from callserver.asterisk.ami_connection import AmiClient
    from callserver.asterisk.ari_client import AriClient
    from callserver.config import Config
    from callserver.database import Database
    from callserver.store.call_writer import CallWriter


@dataclass(frozen=True, slots=True)
class CoreHealthParts:
    """The core components ``/healthz`` looks at (the composition root hands them over)."""

    config: Config
    ami: AmiClient
    ari: AriClient
    agi: FastAgiServer
    database: Database
    writer: CallWriter
    redis: aioredis.Redis


def build_health_checks(
    parts: CoreHealthParts, plugin_checks: Mapping[str, HealthCheck]
) -> dict[str, HealthCheck]:
    config = parts.config

    async def ami() -> ComponentHealth:
        if not config.ami.enabled:
            return ComponentHealth("disabled")
        state = parts.ami.state
        if state == "connected":
            return ComponentHealth("ok", extra={"reconnects": parts.ami.reconnects})
        return ComponentHealth("down", f"{state}: {parts.ami.last_error or ''}".rstrip(": "))

    async def ari() -> ComponentHealth:
        if not config.ari.enabled:
            return ComponentHealth("disabled")
        if parts.ari.connected:
            return ComponentHealth("ok", extra={"reconnects": parts.ari.reconnects})
        return ComponentHealth("down", str(parts.ari.last_error or "not connected"))

    async def agi() -> ComponentHealth:
        if not config.agi.enabled:
            return ComponentHealth("disabled")
        return ComponentHealth(
            "ok", extra={"port": parts.agi.port, "sessions_active": parts.agi.sessions_active}
        )

    async def database() -> ComponentHealth:
        if not parts.database.ready.is_set():
            return ComponentHealth("down", parts.database.last_error or "connecting")
        latency = await parts.database.ping()
        writer = parts.writer
        if not writer.connected and writer.buffered:
            return ComponentHealth("degraded", f"writer buffering {writer.buffered} events")
        return ComponentHealth(
            "ok", extra={"buffered": writer.buffered, "latency_ms": round(latency * 1000, 2)}
        )

    async def redis() -> ComponentHealth:
        pool = parts.redis.connection_pool
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
