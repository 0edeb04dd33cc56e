"""Two plugins of the operator desk.

``desk_notify`` provides ``operator_directory`` (names by phone) and ``operator_notify`` (frames
to operators' browsers). ``desk`` is the browser desk itself (``/desk``): login sessions and
scoped API tokens, screen-pop, status mirrored to Asterisk, outcomes to the CRM, click-to-call;
it uses ``patient_lookup``, ``crm_requests`` and ``dialer`` when some enabled plugin provides
them.

Why two: the callbacks domain uses ``operator_notify`` and provides the ``dialer`` the desk uses;
with both in one plugin the two would require each other in a circle (the root builds
providers first, optional ports included). Enable both (``[plugins] enabled`` lists
``desk_notify`` and ``desk``); the default loads every installed plugin.
"""

from __future__ import annotations

from pathlib import Path

from callserver.plugin_api import Contribution, Metric, PluginDeps, StaticDir
from desk.auth import SessionAuth
from desk.config import DeskConfig, validate_desk
from desk.directory import OperatorDirectory
from desk.http import PUBLIC_PATHS, STATIC, DeskHttp, DeskParts, UiSettings
from desk.hub import OperatorHub
from desk.ports import CrmOutcomes, Dialer, PatientLookup
from desk.screenpop import PopSettings, ScreenPop
from desk.scripts import ScriptBook
from desk.service import DeskService, DeskSettings
from desk.status import StatusService
from desk.store import DeskStore


class Bootstrap:
    """After migrations: the first admin from ``[desk] bootstrap_admin`` (only when no user
    exists)."""

    def __init__(self, service: DeskService, spec: str) -> None:
        self._service, self._spec = service, spec

    async def start(self) -> None:
        await self._service.bootstrap_admin(self._spec)

    async def aclose(self) -> None:
        return None


class DeskNotifyPlugin:
    name = "desk_notify"
    config_type = None
    migrations: Path | None = None
    """``desk_users`` belongs to ``desk``'s migrations (applied before any component starts)."""
    requires: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()
    provides: tuple[str, ...] = ("operator_directory", "operator_notify")

    def validate(self, config: None) -> None:
        return None

    def build(self, config: None, deps: PluginDeps) -> Contribution:
        hub, directory = OperatorHub(), OperatorDirectory(DeskStore(deps.pool))
        return Contribution(
            components=[hub],
            after_database=[directory],
            on_http_shutdown=[hub.close],  # open desk browsers must not hold shutdown
            metrics=[
                Metric("callserver_desk_sockets", "desk browsers connected", lambda: hub.clients),
                Metric("callserver_desk_dropped_clients_total", "desk browsers dropped (slow)",
                       lambda: hub.dropped_clients),
            ],
            ports={"operator_directory": directory, "operator_notify": hub},
        )


class DeskPlugin:
    name = "desk"
    config_type = DeskConfig
    migrations: Path | None = Path(__file__).parent / "migrations"
    requires: tuple[str, ...] = ("operator_directory", "operator_notify")
    optional: tuple[str, ...] = ("patient_lookup", "crm_requests", "dialer")
    provides: tuple[str, ...] = ()

    def validate(self, config: DeskConfig) -> None:
        validate_desk(config)

    def build(self, config: DeskConfig, deps: PluginDeps) -> Contribution:
        store = DeskStore(deps.pool)
        # our own objects, from our own desk_notify plugin
        hub = deps.ports.get("operator_notify", OperatorHub)
        directory = deps.ports.get("operator_directory", OperatorDirectory)
        scripts = ScriptBook(store)
        auth = SessionAuth(store)
        settings = PopSettings(config.timezone, config.paid_sources, config.recording_url,
                               config.lookup_timeout)  # fmt: skip
        pops = ScreenPop(hub, directory, deps.ports.maybe("patient_lookup", PatientLookup),
                         scripts, settings)  # fmt: skip
        status = StatusService(deps.ami, deps.live, hub, timeout=config.ami_timeout)
        service = DeskService(
            store, auth, directory, pops,
            DeskSettings(config.session_ttl, config.tags, config.not_booked_reasons,
                         config.recording_url, config.caller_id, config.dial_timeout),
            crm=deps.ports.maybe("crm_requests", CrmOutcomes),
            dialer=deps.ports.maybe("dialer", Dialer),
        )  # fmt: skip
        ui = UiSettings(config.timezone, config.language, config.cookie_secure, config.session_ttl)
        http = DeskHttp(DeskParts(service, auth, pops, status, scripts, directory, hub, ui))
        return Contribution(
            routes=http.routes(),
            public_paths=list(PUBLIC_PATHS),
            authenticators=[auth.session, auth.api_token],
            static=[StaticDir("desk", STATIC)],
            subscribers=[pops.on_event, status.on_event],
            components=[pops, service],
            after_database=[scripts, Bootstrap(service, config.bootstrap_admin)],
            metrics=[
                Metric("callserver_desk_pops_total", "screen-pop cards sent", lambda: pops.popped),
            ],
        )


plugin = DeskPlugin()
notify_plugin = DeskNotifyPlugin()
