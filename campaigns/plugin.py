"""The campaigns plugin: outbound reminders, confirmations, feedback, recalls, waitlist offers.

Provides ``campaign_calls`` (the voice bot takes an answered campaign call's dialog with
``session(dial_id)``). Optional ports: ``callback_jobs`` (callbacks: operator hand-offs),
``crm_requests`` (crm: booking requests, and callbacks when no callback_jobs).
Config section ``[campaigns]`` (:class:`CampaignsConfig`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from aiohttp import web

from callserver.errors import ConfigError
from callserver.plugin_api import Contribution, Metric, PluginDeps, StaticDir
from campaigns.dialer import IvrSessions, PatientDialer
from campaigns.http import CampaignsApi
from campaigns.runner import CampaignRunner, RunnerSettings
from campaigns.service import CallbackJobs, CampaignService, CrmRequests, HttpWebhook
from campaigns.store import CampaignStore

STATIC = Path(__file__).parent / "static"


@dataclass(frozen=True)
class CampaignsConfig:
    dial: bool = True
    """False: the API and page only; this instance places no campaign calls."""
    channels: int = 30
    """Concurrent campaign calls per trunk, over all instances."""
    instance_channels: int = 0
    """This instance's share of ``channels`` (0: all; set it to spread calls over instances)."""
    ring_s: float = 30.0
    poll_s: float = 1.0
    lease_s: float = 900.0
    """A dial not settled within this (seconds) is taken for lost: recorded unknown."""
    pickup_s: float = 10.0
    """How long an answered call waits for the voice bot to take its dialog."""
    webhook_url: str = ""
    """POSTed JSON when a patient stays unreached or a manager task is raised (SMS gateway)."""


async def page(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC / "campaigns.html")


class CampaignsPlugin:
    name = "campaigns"
    config_type = CampaignsConfig
    migrations: Path | None = Path(__file__).parent / "migrations"
    requires: tuple[str, ...] = ()
    optional: tuple[str, ...] = ("callback_jobs", "crm_requests")
    provides: tuple[str, ...] = ("campaign_calls",)

    def validate(self, config: CampaignsConfig) -> None:
        checks = [("channels", 1 <= config.channels <= 1000),
                  ("instance_channels", 0 <= config.instance_channels <= config.channels),
                  ("ring_s", 5 <= config.ring_s <= 120),
                  ("poll_s", 0.05 <= config.poll_s <= 60), ("lease_s", config.lease_s >= 60),
                  ("pickup_s", 0.5 <= config.pickup_s <= 120),
                  ("webhook_url", not config.webhook_url
                   or config.webhook_url.startswith(("http://", "https://")))]  # fmt: skip
        for key, ok in checks:
            if not ok:
                raise ConfigError(message=f"campaigns.{key}: out of range", key=f"campaigns.{key}")

    def build(self, config: CampaignsConfig, deps: PluginDeps) -> Contribution:
        store = CampaignStore(deps.pool)
        sessions = IvrSessions(pickup_s=config.pickup_s)
        service = CampaignService(
            store, deps.pool, instance=deps.server.instance_id, clock=deps.clock,
            webhook=HttpWebhook(config.webhook_url),
            callbacks=deps.ports.maybe("callback_jobs", CallbackJobs),
            crm=deps.ports.maybe("crm_requests", CrmRequests),
        )  # fmt: skip
        runner = CampaignRunner(
            store, PatientDialer(deps.ami, app=deps.server.ari_app, ring_s=config.ring_s),
            sessions, service, deps.clock,
            RunnerSettings(deps.server.instance_id, config.channels, config.poll_s,
                           timedelta(seconds=config.lease_s), config.instance_channels),
        )  # fmt: skip
        api = CampaignsApi(store, deps.pool, deps.clock, runner.wake)
        return Contribution(
            routes=[*api.routes(), web.get("/campaigns", page)],
            public_paths=["/campaigns"],  # the page holds no data; its script authenticates
            static=[StaticDir("campaigns", STATIC)],
            after_database=[runner] if config.dial else [],
            metrics=[
                Metric(
                    "callserver_campaign_dials_total",
                    "campaign calls dialled",
                    lambda: runner.dialled,
                ),
                Metric(
                    "callserver_campaign_answered_total",
                    "campaign calls answered",
                    lambda: runner.answered,
                ),
                Metric(
                    "callserver_campaign_active_calls", "campaign calls in progress", runner.active
                ),
                Metric(
                    "callserver_campaign_failed_effects_total",
                    "campaign outcomes whose CRM/callback update failed (logged)",
                    lambda: service.failed_effects,
                ),
            ],
            ports={"campaign_calls": sessions},
        )


plugin = CampaignsPlugin()
