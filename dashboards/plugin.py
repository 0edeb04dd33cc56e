"""The dashboards plugin: the supervisors' live board (``/``, ``/board``) over ``/api/live``
and ``/ws/live``. Reports and KPIs grow here (see the dashboards issue)."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from callserver.plugin_api import Contribution, PluginDeps, StaticDir

STATIC = Path(__file__).parent / "static"


async def board(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC / "board.html")


class DashboardsPlugin:
    name = "dashboards"
    config_type = None
    migrations: Path | None = None
    requires: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()
    provides: tuple[str, ...] = ()

    def validate(self, config: None) -> None:
        return None

    def build(self, config: None, deps: PluginDeps) -> Contribution:
        return Contribution(
            routes=[web.get("/", board), web.get("/board", board)],
            # the page holds no data; its script authenticates every request it makes
            public_paths=["/", "/board"],
            static=[StaticDir("dashboards", STATIC)],
        )


plugin = DashboardsPlugin()
