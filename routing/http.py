"""HTTP API of routing (aiohttp): thin handlers over ``RoutingService``. The lead mounts them with
``app.add_routes(routing_routes(service))`` under ``/api/routing`` (auth and the mapping of
``error_id`` to a status are the web app's middlewares).

- ``GET  /api/routing/rules``                 version, file, reload state, queues/skills/DIDs
- ``GET  /api/routing/rules/version``         ``{"version", "last_error"}``
- ``POST /api/routing/rules/reload``          reload the rules file now (like SIGHUP)
- ``GET  /api/routing/overrides``             overrides in force
- ``POST /api/routing/overrides``             ``{"scope","value","minutes","mode","queue",
  "priority","note"}`` → 201; the actor is the ``X-Actor`` header (default ``api``)
- ``DELETE /api/routing/overrides/{id}``      end one now
- ``GET  /api/routing/overrides/audit?limit=N`` newest first
- ``GET  /api/routing/decisions/{call_id}``   a call's tracking record (uniqueid or linkedid)
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from callserver.core.text import clean_text, first_bad_text, text_problem
from callserver.logs import escape_control
from callserver.web.body import json_object
from routing.errors import DecisionNotFound, OverrideError, RulesReloadFailed
from routing.overrides import build_override
from routing.service import RoutingService

MAX_BODY = 64 * 1024
"""Bytes an override request may have (one override is a few hundred)."""


def _actor(request: web.Request) -> str:
    return escape_control(clean_text(request.headers.get("X-Actor", "api")))[:64] or "api"


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=lambda o: json.dumps(o, default=str))


class RoutingApi:
    """The handlers; ``routing_routes`` binds them to paths."""

    def __init__(self, service: RoutingService) -> None:
        self._service = service

    async def rules(self, request: web.Request) -> web.Response:
        r = self._service.rules.current
        return _json(
            {
                "version": r.version,
                "file": str(self._service.rules.path) if self._service.rules.path else None,
                "reloads": self._service.rules.reloads,
                "reload_errors": self._service.rules.reload_errors,
                "last_error": self._service.rules.last_error,
                "default_queue": r.default_queue,
                "queues": sorted(r.queues),
                "skills": {
                    s.name: {"digits": s.digits, "queue": s.queue} for s in r.skills.values()
                },
                "dids": {
                    d.did: {"campaign": d.campaign, "source": d.source, "paid": d.paid}
                    for d in r.dids.values()
                },
                "clinics": sorted(r.clinics),
            }
        )

    async def version(self, request: web.Request) -> web.Response:
        return _json(
            {
                "version": self._service.rules.current.version,
                "last_error": self._service.rules.last_error,
            }
        )

    async def reload(self, request: web.Request) -> web.Response:
        holder = self._service.rules
        if not holder.reload():  # the one error body, like every other refusal
            why = holder.last_error if holder.path else "no rules file is configured"
            raise RulesReloadFailed(message=f"rules not reloaded: {why}",
                                    version=holder.current.version, last_error=holder.last_error)
        return _json({"reloaded": True, "version": holder.current.version, "last_error": ""})

    async def overrides(self, request: web.Request) -> web.Response:
        active = self._service.overrides.active(self._service.now())
        return _json({"overrides": [o.to_dict() for o in active]})

    async def create(self, request: web.Request) -> web.Response:
        body = await json_object(request, max_bytes=MAX_BODY)
        if (bad := first_bad_text(body)) is not None:  # PostgreSQL could not store it
            raise OverrideError(message=f"{bad[0]}: {bad[1]}", field=bad[0])
        override = build_override(
            self._service.rules.current, body, actor=_actor(request), now=self._service.now()
        )
        persisted = await self._service.overrides.add(override)
        return _json({"override": override.to_dict(), "persisted": persisted}, status=201)

    async def delete(self, request: web.Request) -> web.Response:
        override_id = request.match_info["id"]
        persisted = await self._service.overrides.remove(
            override_id, actor=_actor(request), now=self._service.now()
        )
        return _json({"deleted": override_id, "persisted": persisted})

    async def audit(self, request: web.Request) -> web.Response:
        try:
            limit = max(1, min(1000, int(request.query.get("limit", "100"))))
        except ValueError:
            raise OverrideError(message="limit: expected an integer", field="limit") from None
        entries = await self._service.overrides.audit(limit)
        return _json({"audit": [e.to_dict() for e in entries]})

    async def decision(self, request: web.Request) -> web.Response:
        call_id = request.match_info["call_id"]
        # no call id holds NUL or half an emoji: not found, never the database's refusal
        record = None if text_problem(call_id) else await self._service.record_for(call_id)
        if record is None:
            raise DecisionNotFound(message="no routing decision for this call", call_id=call_id)
        return _json(record.to_dict())


def routing_routes(service: RoutingService, prefix: str = "/api/routing") -> list[web.RouteDef]:
    """The routing API's routes under ``prefix``."""
    api = RoutingApi(service)
    return [
        web.get(f"{prefix}/rules", api.rules),
        web.get(f"{prefix}/rules/version", api.version),
        web.post(f"{prefix}/rules/reload", api.reload),
        web.get(f"{prefix}/overrides", api.overrides),
        web.post(f"{prefix}/overrides", api.create),
        web.get(f"{prefix}/overrides/audit", api.audit),
        web.delete(f"{prefix}/overrides/{{id}}", api.delete),
        web.get(f"{prefix}/decisions/{{call_id}}", api.decision),
    ]
