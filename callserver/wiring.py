"""Wiring of the domain packages (CRM bridge, routing) into the server.

Kept apart from ``app.py`` so the core composition stays readable; everything here is built
from the config and the core components, and owned (started/stopped) through ``Extensions``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web

from callserver.asterisk.agi_server import AgiHandler
from callserver.core.bus import Subscriber
from callserver.metrics import Reader
from callserver.web.health import HealthCheck

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
    return Extensions()
