"""The dashboards plugin: the supervisors' live board (``/``, ``/board``, ``/ws/board``), the
overload signal with its webhook, listen/whisper/barge, marketer reports (``/reports``),
operator KPIs, staffing (Erlang C) and Prometheus families. See ``dashboards/README.md``.

Optional port ``operator_directory`` (desk): operators' names instead of ``PJSIP/op101``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from aiohttp import web

from callserver.plugin_api import Contribution, PluginDeps, StaticDir
from dashboards.board import BoardSettings, LiveBoard
from dashboards.config import DashboardsConfig, validate_dashboards
from dashboards.http import BOARD_WS_PATH, STATIC, DashboardsHttp
from dashboards.hub import BoardHub
from dashboards.metrics import board_metrics
from dashboards.overload import OverloadDetector
from dashboards.reports import Reports, ReportSettings
from dashboards.rollup import Rollup
from dashboards.spy import SpyService
from dashboards.store import DashboardsStore
from dashboards.webhook import OverloadWebhook

log = logging.getLogger(__name__)


class OperatorDirectory(Protocol):
    def name_for(self, interface: str) -> str: ...


async def board(request: web.Request) -> web.FileResponse:
    """The board page (kept for callers that import it, e.g. the browser tests)."""
    return web.FileResponse(STATIC / "board.html")


class DashboardsPlugin:
    name = "dashboards"
    config_type = DashboardsConfig
    migrations: Path | None = Path(__file__).parent / "migrations"
    requires: tuple[str, ...] = ()
    optional: tuple[str, ...] = ("operator_directory",)
    provides: tuple[str, ...] = ()

    def validate(self, config: DashboardsConfig) -> None:
        validate_dashboards(config)

    def build(self, config: DashboardsConfig, deps: PluginDeps) -> Contribution:
        directory = deps.ports.maybe("operator_directory", OperatorDirectory)
        names = _names(directory)
        thresholds = config.thresholds()
        live_board = LiveBoard(deps.live, BoardSettings.from_config(config, names),
                               lambda queue: OverloadDetector(queue, thresholds))  # fmt: skip
        webhook = OverloadWebhook(config.overload_webhook_url, config.webhook_timeout)
        hub = BoardHub(live_board, pool=deps.pool, live=deps.live, clock=deps.clock,
                       push_interval=config.push_interval,
                       sample_interval=config.sample_interval, on_transition=webhook.submit)
        rollup = Rollup(deps.pool, interval=config.rollup_interval, margin=config.rollup_margin,
                        callback_window_hours=config.callback_window_hours,
                        booking_window_hours=config.booking_window_hours,
                        timezone=config.timezone)  # fmt: skip
        store = DashboardsStore(deps.pool)
        reports = Reports(deps.pool, _report_settings(config))
        spy = SpyService(deps.ami, deps.live, store, deps.clock, config.spy_timeout)
        http = DashboardsHttp(hub=hub, reports=reports, spy=spy, store=store, clock=deps.clock,
                              language=config.language, names=names)  # fmt: skip
        return Contribution(
            routes=http.routes(),
            # the pages hold no data (their scripts authenticate); the WebSocket checks a
            # one-time ticket or the principal itself
            public_paths=["/", "/board", "/reports", BOARD_WS_PATH],
            static=[StaticDir("dashboards", STATIC)],
            subscribers=[live_board.on_event],
            components=[webhook],
            after_database=[hub, rollup],
            metrics=board_metrics(hub.for_metrics, lambda: webhook.sent, lambda: webhook.failed),
        )


def _names(directory: OperatorDirectory | None) -> Callable[[str], str]:
    """People's names from the desk's directory; "" (the board falls back) without it."""
    if directory is None:
        return lambda interface: ""
    return directory.name_for


def _report_settings(c: DashboardsConfig) -> ReportSettings:
    return ReportSettings(
        tz=BoardSettings.from_config(c).tz, booking_window_hours=c.booking_window_hours,
        callback_window_hours=c.callback_window_hours,
        callback_due_minutes=c.callback_due_minutes, sl_seconds=c.sl_seconds,
        sl_target=c.sl_target, wrapup_seconds=c.wrapup_seconds, staffing_weeks=c.staffing_weeks,
    )  # fmt: skip


plugin = DashboardsPlugin()
