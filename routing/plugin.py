"""The routing plugin: FastAGI ``route``, the ARI line's decisions, overrides API, decision log.

Requires the ``patient_lookup`` port (the CRM bridge's cached lookup) when a CRM plugin is
enabled; without it every caller is routed as unknown.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any, Protocol

from callserver.asterisk.errors import AriError
from callserver.plugin_api import AriEvent, Contribution, Metric, PluginDeps
from routing.agi_handler import make_route_handler
from routing.ari import ari_variables, request_from_stasis
from routing.config import RoutingConfig, validate_routing
from routing.http import routing_routes
from routing.live_model import LiveModelState
from routing.models import CallerProfile
from routing.overrides import OverrideBook
from routing.reload import RulesHolder
from routing.rules import RuleSet
from routing.service import RoutingPorts, RoutingService, RoutingSettings
from routing.store import PgDecisionLog, PgOverrideStore, PgTrackingSync

log = logging.getLogger(__name__)


class PatientCard(Protocol):
    """The part of the CRM's patient card routing reads."""

    id: str
    coordinator: str
    last_operator: str
    vip: bool
    language: str
    segment: str
    prepayment_required: bool
    birth_date: date | None


class PatientLookup(Protocol):
    async def lookup(self, phone: str) -> PatientCard | None: ...


class AriVariables(Protocol):
    async def set_variable(self, channel_id: str, name: str, value: str) -> None: ...


class CrmDirectory:
    """routing's ``PatientDirectory`` over the CRM's (Redis-cached) lookup port."""

    def __init__(self, crm: PatientLookup) -> None:
        self._crm = crm

    async def lookup(self, phone_e164: str) -> CallerProfile | None:
        card = await self._crm.lookup(phone_e164)
        if card is None:
            return None
        return CallerProfile(
            card.id, card.coordinator, card.last_operator, card.vip, card.language,
            card.segment, card.prepayment_required,
        )  # fmt: skip


class _NoDirectory:
    async def lookup(self, phone_e164: str) -> CallerProfile | None:
        return None


class _TrackingSyncWhenReady:
    """Mirror campaigns/DIDs into PostgreSQL once its schema exists (rules load before that)."""

    def __init__(self, ready: asyncio.Event, inner: PgTrackingSync) -> None:
        self._ready = ready
        self._inner = inner

    async def rules_loaded(self, rules: RuleSet) -> None:
        if self._ready.is_set():
            await self._inner.rules_loaded(rules)


class _TrackingStart:
    """After migrations: mirror the rules loaded at start-up."""

    def __init__(self, sync: _TrackingSyncWhenReady, service: RoutingService) -> None:
        self._sync, self._service = sync, service

    async def start(self) -> None:
        await self._sync.rules_loaded(self._service.rules.current)

    async def aclose(self) -> None:
        return None


class StasisRouter:
    """Calls entering Stasis directly (the ARI line) get the same decision as FastAGI ones;
    it is recorded and set on the channel as ROUTE_* variables for the voice bot."""

    def __init__(self, service: RoutingService, ari: AriVariables) -> None:
        self._service, self._ari = service, ari

    async def __call__(self, event: AriEvent) -> None:
        channel = event["channel"]
        if not event.get("args"):
            return
        args = [str(a) for a in event.get("args", []) if isinstance(a, str | int)]
        if args[:1] == ["campaign"]:
            return  # an outbound campaign call (the campaigns plugin dialled it): not routed
        decision = await self._service.route(request_from_stasis(channel, args))
        channel_id = str(channel.get("id", ""))
        for name, value in ari_variables(decision).items():
            try:
                await self._ari.set_variable(channel_id, name, value)
            except AriError as exc:
                log.warning("ARI route variables not set on %s: %s", channel_id, exc)
                return


class TrackingAnnotator:
    """Adds each call's routing record (``routing``) to ``/api/calls``."""

    key = "routing"

    def __init__(self, decisions: PgDecisionLog) -> None:
        self._decisions = decisions

    async def annotate(self, linkedids: Sequence[str]) -> dict[str, object]:
        return dict(await self._decisions.tracking_for(linkedids))


class RoutingPlugin:
    name = "routing"
    config_type = RoutingConfig
    migrations: Path | None = Path(__file__).parent / "migrations"
    requires: tuple[str, ...] = ()
    optional: tuple[str, ...] = ("patient_lookup",)
    provides: tuple[str, ...] = ("route_decisions",)

    def validate(self, config: RoutingConfig) -> None:
        validate_routing(config)

    def build(self, config: RoutingConfig, deps: PluginDeps) -> Contribution:
        crm = deps.ports.maybe("patient_lookup", PatientLookup)
        decisions = PgDecisionLog(deps.pool)
        sync = _TrackingSyncWhenReady(deps.database_ready, PgTrackingSync(deps.pool))
        service = RoutingService(
            RulesHolder(config.rules_file or None, default_queue=config.default_queue),
            OverrideBook(PgOverrideStore(deps.pool)),
            RoutingPorts(
                directory=CrmDirectory(crm) if crm is not None else _NoDirectory(),
                # this node reads AMI itself: its in-process model is the freshest live state
                live=LiveModelState(deps.live),
                decisions=decisions,
                rules_listener=sync,
            ),
            RoutingSettings(
                config.lookup_budget_ms, config.live_budget_ms, config.reload_poll_interval,
                config.override_refresh_interval,
            ),
        )  # fmt: skip
        return Contribution(
            routes=routing_routes(service),
            # the rules load first: a bad file stops start-up
            components=[service],
            after_database=[decisions, _TrackingStart(sync, service)],
            agi_handlers={"route": make_route_handler(service)},
            stasis_handlers=[StasisRouter(service, deps.ari)],
            call_annotators=[TrackingAnnotator(decisions)],
            metrics=_metrics(service),
            ports={"route_decisions": service},
        )


def _metrics(service: RoutingService) -> list[Metric]:
    def reader(attr: str) -> Any:
        return lambda: getattr(service, attr)

    return [
        Metric(f"callserver_routing_{attr}_total", f"routing {attr}", reader(attr))
        for attr in ("decisions", "safe_defaults", "crm_timeouts", "crm_errors")
    ]


plugin = RoutingPlugin()
