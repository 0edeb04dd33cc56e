"""One health check per component for ``GET /healthz``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

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
        await server.redis.ping()
        return ComponentHealth("ok")

    return {
        "ami": ami,
        "ari": ari,
        "agi": agi,
        "database": database,
        "redis": redis,
        **plugin_checks,
    }
