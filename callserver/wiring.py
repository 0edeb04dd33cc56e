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

from callserver.after_hours import AfterHoursCallbacks
from callserver.asterisk.agi_server import AgiHandler
from callserver.asterisk.errors import AriError
from callserver.core.bus import Subscriber
from callserver.metrics import Reader
from callserver.web.health import HealthCheck
from crm_bridge.wiring import CrmBridge
from routing.agi_handler import make_route_handler
from routing.ari import ari_variables, request_from_stasis
from routing.http import routing_routes
from routing.live_model import LiveModelState
from routing.models import CallerProfile
from routing.overrides import OverrideBook
from routing.reload import RulesHolder
from routing.rules import RuleSet
from routing.service import RoutingPorts, RoutingService, RoutingSettings
from routing.store import PgDecisionLog, PgOverrideStore, PgTrackingSync

if TYPE_CHECKING:
    from callserver.app import CallServer

log = logging.getLogger(__name__)

_MEDIA_CHANNELS = ("UnicastRTP/", "Snoop/", "AudioSocket/", "Announcer/")


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
        """Every handler sees every event; one raising is logged and never stops the others."""
        for handler in self.ari_handlers:
            try:
                result = handler(event)
                if result is not None:
                    await result
            except Exception:
                log.exception("ARI event handler %r failed on %s", handler, event.get("type"))


def build_extensions(server: CallServer) -> Extensions:
    ext = Extensions()
    bridge = _wire_crm(server, ext)
    routing = _wire_routing(server, ext, bridge)
    callbacks = AfterHoursCallbacks(routing, bridge.service)
    ext.bus_subscribers.append(callbacks.submit)
    ext.on_database_ready.append(callbacks.start)  # needs the outbox table
    ext.closers.append(callbacks.aclose)  # closers run in reverse: it stops before the CRM
    ext.metrics.append(("callserver_callback_jobs_created_total",
                        "callback requests created for calls sent to voicemail/callback",
                        functools.partial(getattr, callbacks, "created")))  # fmt: skip
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
    for name in (
        "crm_pushes_delivered_total",
        "crm_push_failures_total",
        "crm_events_dropped_total",
    ):
        ext.metrics.append((f"callserver_{name}", name.replace("_", " "),
                            functools.partial(_counter, bridge, name)))  # fmt: skip
    return bridge


def _counter(bridge: CrmBridge, name: str) -> int:
    return bridge.counters()[name]


class CrmDirectory:
    """routing's ``PatientDirectory`` over the CRM bridge (Redis-cached lookup)."""

    def __init__(self, bridge: CrmBridge) -> None:
        self._crm = bridge.service

    async def lookup(self, phone_e164: str) -> CallerProfile | None:
        card = await self._crm.lookup(phone_e164)
        if card is None:
            return None
        return CallerProfile(
            card.id, card.coordinator, card.last_operator, card.vip, card.language,
            card.segment, card.prepayment_required,
        )  # fmt: skip


def _wire_routing(server: CallServer, ext: Extensions, bridge: CrmBridge) -> RoutingService:
    cfg = server.config.routing
    decisions = PgDecisionLog(server.pool)
    tracking_sync = _TrackingSyncWhenReady(server, PgTrackingSync(server.pool))
    service = RoutingService(
        RulesHolder(cfg.rules_file or None, default_queue=cfg.default_queue),
        OverrideBook(PgOverrideStore(server.pool)),
        RoutingPorts(
            directory=CrmDirectory(bridge),
            # this node reads AMI itself: its in-process model is the freshest live state
            live=LiveModelState(server.model),
            decisions=decisions,
            rules_listener=tracking_sync,
        ),
        RoutingSettings(
            cfg.lookup_budget_ms, cfg.live_budget_ms, cfg.reload_poll_interval,
            cfg.override_refresh_interval,
        ),
    )  # fmt: skip
    server.routing = service
    server.tracking = decisions
    ext.agi_handlers["route"] = make_route_handler(service)
    ext.routes.extend(routing_routes(service))
    ext.starters.append(service.start)  # loads the rules: a bad file stops start-up
    ext.on_database_ready.append(decisions.start)
    ext.on_database_ready.append(lambda: tracking_sync.rules_loaded(service.rules.current))
    ext.closers.append(service.aclose)
    ext.closers.append(decisions.aclose)
    ext.ari_handlers.append(_stasis_router(server, service))
    for name, attr in (
        ("decisions", "decisions"),
        ("safe_defaults", "safe_defaults"),
        ("crm_timeouts", "crm_timeouts"),
        ("crm_errors", "crm_errors"),
    ):
        ext.metrics.append((f"callserver_routing_{name}_total", f"routing {name}",
                            functools.partial(getattr, service, attr)))  # fmt: skip
    return service


class _TrackingSyncWhenReady:
    """Mirror campaigns/DIDs into PostgreSQL once its schema exists (rules load before that)."""

    def __init__(self, server: CallServer, inner: PgTrackingSync) -> None:
        self._server = server
        self._inner = inner

    async def rules_loaded(self, rules: RuleSet) -> None:
        if self._server.database.ready.is_set():
            await self._inner.rules_loaded(rules)


def _stasis_router(
    server: CallServer, service: RoutingService
) -> Callable[[Mapping[str, Any]], Awaitable[None] | None]:
    """Calls entering Stasis directly (the ARI line) get the same decision as FastAGI ones;
    it is recorded and set on the channel as ROUTE_* variables for the voice bot."""

    async def on_event(event: Mapping[str, Any]) -> None:
        if event.get("type") != "StasisStart":
            return
        channel = event.get("channel")
        if not isinstance(channel, Mapping) or event.get("replace_channel"):
            return
        if not event.get("args") or str(channel.get("name", "")).startswith(_MEDIA_CHANNELS):
            return  # externalMedia / snoop channels our own app created: not a caller
        args = [str(a) for a in event.get("args", []) if isinstance(a, str | int)]
        decision = await service.route(request_from_stasis(channel, args))
        channel_id = str(channel.get("id", ""))
        for name, value in ari_variables(decision).items():
            try:
                await server.ari.set_variable(channel_id, name, value)
            except AriError as exc:
                log.warning("ARI route variables not set on %s: %s", channel_id, exc)
                return

    return on_event
