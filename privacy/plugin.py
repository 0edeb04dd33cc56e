"""Two plugins in one package:

* ``privacy``: ``GET /api/privacy/export`` and ``POST /api/privacy/erase`` (admin role), the
  ``privacy_audit`` table;
* ``retention``: the ``[retention]`` section and the daily job enforcing it.
"""

from __future__ import annotations

from pathlib import Path

from callserver.plugin_api import Contribution, Metric, PluginDeps
from privacy.config import RetentionSettings, validate_retention
from privacy.http import PrivacyApi, privacy_routes
from privacy.retention import KINDS, RetentionJob


class PrivacyPlugin:
    name = "privacy"
    config_type = None
    migrations: Path | None = Path(__file__).parent / "migrations"
    requires: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()
    provides: tuple[str, ...] = ()

    def validate(self, config: None) -> None:
        return None

    def build(self, config: None, deps: PluginDeps) -> Contribution:
        api = PrivacyApi(deps.pool, deps.redis, deps.server.redis_prefix)
        return Contribution(routes=privacy_routes(api))


class RetentionPlugin:
    name = "retention"
    config_type = RetentionSettings
    migrations: Path | None = None
    requires: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()
    provides: tuple[str, ...] = ()

    def validate(self, config: RetentionSettings) -> None:
        validate_retention(config)

    def build(self, config: RetentionSettings, deps: PluginDeps) -> Contribution:
        job = RetentionJob(config, pool=deps.pool, redis=deps.redis,
                           redis_prefix=deps.server.redis_prefix, clock=deps.clock)  # fmt: skip
        return Contribution(
            after_database=[job],  # first run once the schema is there, then every interval
            metrics=[
                Metric("callserver_retention_deleted_total",
                       "personal data removed for age, by kind (rows, files; crm_cache: keys "
                       "whose time-to-live was cut)",
                       lambda: {(k,): job.deleted[k] for k in KINDS}, ("kind",)),
                Metric("callserver_retention_runs_total", "retention runs", lambda: job.runs),
                Metric("callserver_retention_failures_total", "retention runs that failed",
                       lambda: job.failures),
                Metric("callserver_retention_last_run_timestamp_seconds",
                       "when the last retention run finished (POSIX s)", lambda: job.last_run_at),
            ],
        )  # fmt: skip


plugin = PrivacyPlugin()
retention_plugin = RetentionPlugin()
