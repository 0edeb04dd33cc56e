"""The callbacks plugin: calls routing sent away (after hours → voicemail, callback mode) become
callback requests in the CRM when they end.

Requires ``route_decisions`` (routing's decision log) and ``crm_requests`` (the CRM bridge).
"""

from __future__ import annotations

from pathlib import Path

from callbacks.after_hours import AfterHoursCallbacks, CallbackSink, Decisions
from callserver.plugin_api import Contribution, Metric, PluginDeps


class CallbacksPlugin:
    name = "callbacks"
    config_type = None
    migrations: Path | None = None
    requires: tuple[str, ...] = ("route_decisions", "crm_requests")
    optional: tuple[str, ...] = ()
    provides: tuple[str, ...] = ()

    def validate(self, config: None) -> None:
        return None

    def build(self, config: None, deps: PluginDeps) -> Contribution:
        jobs = AfterHoursCallbacks(
            deps.ports.get("route_decisions", Decisions),
            deps.ports.get("crm_requests", CallbackSink),
        )
        return Contribution(
            subscribers=[jobs.submit],
            after_database=[jobs],  # needs the outbox table
            metrics=[
                Metric(
                    "callserver_callback_jobs_created_total",
                    "callback requests created for calls sent to voicemail/callback",
                    lambda: jobs.created,
                ),
            ],
        )


plugin = CallbacksPlugin()
