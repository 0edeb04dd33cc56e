"""``GET /api/calls`` (recent calls, newest first) and ``GET /api/calls/{id}`` (one call's record
with its timeline)."""

from __future__ import annotations

from typing import Any, Protocol

from aiohttp import web

from callserver.web.middlewares import json_error

MAX_LIMIT = 1000
DEFAULT_LIMIT = 50


class CallsReader(Protocol):
    async def recent(self, limit: int) -> list[dict[str, Any]]: ...

    async def get(self, call_id: str) -> dict[str, Any] | None: ...


def parse_limit(raw: str | None) -> int:
    """``limit`` query parameter: 1..MAX_LIMIT, default DEFAULT_LIMIT; ValueError otherwise."""
    if raw is None or raw == "":
        return DEFAULT_LIMIT
    value = int(raw)
    if not 1 <= value <= MAX_LIMIT:
        raise ValueError(raw)
    return value


def calls_routes(reader: CallsReader) -> list[web.RouteDef]:
    async def recent(request: web.Request) -> web.Response:
        try:
            limit = parse_limit(request.query.get("limit"))
        except ValueError:
            return json_error(400, "bad-limit", f"limit must be an integer 1..{MAX_LIMIT}")
        return web.json_response({"calls": await reader.recent(limit)})

    async def one(request: web.Request) -> web.Response:
        call = await reader.get(request.match_info["call_id"])
        if call is None:
            return json_error(404, "call-not-found", "no such call")
        return web.json_response(call)

    return [web.get("/api/calls", recent), web.get("/api/calls/{call_id}", one)]
