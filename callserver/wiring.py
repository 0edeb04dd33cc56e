"""Wiring of the domain packages (CRM bridge, routing) into the server.

Kept apart from ``app.py`` so the core composition stays readable; everything here is built
from the config and the core components, and owned (started/stopped) through ``Extensions``.
"""

from __future__ import annotations

import functools
import logging
import os
import socket
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web

from callserver.asterisk.agi_server import AgiHandler
from callserver.core.bus import Subscriber
from callserver.metrics import Reader
from callserver.web.health import HealthCheck
from crm_bridge.wiring import CrmBridge

if TYPE_CHECKING:
    from callserver.app import CallServer

log = logging.getLogger(__name__)


@dataclass
class Extensions:
    agi_handlers: dict[str, AgiHandler] = field(default_factory=dict)
    routes: list[web.RouteDef] = field(default_factory=list)
    bus_subscribers: list[Subscriber] = field(default_factory=list)
    health_checks: dict[str, HealthCheck] = field(default_factory=dict)
    metrics: list[tuple[str, str, Reader]] = field(default_factory=list)
    starters: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    on_database_ready: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    """Start-up steps that need the schema (run after migrations)."""
    ari_handlers: list[Callable[[Mapping[str, Any]], Awaitable[None] | None]] = field(
        default_factory=list
    )

    async def start(self) -> None:
        for starter in self.starters:
            await starter()

    async def aclose(self) -> None:
        for closer in reversed(self.closers):
            try:
                await closer()
            except Exception:
                log.exception("error while stopping %s", getattr(closer, "__qualname__", closer))

    async def on_ari_event(self, event: dict[str, Any]) -> None:
        for handler in self.ari_handlers:
            result = handler(event)
            if result is not None:
                await result


def build_extensions(server: CallServer) -> Extensions:
    ext = Extensions()
    _wire_crm(server, ext)
    return ext


def _wire_crm(server: CallServer, ext: Extensions) -> CrmBridge:
    config = server.config
    bridge = CrmBridge.build(
        config.crm,
        pool=server.pool,
        redis=server.redis,
        redis_prefix=config.redis.prefix + "crm:",
        instance_id=f"{socket.gethostname()}-{os.getpid()}",
    )
    server.crm = bridge
    ext.bus_subscribers.append(bridge.service.on_event)
    ext.routes.extend(bridge.routes(prefix="/api/crm"))
    # the outbox and its workers need their tables: start after migrations
    ext.on_database_ready.append(bridge.start)
    ext.closers.append(bridge.aclose)
    for name in ("crm_pushes_delivered_total", "crm_push_failures_total",
                 "crm_events_dropped_total"):
        ext.metrics.append((f"callserver_{name}", name.replace("_", " "),
                            functools.partial(_counter, bridge, name)))  # fmt: skip
    return bridge


def _counter(bridge: CrmBridge, name: str) -> int:
    return bridge.counters()[name]
