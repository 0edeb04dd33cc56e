"""HTTP: the board and reports pages, the board's WebSocket, the JSON/CSV/SVG report API and
listen/whisper/barge. Roles: board, KPIs, staffing, spy → supervisor/admin; marketer reports →
marketer/supervisor/admin (``callserver.web.auth.require_role``)."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Awaitable, Callable
from datetime import date, datetime
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
from aiohttp import web

from callserver.web.auth import PRINCIPAL, AccessDenied, require_role, same_origin
from callserver.web.body import json_body
from dashboards import svg
from dashboards.errors import InvalidReportRequest, ReportsUnavailable
from dashboards.export import OPERATOR_COLUMNS, STAFFING_COLUMNS, marketer_csv, to_csv
from dashboards.hub import BoardHub
from dashboards.i18n import label, lang_of
from dashboards.reports import ReportFilters, Reports
from dashboards.spy import SpyService
from dashboards.store import DashboardsStore

STATIC = Path(__file__).parent / "static"
BOARD_WS_PATH = "/ws/board"
TICKET_TTL = 30.0
SUPERVISORS = ("supervisor", "admin")
MARKETERS = ("marketer", "supervisor", "admin")
T = TypeVar("T")


def page(name: str) -> Callable[[web.Request], Awaitable[web.FileResponse]]:
    async def handler(request: web.Request) -> web.FileResponse:
        return web.FileResponse(STATIC / name)

    return handler


class Tickets:
    """One-time WebSocket tickets: browsers cannot put the API token in a WebSocket header,
    so the page trades it (over an authenticated POST) for a ticket valid ``TICKET_TTL`` s."""

    def __init__(self) -> None:
        self._open: dict[str, float] = {}

    def issue(self) -> str:
        now = time.monotonic()
        self._open = {t: exp for t, exp in self._open.items() if exp > now}
        ticket = secrets.token_urlsafe(24)
        self._open[ticket] = now + TICKET_TTL
        return ticket

    def redeem(self, ticket: str) -> bool:
        expires = self._open.pop(ticket, 0.0)
        return expires > time.monotonic()


class DashboardsHttp:
    def __init__(self, *, hub: BoardHub, reports: Reports, spy: SpyService,
                 store: DashboardsStore, clock: Callable[[], float], language: str,
                 names: Callable[[str], str]) -> None:  # fmt: skip
        self.hub, self.reports, self.spy, self.store = hub, reports, spy, store
        self._clock, self._language, self._names = clock, language, names
        self.tickets = Tickets()

    def routes(self) -> list[web.RouteDef]:
        board, reports = page("board.html"), page("reports.html")
        return [
            web.get("/", board), web.get("/board", board), web.get("/reports", reports),
            web.get(BOARD_WS_PATH, self.board_ws),
            web.post("/api/dashboards/ticket", self.ticket),
            web.get("/api/dashboards/board", self.board),
            web.get("/api/dashboards/config", self.config),
            web.post("/api/dashboards/spy", self.spy_start),
            web.get("/api/dashboards/spy/audit", self.spy_audit),
            web.get("/api/dashboards/reports/marketer", self.marketer),
            web.get("/api/dashboards/reports/heatmap", self.heatmap),
            web.get("/api/dashboards/reports/operators", self.operators),
            web.get("/api/dashboards/staffing", self.staffing),
        ]  # fmt: skip

    # ---- board ---------------------------------------------------------------------------

    async def ticket(self, request: web.Request) -> web.Response:
        require_role(request, *SUPERVISORS)
        return web.json_response({"ticket": self.tickets.issue(), "ttl": TICKET_TTL})

    async def board_ws(self, request: web.Request) -> web.StreamResponse:
        if not same_origin(request):
            raise _forbidden("WebSocket from another site refused")
        if PRINCIPAL in request:
            require_role(request, *SUPERVISORS)
        elif not self.tickets.redeem(request.query.get("ticket", "")):
            raise _forbidden("missing or expired ticket")
        return await self.hub.serve(request)

    async def board(self, request: web.Request) -> web.Response:
        require_role(request, *SUPERVISORS)
        return _json(self.hub.snapshot())

    async def config(self, request: web.Request) -> web.Response:
        require_role(request, *MARKETERS)
        s = self.reports.s
        return _json({"language": self._language, "timezone": s.tz.key,
                      "today": self._today().isoformat(), "sl_seconds": s.sl_seconds,
                      "sl_target": s.sl_target})  # fmt: skip

    async def spy_start(self, request: web.Request) -> web.Response:
        principal = require_role(request, *SUPERVISORS)
        body = await _body(request)
        row = await self.spy.spy(
            actor=principal.name, agent=str(body.get("agent", "")), mode=str(body.get("mode", "")),
            supervisor=str(body.get("supervisor") or principal.extension),
        )  # fmt: skip
        return _json(row)

    async def spy_audit(self, request: web.Request) -> web.Response:
        require_role(request, *SUPERVISORS)
        limit = _int(request.query.get("limit"), "limit", 100, 1, 1000)
        return _json({"audit": await _db(self.store.spy_audit(limit))})

    # ---- reports -------------------------------------------------------------------------

    def _today(self) -> date:
        return datetime.fromtimestamp(self._clock(), self.reports.s.tz).date()

    def _filters(self, request: web.Request) -> ReportFilters:
        return ReportFilters.parse(request.query, self._today())

    def _lang(self, request: web.Request) -> str:
        return lang_of(request.query.get("lang"), self._language)

    async def marketer(self, request: web.Request) -> web.StreamResponse:
        require_role(request, *MARKETERS)
        report = await _db(self.reports.marketer(self._filters(request),
                                                 request.query.get("by", "source")))  # fmt: skip
        fmt, lang = request.query.get("format", "json"), self._lang(request)
        if fmt == "csv":
            return _csv(marketer_csv(report, lang), "marketer")
        if fmt == "svg":
            rows = report["rows"]
            return _svg(svg.bar_chart(label(lang, "by_source"), [str(r["key"]) for r in rows], [
                (label(lang, k), [float(r[k]) for r in rows])
                for k in ("calls", "answered", "missed", "booked")]))  # fmt: skip
        return _json(report)

    async def heatmap(self, request: web.Request) -> web.StreamResponse:
        require_role(request, *MARKETERS)
        report = await _db(self.reports.heatmap(self._filters(request)))
        if request.query.get("format") == "svg":
            metric = "missed" if request.query.get("metric") == "missed" else "calls"
            lang = self._lang(request)
            title = label(lang, "missed_heatmap" if metric == "missed" else "heatmap")
            values = {(c["dow"], c["hour"]): float(c[metric]) for c in report["cells"]}
            return _svg(svg.heatmap(title, values, lang))
        return _json(report)

    async def operators(self, request: web.Request) -> web.StreamResponse:
        require_role(request, *SUPERVISORS)
        report = await _db(self.reports.operators(self._filters(request)))
        for row in report["operators"]:
            row["name"] = self._names(row["agent"]) or row["agent"]
        if request.query.get("format") == "csv":
            team = dict(report["team"], agent="", name=label(self._lang(request), "total"))
            return _csv(to_csv(OPERATOR_COLUMNS, [*report["operators"], team],
                               self._lang(request)), "operators")  # fmt: skip
        return _json(report)

    async def staffing(self, request: web.Request) -> web.StreamResponse:
        require_role(request, *SUPERVISORS)
        weeks = _int(request.query.get("weeks"), "weeks", self.reports.s.staffing_weeks, 1, 52)
        queue = request.query.get("queue", "")[:100]
        report = await _db(self.reports.staffing(self._today(), queue, weeks))
        fmt, lang = request.query.get("format", "json"), self._lang(request)
        if fmt == "csv":
            return _csv(to_csv(STAFFING_COLUMNS, report["rows"], lang), "staffing")
        if fmt == "svg":
            rows = report["rows"]
            labels = [f"{r['dow']}/{r['hour']:02d}" for r in rows]
            return _svg(
                svg.bar_chart(
                    label(lang, "staffing"),
                    labels,
                    [
                        (label(lang, "needed"), [float(r["needed"]) for r in rows]),
                        (label(lang, "logged_in"), [float(r["logged_in"] or 0) for r in rows]),
                    ],
                )
            )
        return _json(report)


async def _db(awaitable: Awaitable[T]) -> T:
    """Await a report query; database failures become ReportsUnavailable (503)."""
    try:
        return await awaitable
    except (asyncpg.PostgresError, OSError, TimeoutError) as exc:
        raise ReportsUnavailable(message=f"report query failed: {exc!r}") from exc


def _forbidden(message: str) -> AccessDenied:
    return AccessDenied(message=message)


async def _body(request: web.Request) -> dict[str, Any]:
    body = await json_body(request, max_bytes=64 * 1024)
    if not isinstance(body, dict):
        raise InvalidReportRequest(message="body must be a JSON object", field="body")
    return body


def _int(raw: str | None, field: str, default: int, low: int, high: int) -> int:
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidReportRequest(message=f"{field}: expected an integer", field=field) from None
    if not low <= value <= high:
        raise InvalidReportRequest(message=f"{field}: must be {low}..{high}", field=field)
    return value


def _json(data: Any) -> web.Response:
    return web.json_response(data, dumps=lambda o: json.dumps(o, default=str, ensure_ascii=False))


def _csv(body: bytes, name: str) -> web.Response:
    return web.Response(body=body, content_type="text/csv", charset="utf-8", headers={
        "Content-Disposition": f'attachment; filename="{name}.csv"'})  # fmt: skip


def _svg(text: str) -> web.Response:
    return web.Response(text=text, content_type="image/svg+xml", headers={
        "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'"})  # fmt: skip
